#!/usr/bin/env python3
"""A TCP (or TLS) peer not written in JavaScript, for test/runtimes/run.cjs.

Listens on 127.0.0.1, prints its port, accepts one connection, and prints
one JSON line with what it observed: every byte counted, and how the
stream ended ("FIN": recv returned b"", "RST": ECONNRESET, "open": neither
within --timeout). Options:
  --tls              wrap in TLS (test/fixtures cert and key)
  --wait-ms N        do not read for N ms first (a non-reading peer)
  --send N           send N bytes first (after --send-delay-ms)
  --send-delay-ms N  wait N ms before sending
  --fin-after-send   shutdown(SHUT_WR) once --send is sent
  --fin-after-fin    answer our FIN with its own (shutdown SHUT_WR)
  --rst-after-fin    answer our FIN with an RST (SO_LINGER 0, close)
  --hold-ms N        after our FIN, keep the connection open N ms, then
                     write to it: "resetAfter" says whether it was reset
  --timeout S        give up after S seconds
  --connect PORT     connect to PORT instead of listening (prints 0 first)
"""
import argparse, json, os, socket, ssl, struct, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--tls', action='store_true')
ap.add_argument('--wait-ms', type=int, default=0)
ap.add_argument('--send', type=int, default=0)
ap.add_argument('--send-delay-ms', type=int, default=0)
ap.add_argument('--fin-after-send', action='store_true')
ap.add_argument('--fin-after-fin', action='store_true')
ap.add_argument('--rst-after-fin', action='store_true')
ap.add_argument('--hold-ms', type=int, default=0)
ap.add_argument('--connect', type=int, default=0)
ap.add_argument('--timeout', type=float, default=10)
args = ap.parse_args()

TCP_CLOSE = 7  # include/net/tcp_states.h; CLOSE_WAIT is 8


def tcp_state(sock):
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures')
if args.connect:
    print(0, flush=True)
    conn = socket.create_connection(('127.0.0.1', args.connect))
else:
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    print(srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    srv.close()
if args.tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(root, 'cert.pem'), os.path.join(root, 'key.pem'))
    conn = ctx.wrap_socket(conn, server_side=True)
if args.send:
    time.sleep(args.send_delay_ms / 1000)
    conn.sendall(b'p' * args.send)
    if args.fin_after_send:
        conn.shutdown(socket.SHUT_WR)
if args.wait_ms:
    time.sleep(args.wait_ms / 1000)
conn.settimeout(args.timeout)
total, outcome, tls_eof = 0, 'open', None
deadline = time.monotonic() + args.timeout
while time.monotonic() < deadline:
    try:
        chunk = conn.recv(65536)
    except ConnectionResetError:
        outcome = 'RST'
        break
    except ssl.SSLEOFError:
        # TLS ended without close_notify: Python's ssl says so for a FIN and
        # for an RST alike; the kernel's TCP state tells them apart.
        outcome, tls_eof = ('RST' if tcp_state(conn) == TCP_CLOSE else 'FIN'), 'no close_notify'
        break
    except socket.timeout:
        break
    except ssl.SSLError as e:
        outcome = 'RST' if 'reset' in str(e).lower() else 'error ' + str(e)
        break
    if not chunk:
        # Python's ssl turns an EOF without close_notify into b'' too (ragged EOF).
        outcome = 'RST' if args.tls and tcp_state(conn) == TCP_CLOSE else 'FIN'
        break
    total += len(chunk)
if outcome == 'FIN' and args.rst_after_fin:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    conn.close()
if outcome == 'FIN' and args.fin_after_fin:
    try:
        (conn.unwrap() if args.tls else conn).shutdown(socket.SHUT_WR)
    except OSError:
        pass
    time.sleep(0.3)
result = {'bytes': total, 'outcome': outcome, 'tlsEof': tls_eof}
if outcome == 'FIN' and args.hold_ms:
    time.sleep(args.hold_ms / 1000)
    result['resetAfter'] = False
    try:
        for _ in range(2):
            conn.send(b'x')
            time.sleep(0.05)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        result['resetAfter'] = True
print(json.dumps(result), flush=True)

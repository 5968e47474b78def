#!/usr/bin/env python3
"""A TCP (or TLS) peer not written in JavaScript, for test/runtimes/run.cjs.

Listens on 127.0.0.1, prints its port, accepts one connection, and prints
one JSON line with what it observed: every byte counted, and how the
stream ended, read from the raw socket ("FIN": recv returned b"", "RST":
ECONNRESET, "open": neither within --timeout). TLS runs over memory BIOs,
so the TCP verdict is never hidden by the TLS layer. Options:
  --tls              TLS server (test/fixtures cert and key)
  --wait-ms N        do not read for N ms first (a non-reading peer)
  --send N           send N bytes first (after --send-delay-ms)
  --send-delay-ms N  wait N ms before sending
  --fin-after-send   shutdown(SHUT_WR) once --send is sent
  --fin-after-fin    answer our FIN with its own (shutdown SHUT_WR)
  --rst-after-fin    answer our FIN with an RST (SO_LINGER 0, close)
  --hold-ms N        after our FIN, keep the connection open N ms, then
                     write to it: "resetAfter" says whether it was reset
  --connect PORT     connect to PORT instead of listening (prints 0 first)
  --timeout S        give up after S seconds
"""
import argparse, json, os, socket, ssl, struct, time

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
conn.settimeout(args.timeout)


class Tls:
    """A TLS server over the raw socket: the socket's own reads stay visible."""

    def __init__(self, sock):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures')
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(root, 'cert.pem'), os.path.join(root, 'key.pem'))
        self.sock, self.incoming, self.outgoing = sock, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                raw = sock.recv(65536)
                if not raw:
                    raise ConnectionError('EOF during the handshake')
                self.incoming.write(raw)
        self.flush()

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def sendall(self, data):
        self.obj.write(data)
        self.flush()

    def feed(self, raw):
        """Decrypts what arrived: the application bytes in it."""
        self.incoming.write(raw)
        got = 0
        while True:
            try:
                data = self.obj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return got
            if not data:  # close_notify came: the raw socket says how TCP ends
                return got
            got += len(data)


tls = Tls(conn) if args.tls else None
if args.send:
    time.sleep(args.send_delay_ms / 1000)
    (tls or conn).sendall(b'p' * args.send)
    if args.fin_after_send:
        conn.shutdown(socket.SHUT_WR)
if args.wait_ms:
    time.sleep(args.wait_ms / 1000)
total, outcome = 0, 'open'
deadline = time.monotonic() + args.timeout
while time.monotonic() < deadline:
    try:
        raw = conn.recv(65536)
    except ConnectionResetError:
        outcome = 'RST'
        break
    except socket.timeout:
        break
    if not raw:
        outcome = 'FIN'
        break
    total += tls.feed(raw) if tls else len(raw)
result = {'bytes': total, 'outcome': outcome}
if outcome == 'FIN' and args.rst_after_fin:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    conn.close()
if outcome == 'FIN' and args.fin_after_fin:
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    time.sleep(0.3)
if outcome == 'FIN' and args.hold_ms:
    time.sleep(args.hold_ms / 1000)
    result['resetAfter'] = False
    try:
        for _ in range(2):
            conn.send(b'x')
            time.sleep(0.05)
    except (ConnectionResetError, BrokenPipeError):
        result['resetAfter'] = True
print(json.dumps(result), flush=True)

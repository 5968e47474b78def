#!/usr/bin/env python3
"""The far end of the fault tests: a plain TCP peer, run as its own process
inside the peer network namespace (`ip netns exec NS python3 peer.py ...`).

It accepts ONE connection and judges it with plain syscalls, independent of
Node, libuv and this package: recv() returning b'' is a FIN, recv()/send()
failing with ECONNRESET (or EPIPE) is an RST, and TCP_INFO's state is reported
alongside (CLOSE_WAIT after a FIN, CLOSE after an RST when we had not shut
down ourselves).

Behaviour (arguments):
  --host ADDR            address to listen on (port 0: the kernel picks)
  --read all|none|slow   read as fast as possible, not at all (until told
                         'read' on stdin), or --slow-bytes per 100 ms
  --slow-bytes N         bytes per 100 ms tick in slow mode (default 16384)
  --echo                 send back everything received
  --send N               send N pseudo-random bytes right after accepting
  --fin-after N          shutdown(SHUT_WR) once N bytes were received
  --on-eof fin|none      after the other side's FIN: send our FIN, or stay open
  --rcvbuf N             SO_RCVBUF of the listening socket (small: a full
                         window sooner)

Commands (one per line on stdin):
  read     start (or go on) reading as fast as possible
  probe    send one byte now (to learn whether the connection still exists)
  report   print the current view
  exit     print the final view and exit

Output: one JSON object per line on stdout:
  {"event":"listening","port":N}
  {"event":"accepted"}
  {"event":"end"|"report"|"exit", "bytes":..., "sha256":..., "how":"FIN"|"RST"|"open",
   "error":..., "state":..., "sent":..., "sentSha256":..., "recvQueue":...}
"""
import argparse
import errno
import fcntl
import hashlib
import json
import os
import selectors
import socket
import struct
import sys
import termios
import time

TCP_STATES = {1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2',
              6: 'TIME_WAIT', 7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN',
              11: 'CLOSING'}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def payload(n, seed=7):
    """Deterministic pseudo-random bytes (the test recomputes the hash)."""
    out = bytearray()
    block = hashlib.sha256(b'peer-%d' % seed).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


class Peer:
    def __init__(self, args):
        self.args = args
        self.reading = args.read != 'none'
        self.hash = hashlib.sha256()
        self.bytes = 0
        self.eof = False
        self.error = None
        self.how = 'open'
        self.shut_wr = False
        self.outbuf = bytearray()
        self.sent = 0
        self.sent_hash = hashlib.sha256()
        self.conn = None
        self.ended_reported = False
        self.last_slow = 0.0

    # -- kernel view -----------------------------------------------------
    def state(self):
        try:
            raw = self.conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
            return TCP_STATES.get(raw[0], str(raw[0]))
        except OSError:
            return None

    def recv_queue(self):
        try:
            buf = fcntl.ioctl(self.conn.fileno(), termios.FIONREAD, b'\0\0\0\0')
            return struct.unpack('i', buf)[0]
        except OSError:
            return None

    def view(self, event):
        return {'event': event, 'bytes': self.bytes, 'sha256': self.hash.hexdigest(),
                'how': self.how, 'error': self.error, 'eof': self.eof,
                'state': self.state() if self.conn else None,
                'recvQueue': self.recv_queue() if self.conn else None,
                'sent': self.sent, 'sentSha256': self.sent_hash.hexdigest(),
                'shutWr': self.shut_wr}

    # -- events ----------------------------------------------------------
    def failed(self, err):
        if self.error is None:
            self.error = errno.errorcode.get(err.errno, str(err.errno)) if err.errno else str(err)
        if err.errno in (errno.ECONNRESET, errno.EPIPE):
            self.how = 'RST'
        self.finish()

    def got_eof(self):
        self.eof = True
        st = self.state()
        if self.how == 'open':
            # Our own FIN already sent: CLOSE/TIME_WAIT is the normal end.
            self.how = 'RST' if (st == 'CLOSE' and not self.shut_wr) else 'FIN'
        if self.args.on_eof == 'fin':
            self.shutdown_wr()
        self.finish()

    def finish(self):
        if not self.ended_reported:
            self.ended_reported = True
            emit(self.view('end'))

    def shutdown_wr(self):
        if self.shut_wr or self.conn is None:
            return
        try:
            self.flush_out(block=True)
            self.conn.shutdown(socket.SHUT_WR)
            self.shut_wr = True
        except OSError as err:
            self.failed(err)

    def flush_out(self, block=False):
        while self.outbuf:
            try:
                n = self.conn.send(self.outbuf)
            except BlockingIOError:
                if not block:
                    return
                time.sleep(0.005)
                continue
            self.sent_hash.update(self.outbuf[:n])
            self.sent += n
            del self.outbuf[:n]

    def read_some(self, limit=1 << 20):
        try:
            data = self.conn.recv(limit)
        except BlockingIOError:
            return
        except OSError as err:
            self.failed(err)
            return
        if not data:
            self.got_eof()
            return
        self.bytes += len(data)
        self.hash.update(data)
        if self.args.echo and not self.shut_wr:
            self.outbuf += data
            try:
                self.flush_out()
            except OSError as err:
                self.failed(err)
        if self.args.fin_after is not None and self.bytes >= self.args.fin_after:
            self.shutdown_wr()

    def probe(self):
        try:
            self.conn.send(b'?')
            time.sleep(0.2)
            self.conn.recv(1 << 16)  # RST -> ECONNRESET
        except BlockingIOError:
            pass
        except OSError as err:
            self.failed(err)

    # -- main loop ---------------------------------------------------------
    def run(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.args.rcvbuf:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.args.rcvbuf)
        lsock.bind((self.args.host, 0))
        lsock.listen(1)
        emit({'event': 'listening', 'port': lsock.getsockname()[1]})
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ, 'accept')
        sel.register(sys.stdin, selectors.EVENT_READ, 'stdin')
        while True:
            timeout = 0.1 if self.args.read == 'slow' and self.reading else None
            for key, _ in sel.select(timeout):
                if key.data == 'accept':
                    self.conn, _ = lsock.accept()
                    self.conn.setblocking(False)
                    sel.unregister(lsock)
                    lsock.close()
                    emit({'event': 'accepted'})
                    if self.args.send:
                        self.outbuf += payload(self.args.send)
                        self.flush_out(block=True)
                    self.update(sel)
                elif key.data == 'stdin':
                    line = sys.stdin.readline()
                    cmd = line.strip()
                    if not line or cmd == 'exit':
                        emit(self.view('exit'))
                        return
                    if cmd == 'read':
                        self.reading = True
                        self.args.read = 'all'
                        self.update(sel)
                    elif cmd == 'probe' and self.conn is not None:
                        self.probe()
                        emit(self.view('probed'))
                    elif cmd == 'report':
                        emit(self.view('report'))
                elif key.data == 'conn':
                    if self.args.read == 'all':
                        self.read_some()
                        if self.eof or self.error:
                            sel.unregister(self.conn)
            if self.args.read == 'slow' and self.reading and self.conn is not None \
                    and not (self.eof or self.error):
                now = time.monotonic()
                if now - self.last_slow >= 0.1:
                    self.last_slow = now
                    self.read_some(self.args.slow_bytes)

    def update(self, sel):
        if self.conn is None or self.eof or self.error:
            return
        want = self.reading and self.args.read == 'all'
        try:
            sel.get_key(self.conn)
            registered = True
        except KeyError:
            registered = False
        if want and not registered:
            sel.register(self.conn, selectors.EVENT_READ, 'conn')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--host', required=True)
    p.add_argument('--read', choices=['all', 'none', 'slow'], default='all')
    p.add_argument('--slow-bytes', type=int, default=16384)
    p.add_argument('--echo', action='store_true')
    p.add_argument('--send', type=int, default=0)
    p.add_argument('--fin-after', type=int, default=None)
    p.add_argument('--on-eof', choices=['fin', 'none'], default='none')
    p.add_argument('--rcvbuf', type=int, default=0)
    Peer(p.parse_args()).run()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass

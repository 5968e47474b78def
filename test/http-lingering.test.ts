// lingeringClose(server): early responses reach clients that are still
// sending, judged by clients that are not Node (python3, curl) and by fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lingeringClose, DEFAULT_LINGERING_MAX_BYTES } from '../dist/http.js';
import { delay, expectError, fixtures, measureStall, runProcess, runPythonJson, until } from './helpers';

const MiB = 1024 * 1024;

// Python's http.client sends the whole body before it reads the response.
const PY_UPLOAD = String.raw`
import http.client, json, ssl, sys
port, size, secure, chunked = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == '1', sys.argv[4] == '1'
body = b'u' * size
if chunked: body = (b'u' * min(65536, size - i) for i in range(0, size, 65536))
try:
    if secure:
        c = http.client.HTTPSConnection('127.0.0.1', port, timeout=15, context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=15)
    c.request('POST', '/upload', body=body, headers={'Content-Type': 'application/octet-stream'}, encode_chunked=chunked)
    r = c.getresponse(); data = r.read()
    print(json.dumps(dict(ok=True, status=r.status, bytes=len(data), error=None)))
except Exception as e:
    print(json.dumps(dict(ok=False, status=None, bytes=0, error=type(e).__name__ + ':' + str(getattr(e, 'errno', '')))))
`;

// A raw client: sends a request head, then a body (a count, or forever),
// either before reading (sendFirst) or while reading; reports what it saw.
const PY_RAW = String.raw`
import errno, json, select, socket, sys, time
cfg = json.loads(sys.argv[1])
s = socket.create_connection(('127.0.0.1', cfg['port']))
t0 = time.monotonic()
def ms(): return round((time.monotonic() - t0) * 1000)
st = dict(response=b'', sent=0, finAtMs=None, rstAtMs=None, sendError=None, lastSendAtMs=None)
def fail(e):
    name = errno.errorcode.get(e.errno, str(e.errno))
    if st['sendError'] is None: st['sendError'] = name
    if e.errno in (errno.ECONNRESET, errno.EPIPE) and st['rstAtMs'] is None: st['rstAtMs'] = ms()
s.sendall(cfg['head'].encode('latin1'))
todo = cfg.get('body', 0)
forever = todo < 0
block = b'b' * 65536
if cfg.get('sendFirst'):
    try:
        while forever or todo > 0:
            n = s.send(block[:65536 if forever else min(todo, 65536)]); st['sent'] += n; todo -= n
        st['lastSendAtMs'] = ms()
    except OSError as e: fail(e)
if cfg.get('tail'):
    time.sleep(cfg.get('tailAfterMs', 0) / 1000)
    s.sendall(cfg['tail'].encode('latin1'))
if cfg.get('shutWr'): s.shutdown(socket.SHUT_WR)
if cfg.get('readAfterMs'): time.sleep(cfg['readAfterMs'] / 1000)
s.setblocking(False)
quiet_at = None
deadline = t0 + cfg.get('timeoutMs', 15000) / 1000
sending = st['sendError'] is None and (forever or todo > 0)
reading = True
while time.monotonic() < deadline:
    if not reading and not sending: time.sleep(0.05); continue
    r, w, _ = select.select([s] if reading else [], [s] if sending else [], [], 0.05)
    if r:
        try:
            d = s.recv(262144)
            if not d:
                st['finAtMs'] = ms(); reading = False
                if not cfg.get('stayAfterFin'): break
            st['response'] += d
        except BlockingIOError: pass
        except OSError as e:
            fail(e); break
    if w and sending:
        try:
            n = s.send(block if forever else block[:min(todo, 65536)]); st['sent'] += n; todo -= n
            st['lastSendAtMs'] = ms()
            if not forever and todo <= 0: sending = False
        except BlockingIOError: pass
        except OSError as e:
            fail(e); sending = False
    if st['rstAtMs'] is not None and not r: break
resp = st.pop('response')
st['status'] = resp.split(b'\r\n', 1)[0].decode('latin1')
st['received'] = len(resp)
head, _, body = resp.partition(b'\r\n\r\n')
st['bodyBytes'] = len(body)
st['text'] = resp[:8192].decode('latin1')
print(json.dumps(st))
`;

interface Upload { ok: boolean; status: number | null; bytes: number; error: string | null }
interface Raw {
  status: string; received: number; bodyBytes: number; sent: number;
  finAtMs: number | null; rstAtMs: number | null; sendError: string | null; lastSendAtMs: number | null;
  /** The first 8 KiB received. */
  text: string;
}

function upload(port: number, size: number, secure = false, chunked = false) {
  return runPythonJson<Upload>(PY_UPLOAD, [port, size, secure ? 1 : 0, chunked ? 1 : 0], 30_000);
}

interface RawConfig {
  port: number;
  head: string;
  /** Body bytes after the head; -1: forever. */
  body?: number;
  /** Send everything before reading. */
  sendFirst?: boolean;
  /** Go on (sending, or waiting quietly) after the server's FIN, which the lingering close sends first. */
  stayAfterFin?: boolean;
  /** Sent after the body, with sendFirst. */
  tail?: string;
  /** Wait this long before sending the tail (so that it is a read of its own). */
  tailAfterMs?: number;
  /** Half-close (SHUT_WR) once the head (and with sendFirst, the body) is sent. */
  shutWr?: boolean;
  /** Wait this long before the first read (and send) of the loop. */
  readAfterMs?: number;
  timeoutMs?: number;
}

function raw(config: RawConfig) {
  return runPythonJson<Raw>(PY_RAW, [JSON.stringify(config)], (config.timeoutMs ?? 15_000) + 10_000);
}

/** A server that answers 413 (Connection: close) without reading the body. */
function early413(responseBytes: number, secure = false): http.Server {
  const body = Buffer.alloc(responseBytes, 'r');
  const handler: http.RequestListener = (_req, res) => {
    res.writeHead(413, { 'Content-Length': body.length, Connection: 'close' });
    res.end(body);
  };
  return secure ? https.createServer(fixtures, handler) : http.createServer(handler);
}

async function listen(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function uploadHead(length: number): string {
  return `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`;
}

let dir: string;
let bigFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lingering-'));
  bigFile = join(dir, 'body.bin');
  writeFileSync(bigFile, Buffer.alloc(64 * MiB, 'c'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('an early 413 with the request body unread (64 MiB)', () => {
  it('without lingeringClose, python http.client loses the response (EPIPE/ECONNRESET)', async () => {
    const server = early413(4096);
    const port = await listen(server);
    const runs: Upload[] = [];
    for (let i = 0; i < 3; i++) runs.push(await upload(port, 64 * MiB));
    await close(server);
    const failures = runs.filter((run) => !run.ok || run.bytes !== 4096);
    expect(failures.length, JSON.stringify(runs)).toBeGreaterThanOrEqual(1);
    expect(failures.every((run) => /BrokenPipe|ConnectionReset|:32|:104/.test(String(run.error)))).toBe(true);
  });

  for (const size of [4096, 4 * MiB]) {
    it(`with lingeringClose, python http.client gets the whole ${size}-byte 413, 3/3`, async () => {
      const server = early413(size);
      lingeringClose(server, { lingeringTime: 10_000 });
      const port = await listen(server);
      for (let i = 0; i < 3; i++) {
        const run = await upload(port, 64 * MiB);
        expect(run, JSON.stringify(run)).toMatchObject({ ok: true, status: 413, bytes: size });
      }
      await close(server);
    });

    it(`with lingeringClose, curl --data-binary gets the whole ${size}-byte 413, 3/3`, async () => {
      const server = early413(size);
      lingeringClose(server, { lingeringTime: 10_000 });
      const port = await listen(server);
      for (let i = 0; i < 3; i++) {
        const out = await runProcess('curl', [
          '-sS', '--data-binary', `@${bigFile}`, '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
          `http://127.0.0.1:${port}/upload`,
        ]);
        expect(out, JSON.stringify(out)).toMatchObject({ code: 0, stdout: `413 ${size}` });
      }
      await close(server);
    });
  }

  it('a chunked upload (no Content-Length): python http.client gets the whole 4 MiB 413', async () => {
    const server = early413(4 * MiB);
    lingeringClose(server, { lingeringTime: 10_000 });
    const port = await listen(server);
    const run = await upload(port, 64 * MiB, false, true);
    expect(run, JSON.stringify(run)).toMatchObject({ ok: true, status: 413, bytes: 4 * MiB });
    await close(server);
  });

  it('https: python http.client and curl get the whole 413', async () => {
    const server = early413(64 * 1024, true);
    lingeringClose(server, { lingeringTime: 10_000 });
    const port = await listen(server);
    for (let i = 0; i < 3; i++) {
      const run = await upload(port, 64 * MiB, true);
      expect(run, JSON.stringify(run)).toMatchObject({ ok: true, status: 413, bytes: 64 * 1024 });
    }
    const out = await runProcess('curl', [
      '-sSk', '--data-binary', `@${bigFile}`, '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
      `https://127.0.0.1:${port}/upload`,
    ]);
    expect(out, JSON.stringify(out)).toMatchObject({ code: 0, stdout: `413 ${64 * 1024}` });
    await close(server);
  });

  it('server.close() completes once the lingering connections end', async () => {
    const server = early413(1024);
    lingeringClose(server, { lingeringTime: 10_000, lingeringTimeout: 600 });
    const port = await listen(server);
    // Sends 64 KiB of a 10 MiB body, then goes quiet (reading): the close waits for it.
    const accepted = once(server, 'connection');
    const client = raw({ port, head: uploadHead(10 * MiB), body: 64 * 1024, stayAfterFin: true, timeoutMs: 3000 });
    // Not before python3 has connected (it may take longer than 200 ms to start).
    await accepted;
    await delay(200);
    const start = performance.now();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const closedAfter = performance.now() - start;
    const seen = await client;
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.bodyBytes).toBe(1024);
    expect(seen.finAtMs).not.toBeNull();
    expect(seen.rstAtMs).toBeNull();
    // Quiet since ~0 ms: closed at lingeringTimeout (600 ms), 200 ms after server.close().
    expect(closedAfter).toBeGreaterThan(250);
    expect(closedAfter).toBeLessThan(1500);
  });
});

describe('the limits', () => {
  it('a client that never stops sending is cut off near lingeringTime, without stalling the loop', async () => {
    const server = early413(2048);
    lingeringClose(server, { lingeringTime: 1500, lingeringTimeout: 5000, maxBytes: Number.MAX_SAFE_INTEGER });
    const port = await listen(server);
    const { result: seen, maxStallMs } = await measureStall(() =>
      raw({ port, head: uploadHead(1e12), body: -1, stayAfterFin: true, timeoutMs: 8000 }));
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.bodyBytes).toBe(2048);
    expect(seen.finAtMs, JSON.stringify(seen)).toBeLessThan(500); // the lingering close's FIN, at once
    expect(seen.rstAtMs, JSON.stringify(seen)).not.toBeNull();
    expect(seen.rstAtMs!).toBeGreaterThan(1300);
    expect(seen.rstAtMs!).toBeLessThan(3000);
    expect(seen.sent).toBeGreaterThan(64 * MiB); // it really kept sending
    expect(maxStallMs).toBeLessThan(500);
  });

  it('a client that sends a bit and goes quiet is closed after lingeringTimeout', async () => {
    const server = early413(2048);
    lingeringClose(server, { lingeringTime: 10_000, lingeringTimeout: 500 });
    let connectedAt = 0;
    let closedAt = 0;
    server.on('connection', (socket: net.Socket) => {
      connectedAt = performance.now();
      socket.on('close', () => { closedAt = performance.now(); });
    });
    const port = await listen(server);
    const seen = await raw({ port, head: uploadHead(10 * MiB), body: 32 * 1024, stayAfterFin: true, timeoutMs: 2500 });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.bodyBytes).toBe(2048);
    expect(seen.sent).toBe(32 * 1024);
    expect(seen.finAtMs, JSON.stringify(seen)).not.toBeNull();
    expect(seen.rstAtMs).toBeNull();
    // The server's socket closed ~lingeringTimeout after the client's last byte.
    const quietFor = closedAt - connectedAt - (seen.lastSendAtMs ?? 0);
    expect(closedAt).toBeGreaterThan(0);
    expect(quietFor).toBeGreaterThan(400);
    expect(quietFor).toBeLessThan(1500);
  });

  it('a lingering close that ends before lingeringTimeout leaves no timer behind: the server process exits once the client has closed (child)', async () => {
    const code = String.raw`
      const http = require('node:http');
      const { lingeringClose } = require(process.argv[1]);
      const server = http.createServer((req, res) => {
        res.writeHead(413, { 'Content-Length': 2048, Connection: 'close' });
        res.end(Buffer.alloc(2048, 'r'));
        server.close();
      });
      lingeringClose(server, { lingeringTime: 20000, lingeringTimeout: 5000 });
      server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
    const child = spawn(process.execPath, ['-e', code, require.resolve('../dist/http.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
    const exited = new Promise<number>((resolve) => child.on('exit', () => resolve(performance.now())));
    try {
      const portLine = await Promise.race([
        once(createInterface({ input: child.stdout }), 'line').then(([line]) => line as string),
        exited.then(() => { throw new Error(`the server child exited before listening: ${stderr}`); }),
      ]);
      // Sends 32 KiB of a 10 MiB body, reads the 413 to our FIN, then closes its end (a FIN).
      const seen = await raw({ port: Number(portLine.trim()), head: uploadHead(10 * MiB), body: 32 * 1024, timeoutMs: 4000 });
      const clientDoneAt = performance.now();
      expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
      expect(seen.finAtMs).not.toBeNull();
      expect(seen.rstAtMs).toBeNull();
      const exitAt = await Promise.race([exited, delay(4500).then(() => Infinity)]);
      expect(stderr).toBe('');
      // An idle timer left armed would hold the process to lingeringTimeout (5 s).
      expect(exitAt - clientDoneAt, 'ms from the client closing to the server process exiting').toBeLessThan(3000);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('maxBytes: a client that keeps sending is cut off past the byte budget', async () => {
    const server = early413(2048);
    lingeringClose(server, { lingeringTime: 10_000, lingeringTimeout: 10_000, maxBytes: MiB });
    const port = await listen(server);
    const seen = await raw({ port, head: uploadHead(1e12), body: -1, stayAfterFin: true, timeoutMs: 8000 });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.bodyBytes).toBe(2048);
    expect(seen.rstAtMs, JSON.stringify(seen)).not.toBeNull();
    expect(seen.rstAtMs!).toBeLessThan(2000);
    // What the client got into the network: the budget plus the kernel's buffers.
    expect(seen.sent).toBeLessThan(48 * MiB);
  });
});

describe('connections that are not closing', () => {
  it('keep-alive connections whose requests were read are untouched (fetch, http.Agent)', async () => {
    let connections = 0;
    let closed = 0;
    const server = http.createServer(async (req, res) => {
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).length;
      res.end(`read ${bytes}`);
    });
    server.on('connection', (socket: net.Socket) => {
      connections++;
      socket.on('close', () => { closed++; });
    });
    lingeringClose(server, { lingeringTime: 1000, lingeringTimeout: 100 });
    const port = await listen(server);
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x'.repeat(1000 * i) });
      expect(await response.text()).toBe(`read ${1000 * i}`);
      await delay(150); // past lingeringTimeout: an idle keep-alive connection stays open
    }
    expect(closed).toBe(0);
    const byFetch = connections;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<net.Socket>();
    for (let i = 0; i < 4; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.request({ port, host: '127.0.0.1', method: 'POST', agent }, (res) => {
          sockets.add(res.socket);
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end('y'.repeat(100));
      });
      expect(text).toBe('read 100');
      await delay(150); // past lingeringTimeout: an idle keep-alive connection stays open
    }
    expect(sockets.size).toBe(1);
    expect(connections).toBe(byFetch + 1);
    expect(closed).toBe(0);
    agent.destroy();
    await close(server);
  });

  // Node answers the last allowed request with Connection: close and leaves the close to the client.
  it('the keep-alive limit (maxRequestsPerSocket): both responses delivered, no RST', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    server.maxRequestsPerSocket = 2;
    lingeringClose(server, { lingeringTime: 2000, lingeringTimeout: 500 });
    const port = await listen(server);
    const head = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
    const seen = await raw({ port, head: head.repeat(2), timeoutMs: 1000 });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 200 OK');
    expect(seen.bodyBytes, JSON.stringify(seen)).toBeGreaterThan(60); // the second response too
    expect(seen.rstAtMs).toBeNull();
  });
});

describe('the ways into the close', () => {
  const okClose: http.RequestListener = (_req, res) => {
    res.writeHead(200, { 'Content-Length': 2, Connection: 'close' });
    res.end('ok');
  };

  // No body to leave unread, but the client goes on sending (pipelined bytes):
  // node:http's destroySoon() becomes the lingering close.
  it('a GET answered with Connection: close while the client goes on sending: the response alone, a FIN, no RST', async () => {
    const server = http.createServer(okClose);
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 500 });
    const port = await listen(server);
    // The bytes come 300 ms after the GET: after the response, in no read of the parser's.
    const seen = await raw({ port, head: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', body: 4 * MiB, readAfterMs: 300, stayAfterFin: true, timeoutMs: 3000 });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 200 OK');
    expect(seen.bodyBytes, JSON.stringify(seen)).toBe(2); // nothing after it (no 400 for the bytes that followed)
    expect(seen.finAtMs, JSON.stringify(seen)).not.toBeNull();
    expect(seen.sendError, JSON.stringify(seen)).toBeNull();
    expect(seen.rstAtMs).toBeNull();
    expect(seen.sent).toBe(4 * MiB);
  });

  // The client half-closed: nothing to linger for, node:http's own close runs.
  it('a client that half-closed after its GET gets the response and a FIN', async () => {
    const server = http.createServer(okClose);
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 2000 });
    const port = await listen(server);
    const seen = await raw({
      port, head: 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', shutWr: true, timeoutMs: 1500,
    });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 200 OK');
    expect(seen.bodyBytes).toBe(2);
    expect(seen.finAtMs, JSON.stringify(seen)).not.toBeNull();
    expect(seen.rstAtMs).toBeNull();
  });

  // A GET's close starts when its response is flushed (not when it is ended):
  // lingeringTime does not run while the client has not read the response.
  it('a 4 MiB response to a GET that the client reads late (after lingeringTime) arrives whole, no RST', async () => {
    const body = Buffer.alloc(4 * MiB, 'r');
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': body.length, Connection: 'close' });
      res.end(body);
    });
    lingeringClose(server, { lingeringTime: 500, lingeringTimeout: 500 });
    const port = await listen(server);
    const seen = await raw({ port, head: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', readAfterMs: 1500, timeoutMs: 5000 });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 200 OK');
    expect(seen.bodyBytes, JSON.stringify({ ...seen, text: '' })).toBe(4 * MiB);
    expect(seen.finAtMs).not.toBeNull();
    expect(seen.rstAtMs).toBeNull();
  });

  it('a keep-alive response ended before its body came: the connection stays open for the next request', async () => {
    const server = http.createServer((req, res) => res.end(req.url === '/second' ? 'second-response' : 'early'));
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 300 });
    const port = await listen(server);
    const seen = await raw({
      port, head: uploadHead(MiB), body: MiB, sendFirst: true,
      tail: 'GET /second HTTP/1.1\r\nHost: x\r\n\r\n', stayAfterFin: true, timeoutMs: 1500,
    });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 200 OK');
    expect(seen.text).toContain('second-response');
    expect(seen.finAtMs).toBeNull(); // keep-alive: the server did not close
  });

  // What follows the request after the close began is discarded, not parsed:
  // no second request reaches the handler, and no parse error destroys the socket.
  it('bytes after the early-answered request are discarded: the handler sees one request, the client no RST', async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      res.writeHead(413, { 'Content-Length': 3, Connection: 'close' });
      res.end(req.url!.slice(0, 3));
    });
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 500 });
    const port = await listen(server);
    const seen = await raw({
      port, head: uploadHead(64 * 1024), body: 64 * 1024, sendFirst: true,
      tail: 'GET /second HTTP/1.1\r\nHost: x\r\n\r\n', stayAfterFin: true, timeoutMs: 1500,
    });
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.bodyBytes).toBe(3);
    expect(seen.rstAtMs).toBeNull();
    expect(requests).toBe(1);
    // In the same read as the head: the parser still has them when the close begins.
    const late = await raw({
      port, head: `${uploadHead(10)}0123456789GARBAGE\r\n\r\n`, body: 4 * MiB, stayAfterFin: true, timeoutMs: 3000,
    });
    await close(server);
    expect(late.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(late.bodyBytes, JSON.stringify(late)).toBe(3);
    expect(late.sendError, JSON.stringify(late)).toBeNull();
    expect(late.rstAtMs).toBeNull();
    expect(late.sent).toBe(4 * MiB);
  });

  it('the socket\'s own listeners stay: a server-side \'end\' listener sees the client\'s FIN during the close', async () => {
    const server = early413(1024);
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 2000 });
    let ended = 0;
    server.on('connection', (socket: net.Socket) => socket.on('end', () => { ended++; }));
    const port = await listen(server);
    // Sends 32 KiB of a 10 MiB body, reads the 413 to our FIN, then closes (a FIN).
    const seen = await raw({ port, head: uploadHead(10 * MiB), body: 32 * 1024, timeoutMs: 3000 });
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.finAtMs).not.toBeNull();
    await until(() => ended === 1, 3000, () => `'end' listener calls: ${ended}`);
    await close(server);
  });

  // No TCP socket to linger on: node:http's own close runs, the client still gets its EOF.
  it('a server on a Unix socket: a Connection: close response still ends with EOF', async () => {
    const server = http.createServer(okClose);
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 2000 });
    const path = join(dir, 'http.sock');
    server.listen(path);
    await once(server, 'listening');
    const seen = await runPythonJson<{ response: string; eof: boolean }>(String.raw`
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
data, eof = b'', False
try:
    while True:
        d = s.recv(65536)
        if not d: eof = True; break
        data += d
except socket.timeout: pass
print(json.dumps(dict(response=data.decode('latin1'), eof=eof)))
`, [path], 10_000);
    await close(server);
    expect(seen.response).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
    expect(seen.eof).toBe(true);
  });
});

describe('clientError', () => {
  // 20 KiB of header (over the 16 KiB default) and then 8 MiB more, all sent before reading.
  const oversized = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20 * 1024)}`;

  it('a request timeout gets Node\'s 408, then a FIN, no RST', async () => {
    const server = http.createServer({ requestTimeout: 400, headersTimeout: 400, connectionsCheckingInterval: 100 }, (_req, res) => res.end());
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 1000 });
    const port = await listen(server);
    const seen = await raw({ port, head: 'POST / HTTP/1.1\r\nHost: x\r\n', timeoutMs: 4000 });
    await close(server);
    expect(seen.status, JSON.stringify(seen)).toBe('HTTP/1.1 408 Request Timeout');
    expect(seen.finAtMs).not.toBeNull();
    expect(seen.rstAtMs).toBeNull();
  });

  it('a chunk extension over Node\'s limit gets Node\'s 413 while the client goes on sending', async () => {
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end()); });
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 1000 });
    const port = await listen(server);
    const head = `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=${'e'.repeat(20 * 1024)}`;
    const seen = await raw({ port, head, body: 4 * MiB, sendFirst: true, timeoutMs: 5000 });
    await close(server);
    expect(seen.status, JSON.stringify(seen)).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.sendError).toBeNull();
  });

  // A response under way: an error status line would land in its body.
  it('a parse error after the response head was sent: the client sees that response only, then the close', async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('partial');
      req.resume();
    });
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 500 });
    const port = await listen(server);
    const head = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    // The bad chunk size comes 300 ms after the head: the response has begun by then
    // (in the same read, the parser would fail before the request reached the app).
    const seen = await raw({
      port, head, tail: 'zz-not-a-chunk-size\r\n', tailAfterMs: 300, sendFirst: true, stayAfterFin: true, timeoutMs: 2000,
    });
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 200 OK');
    expect(seen.text).toContain('partial');
    expect(seen.text).not.toContain('400 Bad Request');
    expect(seen.finAtMs).not.toBeNull();
    expect(seen.rstAtMs).toBeNull();
  });

  // The parse error comes with the client's FIN (parser.finish()): nothing to linger for.
  it('a client that half-closes inside its request head gets Node\'s 400 and a FIN', async () => {
    // As node:http does without lingeringClose: the socket is destroyed with the parse error.
    for (const lingering of [true, false]) {
      const server = http.createServer((_req, res) => res.end());
      if (lingering) lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 2000 });
      const closed: boolean[] = [];
      server.on('connection', (socket: net.Socket) => socket.on('close', (hadError) => closed.push(hadError)));
      const port = await listen(server);
      const seen = await raw({ port, head: 'GET / HTTP/1.1\r\nHost: x\r\n', shutWr: true, timeoutMs: 1500 });
      await close(server);
      expect(seen.status).toBe('HTTP/1.1 400 Bad Request');
      expect(seen.finAtMs, JSON.stringify(seen)).not.toBeNull();
      expect(seen.rstAtMs).toBeNull();
      expect(closed, `lingeringClose ${lingering}`).toEqual([true]);
    }
  });

  // Once the close began, the parser hears nothing more: not even the client's
  // FIN inside the body, which would be a parse error for the user's listener.
  it('a clientError listener of the user\'s hears nothing from a connection already closing', async () => {
    const server = early413(1024);
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 2000 });
    const errors: string[] = [];
    server.on('clientError', (error: Error & { code?: string }, socket: net.Socket) => {
      errors.push(String(error.code));
      socket.destroy();
    });
    const port = await listen(server);
    // Sends 32 KiB of a 10 MiB body, reads the 413 to our FIN, then closes (a FIN).
    const seen = await raw({ port, head: uploadHead(10 * MiB), body: 32 * 1024, timeoutMs: 3000 });
    await delay(300);
    await close(server);
    expect(seen.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(seen.bodyBytes).toBe(1024);
    expect(seen.rstAtMs).toBeNull();
    expect(errors).toEqual([]);
  });

  it('without lingeringClose, a client still sending gets an RST for its body', async () => {
    const server = http.createServer((_req, res) => res.end());
    const port = await listen(server);
    const runs: Raw[] = [];
    for (let i = 0; i < 3; i++) runs.push(await raw({ port, head: oversized, body: 8 * MiB, sendFirst: true, timeoutMs: 5000 }));
    await close(server);
    // The client's sends fail (an RST): http.client and the like raise before they read.
    const lost = runs.filter((run) => run.sendError === 'ECONNRESET' || run.sendError === 'EPIPE');
    expect(lost.length, JSON.stringify(runs)).toBeGreaterThanOrEqual(1);
  });

  it('with lingeringClose, Node\'s 431 reaches the client, 3/3', async () => {
    const server = http.createServer((_req, res) => res.end());
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 1000 });
    const port = await listen(server);
    for (let i = 0; i < 3; i++) {
      const seen = await raw({ port, head: oversized, body: 8 * MiB, sendFirst: true, timeoutMs: 5000 });
      expect(seen.status, JSON.stringify(seen)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      expect(seen.sendError).toBeNull();
    }
    await close(server);
  });

  it('a malformed request gets Node\'s 400; a clientError listener of the user\'s decides alone', async () => {
    const server = http.createServer((_req, res) => res.end());
    lingeringClose(server, { lingeringTime: 5000, lingeringTimeout: 1000 });
    const port = await listen(server);
    const seen = await raw({ port, head: 'NOT HTTP\r\n\r\n', body: 4 * MiB, sendFirst: true, timeoutMs: 5000 });
    expect(seen.status).toBe('HTTP/1.1 400 Bad Request');
    let userSaw = 0;
    server.on('clientError', (_error, socket) => {
      userSaw++;
      socket.end('HTTP/1.1 400 Mine\r\n\r\n');
    });
    const mine = await raw({ port, head: 'NOT HTTP\r\n\r\n', timeoutMs: 3000 });
    expect(mine.status).toBe('HTTP/1.1 400 Mine');
    expect(userSaw).toBe(1);
    await close(server);
  });
});

describe('install, uninstall, options', () => {
  it('uninstall restores the default for new connections; a second install throws ERR_INVALID_STATE', async () => {
    const server = early413(4096);
    const uninstall = lingeringClose(server);
    expect(() => lingeringClose(server)).toThrow(expect.objectContaining({
      code: 'ERR_INVALID_STATE',
      message: 'lingeringClose() is installed on this server already: uninstall it first',
    }));
    uninstall();
    uninstall(); // once is enough; again is harmless
    expect(server.listenerCount('clientError')).toBe(0);
    expect(server.listenerCount('request')).toBe(1); // the handler's alone
    expect(server.listenerCount('connection')).toBe(1); // node:http's own
    const port = await listen(server);
    const runs: Upload[] = [];
    for (let i = 0; i < 3; i++) runs.push(await upload(port, 64 * MiB));
    expect(runs.filter((run) => !run.ok).length, JSON.stringify(runs)).toBeGreaterThanOrEqual(1);
    const again = lingeringClose(server, { lingeringTime: 10_000 });
    const run = await upload(port, 64 * MiB);
    expect(run).toMatchObject({ ok: true, status: 413, bytes: 4096 });
    // The first uninstall, called once more, leaves the second install in place.
    uninstall();
    expect(() => lingeringClose(server)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    const still = await upload(port, 64 * MiB);
    expect(still).toMatchObject({ ok: true, status: 413, bytes: 4096 });
    again();
    await close(server);
  });

  it('validates before any effect, with Node\'s error codes', async () => {
    const server = http.createServer();
    const bad: [unknown, unknown, string][] = [
      [null, undefined, 'ERR_INVALID_ARG_TYPE'],
      [{}, undefined, 'ERR_INVALID_ARG_TYPE'],
      [server, 'fast', 'ERR_INVALID_ARG_TYPE'],
      [server, null, 'ERR_INVALID_ARG_TYPE'],
      [server, { lingeringTime: '30s' }, 'ERR_INVALID_ARG_TYPE'],
      [server, { lingeringTime: -1 }, 'ERR_OUT_OF_RANGE'],
      [server, { lingeringTime: Infinity }, 'ERR_OUT_OF_RANGE'],
      [server, { lingeringTimeout: NaN }, 'ERR_OUT_OF_RANGE'],
      [server, { lingeringTimeout: 2 ** 31 }, 'ERR_OUT_OF_RANGE'],
      [server, { maxBytes: '1mb' }, 'ERR_INVALID_ARG_TYPE'],
      [server, { maxBytes: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [server, { maxBytes: -1 }, 'ERR_OUT_OF_RANGE'],
    ];
    for (const [target, options, code] of bad)
      await expectError(() => lingeringClose(target as http.Server, options as object), code);
    // The messages name the argument and what it must be, as Node's do.
    const messages: [unknown, unknown, string][] = [
      [{}, undefined, 'The "server" argument must be an instance of http.Server or https.Server. Received an instance of Object'],
      [server, 'fast', 'The "options" argument must be of type object. Received type string (\'fast\')'],
      [server, { lingeringTime: -1 }, '"options.lingeringTime"'],
      [server, { lingeringTimeout: NaN }, '"options.lingeringTimeout"'],
      [server, { maxBytes: '1mb' }, 'The "options.maxBytes" argument must be of type number. Received type string (\'1mb\')'],
      [server, { maxBytes: -1 }, `The value of "options.maxBytes" is out of range. It must be an integer >= 0 && <= ${Number.MAX_SAFE_INTEGER}. Received -1`],
    ];
    for (const [target, options, message] of messages)
      expect(() => lingeringClose(target as http.Server, options as object)).toThrow(message);
    expect(server.listenerCount('clientError')).toBe(0);
    expect(server.listenerCount('request')).toBe(0);
    expect(server.listenerCount('connection')).toBe(1); // node:http's own
    expect(DEFAULT_LINGERING_MAX_BYTES).toBe(64 * MiB);
    lingeringClose(server, { lingeringTime: 0, lingeringTimeout: 0, maxBytes: 0 })();
  });
});

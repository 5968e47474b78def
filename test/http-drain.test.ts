// drainServer on HTTP/1.1 (http and https) servers, judged by clients that
// are not Node (python raw sockets, curl) and by Node's own agents: idle
// keep-alive connections end with a FIN even with a request racing in,
// in-flight responses complete with Connection: close, stuck requests are
// reset at the deadline and counted; the count matches what clients saw.
import { afterEach, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { once } from 'node:events';
import { drainServer } from '../dist/http.js';
import { closeSocket } from '../dist/index.js';
import { PY_TLS_TCP_ENDING, curl, delay, fixtures, jsonLinesChild, until } from './helpers';

const cleanups: (() => unknown)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0)) await c(); });

// n keep-alive connections: a first request each, 'ready', then a second
// request on each ('go' on stdin: after the drain began; or at once, 'sent'),
// then read to the end: a response, a FIN (and the kernel state shortly
// after: CLOSE_WAIT = the server is still waiting for our FIN; CLOSED = an
// RST came), or a reset.
const PY_KEEPALIVE = String.raw`
import json, select, socket, sys, time
cfg = json.loads(sys.argv[1])
def emit(**k): sys.stdout.write(json.dumps(k) + "\n"); sys.stdout.flush()
STATES = {1:'ESTABLISHED',4:'FIN_WAIT_1',5:'FIN_WAIT_2',6:'TIME_WAIT',7:'CLOSED',8:'CLOSE_WAIT',9:'LAST_ACK',11:'CLOSING'}
def state(s):
    try: return STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0], '?')
    except OSError: return None
REQ = b'GET /second HTTP/1.1\r\nHost: x\r\n\r\n'
socks = []
for i in range(cfg['n']):
    s = socket.create_connection(('127.0.0.1', cfg['port']))
    s.sendall(b'GET /first HTTP/1.1\r\nHost: x\r\n\r\n')
    buf = b''
    while b'\r\n\r\nfirst' not in buf: buf += s.recv(4096)
    socks.append(s)
emit(event='ready')
if cfg['when'] == 'before':
    for s in socks: s.sendall(REQ)
    emit(event='sent')
else:
    sys.stdin.readline()
    for s in socks:
        try: s.sendall(REQ)
        except OSError as e: pass
out = []
for s in socks:
    r = dict(response=False, connectionClose=False, fin=False, rst=False, state=None)
    s.settimeout(5); data = b''
    try:
        while True:
            d = s.recv(65536)
            if not d: r['fin'] = True; break
            data += d
    except ConnectionResetError: r['rst'] = True
    except socket.timeout: pass
    r['response'] = data.startswith(b'HTTP/1.1 200')
    r['connectionClose'] = b'connection: close' in data.lower()
    time.sleep(0.05)
    r['state'] = state(s)
    if r['state'] == 'CLOSED' and r['fin']: r['rst'] = True
    s.close(); out.append(r)
emit(event='done', results=out)
`;

/** Answers /first at once, /second after `secondMs` (a request in flight when the drain begins). */
function keepAliveServer(secondMs = 0) {
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    if (req.url === '/first') res.end('first');
    else setTimeout(() => res.end('second'), secondMs);
  });
  return server;
}

async function listen<S extends net.Server>(server: S): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => { server.close(); (server as unknown as http.Server).closeAllConnections?.(); });
  return (server.address() as net.AddressInfo).port;
}

function pyKeepAlive(port: number, n: number, when: 'before' | 'after') {
  const py = jsonLinesChild('python3', ['-c', PY_KEEPALIVE, JSON.stringify({ port, n, when })]);
  cleanups.push(() => py.kill());
  return py;
}

type PyResult = { response: boolean; connectionClose: boolean; fin: boolean; rst: boolean; state: string | null };

describe('drainServer: idle keep-alive connections (python raw sockets)', () => {
  it('a request sent right after the drain began gets a clean FIN, never an RST; the count says so', async () => {
    const server = keepAliveServer();
    const port = await listen(server);
    const py = pyKeepAlive(port, 20, 'after');
    await py.next('ready');
    let dispatched = 0;
    server.on('request', (req: http.IncomingMessage) => { if (req.url === '/second') dispatched += 1; });
    const drained = drainServer(server, { timeout: 5000 });
    py.command('go');
    const [result, done] = await Promise.all([drained, py.next('done')]);
    const seen = done.results as PyResult[];
    expect(seen.filter((r) => r.rst)).toEqual([]);
    expect(seen.every((r) => r.fin)).toBe(true);
    // The racing requests were read and discarded: none reached the app, none got a response.
    expect(dispatched).toBe(0);
    expect(seen.filter((r) => r.response)).toEqual([]);
    expect(result).toMatchObject({ connections: 20, graceful: 20, abortive: 0, timedOut: 0, delivered: 20 });
  });

  it('a request already on its way when the drain begins gets a response (Connection: close) or a FIN, never an RST', async () => {
    const server = keepAliveServer(100);
    const port = await listen(server);
    const py = pyKeepAlive(port, 20, 'before');
    await py.next('sent');
    const [result, done] = await Promise.all([drainServer(server, { timeout: 5000 }), py.next('done')]);
    const seen = done.results as PyResult[];
    expect(seen.filter((r) => r.rst)).toEqual([]);
    for (const r of seen) if (r.response) expect(r.connectionClose).toBe(true);
    expect(result).toMatchObject({ connections: 20, graceful: 20, abortive: 0, timedOut: 0 });
  });

  it("without it: Node's server.close() destroys idle sockets, and the racing request is reset", async () => {
    const server = keepAliveServer();
    const port = await listen(server);
    const py = pyKeepAlive(port, 20, 'after');
    await py.next('ready');
    server.close(); // Node >= 19: closeIdleConnections(), destroy() of each idle socket
    py.command('go');
    const seen = (await py.next('done')).results as PyResult[];
    expect(seen.filter((r) => r.rst).length).toBeGreaterThan(0);
  });
});

// A slow response (the handler answers after ms), read by curl.
function slowServer(ms: number, factory: () => net.Server = () => http.createServer()) {
  const server = factory() as http.Server;
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/slow') setTimeout(() => res.end('x'.repeat(256 * 1024)), ms);
    else res.end('fast');
  });
  return server;
}

describe('drainServer: in-flight requests', () => {
  it('a slow response completes for curl with Connection: close, and is counted delivered', async () => {
    const server = slowServer(400);
    const port = await listen(server);
    const client = curl(['-i', `http://127.0.0.1:${port}/slow`]);
    while (server.listenerCount('request') > 0 && (await new Promise<number>((r) => server.getConnections((_, n) => r(n)))) === 0) await delay(10);
    await delay(100);
    const result = await drainServer(server, { timeout: 5000 });
    const seen = await client;
    expect(seen.code).toBe(0);
    expect(seen.body.toLowerCase()).toContain('connection: close');
    expect(seen.body.length).toBeGreaterThan(256 * 1024);
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0, delivered: 1 });
  });

  it('without it: server.close() + closeAllConnections() resets the in-flight response (curl fails)', async () => {
    const server = slowServer(400);
    const port = await listen(server);
    const client = curl([`http://127.0.0.1:${port}/slow`]);
    while ((await new Promise<number>((r) => server.getConnections((_, n) => r(n)))) === 0) await delay(10);
    await delay(100);
    server.close();
    server.closeAllConnections();
    const seen = await client;
    expect(seen.code).not.toBe(0);
  });

  it('a client stuck in its headers is reset at the timeout and counted timedOut; others are not', async () => {
    const server = slowServer(200);
    const port = await listen(server);
    const stuck = jsonLinesChild('python3', ['-c', String.raw`
import json, socket, sys
s = socket.create_connection(('127.0.0.1', ${port}))
s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\nX-Half: ')
print(json.dumps(dict(event='sent')), flush=True)
s.settimeout(5)
try:
    d = s.recv(100); print(json.dumps(dict(event='done', got='fin' if not d else 'data')), flush=True)
except ConnectionResetError: print(json.dumps(dict(event='done', got='rst')), flush=True)
except socket.timeout: print(json.dumps(dict(event='done', got='timeout')), flush=True)
`]);
    cleanups.push(() => stuck.kill());
    await stuck.next('sent');
    const slow = curl([`http://127.0.0.1:${port}/slow`, '-o', '/dev/null', '-w', '%{http_code}']);
    await delay(100);
    const start = performance.now();
    const [result, seen, slowSeen] = await Promise.all([drainServer(server, { timeout: 600 }), stuck.next('done'), slow]);
    expect(seen.got).toBe('rst');
    expect(slowSeen).toMatchObject({ code: 0, body: '200' });
    expect(performance.now() - start).toBeGreaterThan(550);
    expect(result).toMatchObject({ connections: 2, graceful: 1, abortive: 1, timedOut: 1, delivered: 1 });
  });

  it('an abort signal resets what remains at once', async () => {
    const server = slowServer(5000);
    const port = await listen(server);
    const client = curl([`http://127.0.0.1:${port}/slow`]);
    while ((await new Promise<number>((r) => server.getConnections((_, n) => r(n)))) === 0) await delay(10);
    await delay(50);
    const controller = new AbortController();
    const drained = drainServer(server, { timeout: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const result = await drained;
    expect(result.elapsedMs).toBeLessThan(1000);
    expect(result).toMatchObject({ connections: 1, abortive: 1, timedOut: 0 });
    expect((await client).code).not.toBe(0);
  });
});

// One connection (python raw socket): sends `send`, says 'sent'; reads to
// the end: all bytes, and FIN or RST (with hold, after the FIN it keeps its
// side open and watches for an RST); or, with reset, resets the connection
// on a line from stdin.
const PY_ONE = String.raw`
import json, socket, struct, sys
cfg = json.loads(sys.argv[1])
s = socket.create_connection(('127.0.0.1', cfg['port']))
s.sendall(cfg['send'].encode())
print(json.dumps(dict(event='sent')), flush=True)
if cfg.get('reset'):
    sys.stdin.readline(); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, bytes(struct.pack('ii', 1, 0))); s.close()
    print(json.dumps(dict(event='done', end='reset')), flush=True); sys.exit(0)
if cfg.get('fin'):
    sys.stdin.readline(); s.shutdown(socket.SHUT_WR)
if cfg.get('more'):
    sys.stdin.readline(); s.sendall(cfg['more'].encode())
s.settimeout(5); data = b''; end = 'timeout'
try:
    while True:
        d = s.recv(65536)
        if not d: end = 'fin'; break
        data += d
except ConnectionResetError: end = 'rst'
except socket.timeout: pass
if end == 'fin' and cfg.get('hold'):  # our side stays open: does an RST come later? (CLOSE_WAIT -> CLOSED)
    import time
    for _ in range(250):
        if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0] == 7: end = 'fin, then rst'; break
        time.sleep(0.02)
print(json.dumps(dict(event='done', end=end, data=data.decode('latin1'))), flush=True)
`;

function pyOne(port: number, send: string, { reset = false, hold = false, fin = false, more = '' } = {}) {
  const py = jsonLinesChild('python3', ['-c', PY_ONE, JSON.stringify({ port, send, reset, hold, fin, more })]);
  cleanups.push(() => py.kill());
  return py;
}

describe('drainServer: connections in other states (python raw sockets)', () => {
  it('a keep-alive response whose headers went out before the drain: it completes, then the connection ends with a FIN', async () => {
    const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      res.writeHead(200, { 'Content-Length': 10 });
      res.write('12345');
      setTimeout(() => res.end('67890'), 300);
    });
    const port = await listen(server);
    const py = pyOne(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await py.next('sent');
    await delay(100);
    const [result, seen] = await Promise.all([drainServer(server, { timeout: 3000 }), py.next('done')]);
    expect(seen.end).toBe('fin');
    expect(seen.data).toMatch(/^HTTP\/1\.1 200[^]*\r\n\r\n1234567890$/);
    // The headers were sent with keep-alive: no Connection: close could be added.
    expect(String(seen.data).toLowerCase()).not.toContain('connection: close');
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0, delivered: 1 });
  });

  it("an idle keep-alive client that never sends its FIN: the server's FIN, then the RST at the deadline, counted timedOut", async () => {
    const server = slowServer(0);
    const port = await listen(server);
    const py = pyOne(port, 'GET /fast HTTP/1.1\r\nHost: x\r\n\r\n', { hold: true });
    await py.next('sent');
    await delay(150);
    const [result, seen] = await Promise.all([drainServer(server, { timeout: 600 }), py.next('done')]);
    expect(seen.end).toBe('fin, then rst');
    expect(seen.data).toMatch(/fast$/);
    expect(result).toMatchObject({ connections: 1, graceful: 0, abortive: 1, timedOut: 1 });
  });

  it('a client that resets the connection in the middle of its headers: counted then (abortive, not waited, not timed out), not at the deadline', async () => {
    const server = slowServer(0);
    const port = await listen(server);
    const py = pyOne(port, 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Half: ', { reset: true });
    await py.next('sent');
    await delay(100);
    const drained = drainServer(server, { timeout: 4000 });
    await delay(100);
    py.command('reset');
    const result = await drained;
    expect(result).toMatchObject({ connections: 1, graceful: 0, abortive: 1, timedOut: 0 });
    expect(result.results[0]).toMatchObject({ type: 'abortive', waited: false, timedOut: false, delivered: null });
    // The drain ended with the client's RST (a loose bound: well before the 4 s deadline).
    expect(result.elapsedMs).toBeLessThan(3000);
  });

  it('a connection with nothing sent yet: the FIN at once (not the RST at the deadline); graceful', async () => {
    const server = slowServer(0);
    const port = await listen(server);
    const py = pyOne(port, '');
    await py.next('sent');
    await until(() => (server as unknown as { _connections: number })._connections === 1);
    await delay(50);
    const [result, seen] = await Promise.all([drainServer(server, { timeout: 3000 }), py.next('done')]);
    expect(seen).toMatchObject({ end: 'fin', data: '' });
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0 });
  });

  it('an upgraded connection the app keeps open: the FIN at once (not the RST at the deadline); graceful', async () => {
    const server = slowServer(0);
    server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nhello');
    });
    const port = await listen(server);
    const py = pyOne(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n');
    await py.next('sent');
    await delay(150);
    const [result, seen] = await Promise.all([drainServer(server, { timeout: 3000 }), py.next('done')]);
    expect(seen.end).toBe('fin');
    expect(seen.data).toMatch(/^HTTP\/1\.1 101[^]*hello$/);
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0 });
  });

  it('a request whose headers end during the drain: answered with Connection: close, then a FIN; graceful, delivered', async () => {
    const server = slowServer(0);
    let dispatched = 0;
    server.on('request', () => { dispatched += 1; });
    const port = await listen(server);
    // /slow answers on a later tick: the drain's 'request' listener (after the app's) can still add Connection: close.
    const py = pyOne(port, 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Half: ', { more: 'y\r\n\r\n' });
    await py.next('sent');
    await delay(100);
    const drained = drainServer(server, { timeout: 3000 });
    await delay(100);
    py.command('more');
    const [result, seen] = await Promise.all([drained, py.next('done')]);
    expect(dispatched).toBe(1);
    expect(seen.end).toBe('fin');
    expect(seen.data).toMatch(/^HTTP\/1\.1 200[^]*\r\n\r\nx{262144}$/);
    expect(String(seen.data).toLowerCase()).toContain('connection: close');
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0, delivered: 1 });
  });

  it("a client that sends its FIN in the middle of its headers: Node's 400, then a clean FIN; counted graceful, not abortive", async () => {
    const server = slowServer(0);
    const port = await listen(server);
    const py = pyOne(port, 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Half: ', { fin: true });
    await py.next('sent');
    await delay(100);
    const drained = drainServer(server, { timeout: 4000 });
    await delay(100);
    py.command('fin');
    const [result, seen] = await Promise.all([drained, py.next('done')]);
    expect(seen.end).toBe('fin');
    expect(seen.data).toMatch(/^HTTP\/1\.1 400/);
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0 });
    expect(result.results[0]).toMatchObject({ type: 'graceful', waited: false, timedOut: false, delivered: null });
  });
});

describe('drainServer: counting', () => {
  it('a connection the app destroyed just before the drain (its close still pending) is not counted; the other is, and its client sees the FIN', async () => {
    const server = slowServer(0);
    const sockets: net.Socket[] = [];
    server.on('connection', (s: net.Socket) => sockets.push(s));
    const port = await listen(server);
    const first = pyOne(port, 'GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    const second = pyOne(port, 'GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.all([first.next('sent'), second.next('sent')]);
    await until(() => sockets.length === 2);
    await delay(150);
    sockets[0].destroy();
    const [result, seenFirst, seenSecond] = await Promise.all([drainServer(server, { timeout: 3000 }), first.next('done'), second.next('done')]);
    expect(seenFirst.end).toBe('fin');
    expect(seenSecond.end).toBe('fin');
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0 });
    expect(result.results).toHaveLength(1);
  });
});

describe('drainServer: Node clients', () => {
  it('http.Agent keep-alive sockets and an in-flight request: all graceful; the agent sees the FIN', async () => {
    const server = slowServer(300);
    const port = await listen(server);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    cleanups.push(() => agent.destroy());
    const get = (path: string) => new Promise<{ status?: number; body: string; connection?: string }>((resolve, reject) => {
      http.get({ port, host: '127.0.0.1', path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body, connection: res.headers.connection }));
      }).on('error', reject);
    });
    await Promise.all([get('/'), get('/'), get('/')]);
    const slow = get('/slow');
    await delay(100);
    const freeBefore = Object.values(agent.freeSockets).flat().length;
    const result = await drainServer(server, { timeout: 5000 });
    const slowSeen = await slow;
    expect(slowSeen.connection).toBe('close');
    expect(slowSeen.body.length).toBe(256 * 1024);
    expect(freeBefore).toBe(2);
    expect(result).toMatchObject({ connections: 3, graceful: 3, abortive: 0, delivered: 3 });
    // The agent dropped its pooled sockets on their FIN.
    expect(Object.values(agent.freeSockets).flat().length).toBe(0);
  });

  it('fetch (undici) keep-alive connections end gracefully', async () => {
    const server = slowServer(300);
    const port = await listen(server);
    for (let i = 0; i < 3; i++) expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('fast');
    const slow = fetch(`http://127.0.0.1:${port}/slow`).then(async (r) => ({ connection: r.headers.get('connection'), length: (await r.text()).length }));
    await delay(100);
    const result = await drainServer(server, { timeout: 5000 });
    expect(await slow).toEqual({ connection: 'close', length: 256 * 1024 });
    expect(result.abortive).toBe(0);
    expect(result.graceful).toBe(result.connections);
  });
});

describe('drainServer: https', () => {
  it('curl -k with a slow response and an idle keep-alive https.Agent socket: delivered, graceful', async () => {
    const server = slowServer(300, () => https.createServer({ key: fixtures.key, cert: fixtures.cert }));
    const port = await listen(server);
    const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
    cleanups.push(() => agent.destroy());
    await new Promise<void>((resolve, reject) => https.get({ port, host: '127.0.0.1', path: '/', agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject));
    const client = curl(['-k', '-i', `https://127.0.0.1:${port}/slow`]);
    while ((await new Promise<number>((r) => server.getConnections((_, n) => r(n)))) < 2) await delay(10);
    await delay(100);
    const result = await drainServer(server, { timeout: 5000 });
    const seen = await client;
    expect(seen.code).toBe(0);
    expect(seen.body.toLowerCase()).toContain('connection: close');
    // curl stops at the end of the body (Content-Length) and closes; when our
    // TLS close_notify is still unread in its socket, its kernel resets, and
    // the count reports that RST although curl had the whole response.
    expect(result).toMatchObject({ connections: 2, timedOut: 0 });
    expect(result.graceful).toBeGreaterThanOrEqual(1);
    expect(result.graceful + result.abortive).toBe(2);
    expect(result.delivered).toBe(result.graceful);
  });
});

describe('drainServer: arguments', () => {
  it('rejects what is not a server, and bad options', async () => {
    await expect(drainServer({} as http.Server)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    const server = http.createServer();
    await expect(drainServer(server, { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(drainServer(server, { signal: 1 as unknown as AbortSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('the errors name the argument and what it must be', async () => {
    await expect(drainServer({} as http.Server)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
      message: expect.stringContaining('The "server" argument must be an instance of http.Server, https.Server, http2.Http2Server or http2.Http2SecureServer'),
    });
    const server = http.createServer();
    for (const options of [null, 5, 'x'])
      await expect(drainServer(server, options as never)).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('The "options" argument must be of type object'),
      });
    await expect(drainServer(server, { signal: 1 as unknown as AbortSignal })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('The "options.signal" argument must be an instance of AbortSignal'),
    });
    await expect(drainServer(server, { timeout: 'soon' as unknown as number })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"options.timeout"'),
    });
    await expect(drainServer(server, { timeout: 2 ** 31 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('"options.timeout"'),
    });
  });

  it('options without a timeout (empty, or a signal only) drain with the default', async () => {
    const server = http.createServer();
    await listen(server);
    expect(await drainServer(server, {})).toMatchObject({ connections: 0 });
    const other = http.createServer();
    await listen(other);
    expect(await drainServer(other, { signal: new AbortController().signal })).toMatchObject({ connections: 0 });
    expect(server.listening || other.listening).toBe(false);
  });

  it("a server closed already: the drain does not close it again (no second 'close' event)", async () => {
    const server = http.createServer();
    await listen(server);
    let closes = 0;
    server.on('close', () => { closes += 1; });
    server.close();
    await once(server, 'close');
    expect(await drainServer(server)).toMatchObject({ connections: 0 });
    await delay(20);
    expect(closes).toBe(1);
  });

  // The drain's listeners go with it: a server listening again serves as usual.
  for (const [name, factory, scheme] of [
    ['http', () => http.createServer(), 'http'],
    ['https', () => https.createServer({ key: fixtures.key, cert: fixtures.cert }), 'https'],
  ] as const)
    it(`${name}: a server listening again after a drain answers curl with keep-alive, untouched by the drain`, async () => {
      const server = slowServer(0, factory);
      await listen(server);
      await drainServer(server, { timeout: 2000 });
      const port = await listen(server);
      // /slow answers on a later tick: its headers could still take a Connection: close.
      const seen = await curl(['-k', '-s', '-D', '-', '-o', '/dev/null', `${scheme}://127.0.0.1:${port}/slow`]);
      expect(seen.code).toBe(0);
      expect(seen.body).toMatch(/^HTTP\/1\.1 200/);
      expect(seen.body.toLowerCase()).toContain('connection: keep-alive');
    });

  it('a server with no connections drains at once', async () => {
    const server = http.createServer();
    await listen(server);
    const result = await drainServer(server);
    expect(result).toMatchObject({ connections: 0, graceful: 0, abortive: 0, results: [] });
    expect(server.listening).toBe(false);
  });
});

// A TLS client whose TCP connection is up but whose handshake has not run
// yet: it says 'connected'; on 'go' (after the drain began) it does the
// handshake, sends a keep-alive GET and reads to the end (FIN or RST).
const PY_TLS_LATE = String.raw`
import json, socket, ssl, sys
${PY_TLS_TCP_ENDING}
port = int(sys.argv[1])
raw = socket.create_connection(('127.0.0.1', port))
print(json.dumps(dict(event='connected')), flush=True)
sys.stdin.readline()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw, server_hostname='x')
s.sendall(b'GET /fast HTTP/1.1\r\nHost: x\r\n\r\n')
s.settimeout(5); data = b''; end = 'timeout'
try:
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    end = ending(s)
except (ConnectionResetError, ssl.SSLError): end = ending(s)
except socket.timeout: pass
print(json.dumps(dict(event='done', end=end, data=data.decode('latin1'))), flush=True)
`;

describe('drainServer: https connections still in their TLS handshake', () => {
  it('a handshake finished during the drain: the drain waits for it, and the fresh connection ends with a FIN like any with no request yet', async () => {
    const server = slowServer(0, () => https.createServer({ key: fixtures.key, cert: fixtures.cert }));
    const port = await listen(server);
    const py = jsonLinesChild('python3', ['-c', PY_TLS_LATE, String(port)]);
    cleanups.push(() => py.kill());
    await py.next('connected');
    while ((await new Promise<number>((r) => server.getConnections((_, n) => r(n)))) === 0) await delay(10);
    const drained = drainServer(server, { timeout: 5000 });
    let finished = false;
    void drained.then(() => { finished = true; });
    await delay(100);
    // The drain is still waiting for the connection in its handshake.
    expect(finished).toBe(false);
    py.command('go');
    const [result, seen] = await Promise.all([drained, py.next('done')]);
    // Before the fix the drain ended at once (connections: 0) and this client
    // got a keep-alive response on a connection nobody closed.
    expect(seen).toMatchObject({ end: 'fin', data: '' });
    expect(result).toMatchObject({ connections: 1, graceful: 1, abortive: 0, timedOut: 0 });
  });
});

// A TLS client that upgrades its connection ('Upgrade: foo'), says 'upgraded'
// once the 101 and the server's 'hello' are in, then reads to the end.
const PY_TLS_UPGRADE = String.raw`
import json, socket, ssl, sys
${PY_TLS_TCP_ENDING}
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port)), server_hostname='x')
s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
s.settimeout(10); data = b''; end = 'timeout'
while not data.endswith(b'hello'): data += s.recv(65536)
print(json.dumps(dict(event='upgraded')), flush=True)
try:
    while s.recv(65536): pass
    end = ending(s)
except (ConnectionResetError, ssl.SSLError): end = ending(s)
except socket.timeout: pass
print(json.dumps(dict(event='done', end=end)), flush=True)
`;

describe('drainServer: upgraded https connections (wss), which node:http no longer lists', () => {
  function upgradingServer(kept: tls.TLSSocket[]) {
    const server = https.createServer({ key: fixtures.key, cert: fixtures.cert });
    server.on('upgrade', (_req: http.IncomingMessage, socket: tls.TLSSocket) => {
      kept.push(socket);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nhello');
    });
    return server;
  }

  it('left to the drain: reset at the timeout, and the result says so (abortive, timed out)', async () => {
    const server = upgradingServer([]);
    const port = await listen(server);
    const py = jsonLinesChild('python3', ['-c', PY_TLS_UPGRADE, String(port)]);
    cleanups.push(() => py.kill());
    await py.next('upgraded');
    const start = performance.now();
    const [result, seen] = await Promise.all([drainServer(server, { timeout: 1000 }), py.next('done')]);
    expect(seen.end).toBe('rst');
    expect(performance.now() - start, 'ms to the reset').toBeGreaterThanOrEqual(900);
    expect(result).toMatchObject({ connections: 1, graceful: 0, abortive: 1, timedOut: 1 });
  });

  it("closed by the app first (the README's recipe): closeSocket() on the kept TLSSocket, a FIN; then the drain has nothing left", async () => {
    const kept: tls.TLSSocket[] = [];
    const server = upgradingServer(kept);
    const port = await listen(server);
    const py = jsonLinesChild('python3', ['-c', PY_TLS_UPGRADE, String(port)]);
    cleanups.push(() => py.kill());
    await py.next('upgraded');
    const [closed, seen] = await Promise.all([closeSocket(kept[0]!), py.next('done')]);
    expect(seen.end).toBe('fin');
    expect(closed).toMatchObject({ type: 'graceful', timedOut: false });
    expect(await drainServer(server, { timeout: 1000 })).toMatchObject({ connections: 0, abortive: 0 });
  });
});

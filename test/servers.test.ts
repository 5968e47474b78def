// Servers and handles at the edges of their lives: closed and re-listened
// servers, sockets still connecting, cluster workers' listeners, and the
// Proxy an http2 session puts in front of its socket.
import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { getLinger, getTcpInfo, setLinger, shutdown } from '../dist/index.js';
import { connectionPhase } from '../dist/handle.js';
import { native } from '../dist/native.js';
import { connectPair, delay, expectError, watchPeer, type Pair } from './helpers';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** SO_LINGER as the kernel has it, read straight through the addon. */
function kernelLinger(target: net.Socket | net.Server) {
  const out = new Int32Array(2);
  const handle = (target as unknown as { _handle: { fd: number } })._handle;
  expect(native.getLinger(handle.fd, out)).toBe(0);
  return { enabled: out[0] === 1, seconds: out[1] };
}

async function listening(server: net.Server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

function closeServer(server: net.Server) {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

async function accept(server: net.Server, port: number) {
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [socket] = (await accepted) as [net.Socket];
  cleanups.push(() => { client.destroy(); socket.destroy(); });
  return { client, socket };
}

describe('a closed server', () => {
  it('setLinger, getLinger and getTcpInfo throw ERR_SOCKET_CLOSED', async () => {
    const server = net.createServer();
    await listening(server);
    setLinger(server, true, 3);
    await closeServer(server);
    await expectError(() => setLinger(server, true, 5), 'ERR_SOCKET_CLOSED');
    await expectError(() => setLinger(server, false), 'ERR_SOCKET_CLOSED');
    await expectError(() => getLinger(server), 'ERR_SOCKET_CLOSED');
    await expectError(() => getTcpInfo(server), 'ERR_SOCKET_CLOSED');
    // Nothing was kept for a later listen: a new listening socket starts off.
    const port = await listening(server);
    cleanups.push(() => closeServer(server));
    expect(kernelLinger(server)).toEqual({ enabled: false, seconds: 0 });
    const { socket } = await accept(server, port);
    expect(kernelLinger(socket)).toEqual({ enabled: false, seconds: 0 });
  });

  it('re-listened, it works again; one that never listened still defers to listening', async () => {
    const server = net.createServer();
    await listening(server);
    await closeServer(server);
    const port = await listening(server);
    cleanups.push(() => closeServer(server));
    setLinger(server, true, 4);
    expect(kernelLinger(server)).toEqual({ enabled: true, seconds: 4 });
    expect(getLinger(server)).toEqual({ enabled: true, seconds: 4 });
    expect(getTcpInfo(server).state).toBe('LISTEN');
    expect(kernelLinger((await accept(server, port)).socket)).toEqual({ enabled: true, seconds: 4 });

    const fresh = net.createServer();
    setLinger(fresh, true, 6);
    expect(getLinger(fresh)).toEqual({ enabled: true, seconds: 6 });
    const freshPort = await listening(fresh);
    cleanups.push(() => closeServer(fresh));
    expect(kernelLinger((await accept(fresh, freshPort)).socket)).toEqual({ enabled: true, seconds: 6 });
  });
});

describe('getTcpInfo and connectionPhase before and after a connection', () => {
  it('connecting: SYN_SENT until the OS socket exists, then the kernel; never connected: CLOSED; destroyed: throws', async () => {
    const server = net.createServer((s) => s.resume());
    const port = await listening(server);
    cleanups.push(() => closeServer(server));

    const never = new net.Socket();
    expect(connectionPhase(never)).toBe('unconnected');
    expect(getTcpInfo(never)).toEqual({ state: 'CLOSED', unsentBytes: 0, unackedBytes: 0 });

    const client = net.connect(port, '127.0.0.1');
    cleanups.push(() => client.destroy());
    expect(connectionPhase(client)).toBe('connecting');
    // Node makes the OS socket on the next tick: nothing to ask yet.
    expect(getTcpInfo(client)).toEqual({ state: 'SYN_SENT', unsentBytes: null, unackedBytes: null });
    // Two ticks on, connect(2) has run but 'connect' has not been emitted:
    // the kernel answers (on loopback it has usually finished the handshake).
    const inKernel = await new Promise<ReturnType<typeof getTcpInfo>>((resolve) =>
      process.nextTick(() => process.nextTick(() => {
        expect(client.connecting).toBe(true);
        resolve(getTcpInfo(client));
      })));
    expect(['SYN_SENT', 'ESTABLISHED']).toContain(inKernel.state);
    expect(inKernel.unsentBytes).toBe(0);
    await once(client, 'connect');
    expect(connectionPhase(client)).toBe('connected');
    expect(getTcpInfo(client).state).toBe('ESTABLISHED');
    client.destroy();
    expect(connectionPhase(client)).toBe('closed');
    await expectError(() => getTcpInfo(client), 'ERR_SOCKET_CLOSED');
    never.destroy();
    expect(connectionPhase(never)).toBe('closed');
    await expectError(() => getTcpInfo(never), 'ERR_SOCKET_CLOSED');
  });
});

interface ClusterReport {
  event: 'listening' | 'accepted' | 'done' | 'error';
  port?: number;
  linger?: { enabled: boolean; seconds: number };
  info?: ReturnType<typeof getTcpInfo>;
  handle?: string;
  written?: number;
  destroyMs?: number;
  code?: string;
  message?: string;
}

/** A cluster primary with one worker (test/fixtures/cluster-linger.cjs); its reports in order. */
function clusterWorker(policy: 'rr' | 'none', seconds: number | 'unset') {
  const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'cluster-linger.cjs'), policy, String(seconds)], {
    env: { ...process.env, SOCKET_LINGER_DIST: join(__dirname, '..', 'dist', 'index.js') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => child.kill());
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return async function next(event: ClusterReport['event']): Promise<ClusterReport> {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the cluster exited before '${event}'`);
    const report = JSON.parse(value) as ClusterReport;
    if (report.event === 'error') throw new Error(`worker: ${report.code}: ${report.message}`);
    expect(report.event).toBe(event);
    return report;
  };
}

describe.each([
  ['round-robin (SCHED_RR)', 'rr', 'Object'],
  ['shared handle (SCHED_NONE)', 'none', 'TCP'],
] as const)('a cluster worker, %s', (_name, policy, handleKind) => {
  it('linger 0 set on its server: each accepted socket has it, and destroy() resets the client', async () => {
    const next = clusterWorker(policy, 0);
    const ready = await next('listening');
    expect(ready.handle).toBe(handleKind);
    expect(ready.linger).toEqual({ enabled: true, seconds: 0 });
    expect(ready.info?.state).toBe('LISTEN');
    if (policy === 'rr') expect(ready.info).toEqual({ state: 'LISTEN', unsentBytes: null, unackedBytes: null });
    const client = net.connect(ready.port!, '127.0.0.1');
    cleanups.push(() => client.destroy());
    const view = watchPeer(client);
    expect((await next('accepted')).linger).toEqual({ enabled: true, seconds: 0 });
    await next('done');
    const seen = await view.done;
    expect(seen.error).toBe('ECONNRESET');
    expect(seen.outcome).toBe('RST');
  });

  it('no setting: getLinger(server) says off, each accepted socket is off, and destroy() gives the client a FIN', async () => {
    const next = clusterWorker(policy, 'unset');
    const ready = await next('listening');
    expect(ready.linger).toEqual({ enabled: false, seconds: 0 });
    const client = net.connect(ready.port!, '127.0.0.1');
    cleanups.push(() => client.destroy());
    const view = watchPeer(client);
    expect((await next('accepted')).linger).toEqual({ enabled: false, seconds: 0 });
    await next('done');
    const seen = await view.done;
    expect(seen).toMatchObject({ ended: true, error: null, outcome: 'FIN' });
  });

  it('linger 2: destroy() with unread data does not stall the worker, and the client gets every byte and a FIN', async () => {
    const next = clusterWorker(policy, 2);
    const ready = await next('listening');
    expect(ready.linger).toEqual({ enabled: true, seconds: 2 });
    const client = net.connect(ready.port!, '127.0.0.1');
    cleanups.push(() => client.destroy());
    const view = watchPeer(client, { startPaused: true });
    expect((await next('accepted')).linger).toEqual({ enabled: true, seconds: 2 });
    const done = await next('done');
    expect(done.destroyMs).toBeLessThan(500);
    client.resume();
    const seen = await view.done;
    expect(seen).toMatchObject({ bytes: done.written, ended: true, error: null, outcome: 'FIN' });
  });
});

it("a cluster worker's round-robin server on a pipe: setLinger and getLinger say ERR_INVALID_HANDLE_TYPE, as for a pipe server of its own", async () => {
  // Round-robin applies to pipes too (lib/internal/cluster/primary.js); the
  // worker's stand-in handle then has no getsockname (child.js rr()).
  const dir = mkdtempSync(join(tmpdir(), 'sl-rr-pipe-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const script = `
    const cluster = require('node:cluster');
    cluster.schedulingPolicy = cluster.SCHED_RR;
    if (cluster.isPrimary) {
      const worker = cluster.fork();
      worker.on('message', (m) => { process.stdout.write(JSON.stringify(m) + '\\n'); worker.kill(); });
      worker.on('exit', () => process.exit(0));
    } else {
      const net = require('node:net');
      const { setLinger, getLinger } = require(process.env.SOCKET_LINGER_DIST);
      const server = net.createServer();
      server.listen(require('node:path').join(process.env.PIPE_DIR, 'p.sock'), () => {
        const codes = [];
        for (const call of [() => setLinger(server, true, 1), () => getLinger(server)]) {
          try { call(); codes.push(null); } catch (error) { codes.push(error.code); }
        }
        process.send({ handle: server._handle.constructor.name, codes });
      });
    }`;
  // A file, not -e: cluster.fork() runs the primary's script again.
  writeFileSync(join(dir, 'rr-pipe.cjs'), script);
  const child = spawn(process.execPath, [join(dir, 'rr-pipe.cjs')], {
    env: { ...process.env, SOCKET_LINGER_DIST: join(__dirname, '..', 'dist', 'index.js'), PIPE_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => child.kill());
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  expect(JSON.parse(line)).toEqual({ handle: 'Object', codes: ['ERR_INVALID_HANDLE_TYPE', 'ERR_INVALID_HANDLE_TYPE'] });
});

describe('an http2 session socket', () => {
  async function session() {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const serverSockets: net.Socket[] = [];
    server.on('connection', (socket: net.Socket) => serverSockets.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    cleanups.push(() => new Promise<void>((resolve) => {
      client.destroy();
      server.close(() => resolve());
    }));
    await once(client, 'connect');
    return { client, serverSocket: serverSockets[0] };
  }

  function request(client: http2.ClientHttp2Session) {
    return new Promise<string>((resolve, reject) => {
      const req = client.request({ ':path': '/' });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => { body += chunk; });
      req.on('end', () => resolve(body));
      req.on('error', reject);
      req.end();
    });
  }

  it("shutdown() throws Node's ERR_HTTP2_NO_SOCKET_MANIPULATION before any syscall; the session goes on", async () => {
    const { client, serverSocket } = await session();
    expect(await request(client)).toBe('ok');
    for (const how of ['write', 'read', 'both'] as const)
      await expectError(() => shutdown(client.socket, how), 'ERR_HTTP2_NO_SOCKET_MANIPULATION');
    await delay(50);
    // No FIN reached the server, and the connection still carries requests.
    expect(getTcpInfo(serverSocket).state).toBe('ESTABLISHED');
    expect(getTcpInfo(client.socket).state).toBe('ESTABLISHED');
    expect(await request(client)).toBe('ok');
  });

  it('setLinger, getLinger and getTcpInfo work on it (they leave the stream alone)', async () => {
    const { client } = await session();
    setLinger(client.socket, true, 7);
    expect(getLinger(client.socket)).toEqual({ enabled: true, seconds: 7 });
    expect(kernelLinger(client.socket)).toEqual({ enabled: true, seconds: 7 });
    expect(getTcpInfo(client.socket).state).toBe('ESTABLISHED');
    setLinger(client.socket, false);
    expect(kernelLinger(client.socket)).toEqual({ enabled: false, seconds: 0 });
    expect(await request(client)).toBe('ok');
  });
});

describe('native shutdownWrite', () => {
  let pair: Pair | undefined;
  afterEach(async () => { await pair?.close(); pair = undefined; });

  it('sends a FIN and leaves the read side open', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const view = watchPeer(peer);
    const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    expect(native.shutdownWrite(fd)).toBe(0);
    expect(await view.done).toMatchObject({ ended: true, error: null, outcome: 'FIN' });
    const received = once(client, 'data');
    peer.write('still open');
    expect(String((await received)[0])).toBe('still open');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import * as path from 'node:path';
import { getLinger, LINGER_MAX_SECONDS, setLinger } from '../dist/index.js';
import { native } from '../dist/native.js';
import { connectPair, delay, mainThenWorker, PROC_FD_HELPERS, runProcess, watchPeer, type Pair } from './helpers';

let pair: Pair | undefined;
afterEach(async () => { await pair?.close(); pair = undefined; });

/** SO_LINGER as the kernel has it, read straight through the addon. */
function kernelLinger(socket: net.Socket) {
  const out = new Int32Array(2);
  const handle = (socket as unknown as { _handle: { fd: number } })._handle;
  expect(native.getLinger(handle.fd, out)).toBe(0);
  return { enabled: out[0] === 1, seconds: out[1] };
}

describe('setLinger / getLinger', () => {
  it('round-trips through the kernel', async () => {
    pair = await connectPair();
    const { client } = pair;
    expect(getLinger(client)).toEqual({ enabled: false, seconds: 0 });
    for (const seconds of [0, 1, 7, 300, LINGER_MAX_SECONDS]) {
      setLinger(client, true, seconds);
      expect(kernelLinger(client)).toEqual({ enabled: true, seconds });
      expect(getLinger(client)).toEqual({ enabled: true, seconds });
    }
    setLinger(client, false, 42);
    expect(kernelLinger(client).enabled).toBe(false);
    expect(getLinger(client)).toEqual({ enabled: false, seconds: 0 });
  });

  it('defaults seconds to 0 and works on the accepted end too', async () => {
    pair = await connectPair();
    setLinger(pair.peer, true);
    expect(kernelLinger(pair.peer)).toEqual({ enabled: true, seconds: 0 });
    expect(kernelLinger(pair.client)).toEqual({ enabled: false, seconds: 0 });
  });

  it('reports the kernel value, not a cached one', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 5);
    const fd = (pair.client as unknown as { _handle: { fd: number } })._handle.fd;
    expect(native.setLinger(fd, true, 9)).toBe(0); // changed behind the library's back
    expect(getLinger(pair.client)).toEqual({ enabled: true, seconds: 9 });
  });

  it('linger 0 then a plain destroy() resets the peer', async () => {
    pair = await connectPair();
    const peer = watchPeer(pair.peer);
    pair.client.write('hello');
    await delay(50);
    setLinger(pair.client, true, 0);
    pair.client.destroy();
    const view = await peer.done;
    expect(view.outcome).toBe('RST');
  });

  it('without linger a plain destroy() gives the peer a FIN', async () => {
    pair = await connectPair();
    const peer = watchPeer(pair.peer);
    pair.client.write('hello');
    await delay(50);
    pair.client.destroy();
    const view = await peer.done;
    expect(view).toMatchObject({ bytes: 5, ended: true, error: null, outcome: 'FIN' });
  });

  it('applies a setting made before connect on connect, the last one winning', async () => {
    const server = net.createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = new net.Socket();
    setLinger(client, true, 3);
    setLinger(client, true, 11);
    expect(getLinger(client)).toEqual({ enabled: true, seconds: 11 });
    client.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    expect(client.connecting).toBe(true);
    await once(client, 'connect');
    expect(kernelLinger(client)).toEqual({ enabled: true, seconds: 11 });
    client.destroy();
    server.close();
  });

  it('a setting made in an earlier connect listener is not overwritten by one deferred before it (one listener however often deferred)', async () => {
    const server = net.createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = new net.Socket();
    client.on('connect', () => setLinger(client, false));
    const listeners = client.listenerCount('connect');
    for (let i = 0; i < 20; i++) setLinger(client, true, 5);
    expect(client.listenerCount('connect')).toBe(listeners + 1);
    client.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    expect(kernelLinger(client)).toEqual({ enabled: false, seconds: 0 }); // the later call wins
    client.destroy();
    server.close();
  });

  // The second reference exists only where a close can run no JavaScript: a
  // worker thread's teardown (close-guard.ts). The main thread holds none.
  it('only a linger n > 0 holds a second descriptor, and only in a worker thread (/proc/self/fd)', async () => {
    if (process.platform !== 'linux') return;
    // The same steps on a main thread (a child process: vitest itself may run
    // this file in a worker) and in a worker thread of that process.
    const steps = `
      const { readdirSync } = require('node:fs');
      const net = require('node:net');
      const { setLinger } = require(${JSON.stringify(path.resolve('dist/index.js'))});
      const fds = () => readdirSync('/proc/self/fd').length;
      const server = net.createServer((s) => s.resume()).listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1', () => {
          const counts = [fds()];
          setLinger(client, false); counts.push(fds());
          setLinger(client, true, 0); counts.push(fds());
          setLinger(client, true, 5); counts.push(fds());
          setLinger(client, true, 7); counts.push(fds()); // still one reference
          report(counts);
          client.destroy(); server.close();
        });
      });`;
    const { main, worker } = await mainThenWorker<number[]>(steps);
    expect(main, 'main thread: one descriptor per guarded socket').toEqual(Array(5).fill(main[0]));
    const [start] = worker;
    expect(worker, 'worker: a second one for linger n > 0 only').toEqual([start, start, start, start + 1, start + 1]);
  });

  // Counted by the kernel's own bookkeeping (PROC_FD_HELPERS' dups()).
  it.runIf(process.platform === 'linux')('linger off or 0 holds no second reference in a worker thread, however it is set (connected, deferred, on a server, off with seconds given)', async () => {
    const steps = `
      const net = require('node:net');
      const { once } = require('node:events');
      const { setLinger } = require(${JSON.stringify(path.resolve('dist/index.js'))});
      ${PROC_FD_HELPERS}
      (async () => {
        const server = net.createServer((s) => s.resume().on('error', () => {})).listen(0, '127.0.0.1'); // linger 0: the ends reset
        await once(server, 'listening');
        const { port } = server.address();
        setLinger(server, true, 0); // a listening server: accepted sockets inherit linger 0
        const before = dups();
        const deferred = new net.Socket();
        setLinger(deferred, true, 0); // applied on 'connect'
        const accepted = once(server, 'connection');
        deferred.connect(port, '127.0.0.1');
        await once(deferred, 'connect');
        await accepted;
        const acceptedToo = once(server, 'connection');
        const connected = net.connect(port, '127.0.0.1');
        await once(connected, 'connect');
        setLinger(connected, false, 42); // off: the 42 means nothing
        await acceptedToo;
        const after = dups();
        setLinger(connected, true, 3); // control: n > 0 holds one (in a worker)
        report([before, after, dups()]);
        deferred.destroy(); connected.destroy(); server.close();
      })();`;
    const { main, worker } = await mainThenWorker<number[]>(steps);
    expect(main, 'main thread: sockets with two descriptors (before, after, control)').toEqual([0, 0, 0]);
    expect(worker, 'worker: sockets with two descriptors (before, after, control n > 0)').toEqual([0, 0, 1]);
  });

  it('a setting made while connecting (the OS socket exists, no connect yet) waits for connect; getLinger says what is pending', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 1); // a connected socket first: the fast path is open
    pair.server.once('connection', (accepted: net.Socket) => accepted.destroy());
    const client = net.connect((pair.server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => process.nextTick(resolve)); // Node's connect() has run, its callback not yet
      expect(client.connecting).toBe(true);
      expect((client as unknown as { _handle: { fd: number } })._handle.fd).toBeGreaterThanOrEqual(0);
      setLinger(client, true, 9);
      expect(getLinger(client)).toEqual({ enabled: true, seconds: 9 });
      await once(client, 'connect');
      expect(kernelLinger(client)).toEqual({ enabled: true, seconds: 9 });
    } finally {
      client.destroy();
    }
  });

  it('setLinger on a listening server any number of times: it still accepts (one accept hook, not one per call)', async () => {
    const code = String.raw`
      const net = require('node:net');
      const { setLinger, getLinger } = require(process.argv[1]);
      const server = net.createServer((s) => { console.log('accepted'); s.destroy(); server.close(); });
      server.listen(0, '127.0.0.1', () => {
        for (let i = 0; i < 50000; i++) setLinger(server, true, 5);
        console.log(JSON.stringify(getLinger(server)));
        net.connect(server.address().port, '127.0.0.1').on('error', () => {}).on('close', () => {});
      });`;
    const run = await runProcess(process.execPath, ['-e', code, path.resolve('dist/index.js')], 20_000);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(['{"enabled":true,"seconds":5}', 'accepted']);
    expect(run.code).toBe(0);
  });

  // A fresh process: the fast path has not yet seen a real socket's handle.
  it('a socket whose _handle is not a TCP handle is refused before any effect, first call or later', async () => {
    const code = String.raw`
      const net = require('node:net');
      const { setLinger, getLinger } = require(process.argv[1]);
      const server = net.createServer((peer) => {
        const fake = new net.Socket();
        // The peer's descriptor, under an object that is no libuv handle.
        fake._handle = Object.assign(Object.create(null), { fd: peer._handle.fd });
        fake.connecting = false;
        const attempt = () => { try { setLinger(fake, true, 0); return 'set'; } catch (e) { return e.code; } };
        const first = attempt();
        setLinger(peer, true, 1); // now a real one: the fast path knows libuv's TCP class
        const later = attempt();
        console.log(JSON.stringify({ first, later, peer: getLinger(peer) }));
        client.destroy(); peer.destroy(); server.close();
      });
      let client;
      server.listen(0, '127.0.0.1', () => { client = net.connect(server.address().port, '127.0.0.1'); });`;
    const run = await runProcess(process.execPath, ['-e', code, path.resolve('dist/index.js')], 20_000);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({
      first: 'ERR_INVALID_HANDLE_TYPE', later: 'ERR_INVALID_HANDLE_TYPE', peer: { enabled: true, seconds: 1 },
    });
  });

  it('names the argument that is wrong', () => {
    const socket = new net.Socket();
    expect(() => setLinger(socket, 'yes' as unknown as boolean, 1)).toThrow(/"enabled"/);
  });

  it('waits for DNS lookup: connect by host name', async () => {
    const server = net.createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: 'localhost', family: 4 });
    setLinger(client, true, 4);
    await once(client, 'connect');
    expect(kernelLinger(client)).toEqual({ enabled: true, seconds: 4 });
    client.destroy();
    server.close();
  });

  it('sets the listening socket, and accepted sockets inherit it', async () => {
    const server = net.createServer();
    setLinger(server, true, 6); // not listening yet: applied on 'listening'
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    expect(getLinger(server)).toEqual({ enabled: true, seconds: 6 });
    const accepted = once(server, 'connection');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [socket] = (await accepted) as [net.Socket];
    expect(kernelLinger(socket)).toEqual({ enabled: true, seconds: 6 });
    expect(getLinger(client)).toEqual({ enabled: false, seconds: 0 });
    socket.destroy();
    client.destroy();
    server.close();
  });

  it('works over IPv6 loopback', async () => {
    pair = await connectPair({ host: '::1' });
    setLinger(pair.client, true, 2);
    expect(getLinger(pair.client)).toEqual({ enabled: true, seconds: 2 });
  });
});

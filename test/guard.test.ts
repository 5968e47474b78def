// A nonzero linger must never be in force when a handle closes: on Linux that
// close() blocks the whole event loop for up to the linger time.
import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as http from 'node:http';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { getTcpInfo, setLinger } from '../dist/index.js';
import { native } from '../dist/native.js';
import { connectPair, delay, fillKernelSendQueue, mainThenWorker, measureStall, PROC_FD_HELPERS, runProcess, watchPeer, type Pair } from './helpers';

let pair: Pair | undefined;
afterEach(async () => { await pair?.close(); pair = undefined; });

const LINGER = 2; // seconds a blocking close would stall the loop

describe('close guard for linger n > 0', () => {
  // Only Linux's close() waits on a non-blocking socket (macOS and Windows don't).
  it.runIf(process.platform === 'linux')('control: the raw kernel option does block destroy() (the trap this package removes)', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    await fillKernelSendQueue(client);
    const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    expect(native.setLinger(fd, true, 1)).toBe(0); // no guard: straight to the kernel
    const { maxStallMs } = await measureStall(async () => { client.destroy(); });
    expect(maxStallMs).toBeGreaterThan(800);
    peer.destroy();
  });

  it('destroy() with megabytes unsent: no stall, and the peer gets every byte and FIN', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    setLinger(client, true, LINGER);
    const written = await fillKernelSendQueue(client, 1024 * 1024);
    const before = getTcpInfo(client);
    expect(before.unsentBytes === null || before.unsentBytes + (before.unackedBytes ?? 0) > 0).toBe(true);
    const { maxStallMs } = await measureStall(async () => {
      client.destroy();
      await once(client, 'close');
    });
    expect(maxStallMs).toBeLessThan(500);
    const view = await watchPeer(peer).done; // starts reading only now
    expect(view).toMatchObject({ bytes: written, ended: true, error: null, outcome: 'FIN' });
  });

  it('auto-destroy after end() does not block either', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    setLinger(client, true, LINGER);
    const written = await fillKernelSendQueue(client);
    const peerView = watchPeer(peer, { startPaused: true });
    const { maxStallMs } = await measureStall(async () => {
      client.end();
      await delay(100);
      peer.resume();
      peer.end(); // the peer's FIN lets Node auto-destroy the client
      await once(client, 'close');
    });
    expect(maxStallMs).toBeLessThan(500);
    expect((await peerView.done).bytes).toBe(written);
  });

  it('linger 0 stays in force: a plain destroy() still resets', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 5);
    setLinger(pair.client, true, 0);
    const view = watchPeer(pair.peer);
    pair.client.destroy();
    expect((await view.done).outcome).toBe('RST');
  });

  it('resetAndDestroy() on a guarded socket still resets at once', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 5);
    const view = watchPeer(pair.peer);
    pair.client.resetAndDestroy();
    expect((await view.done).outcome).toBe('RST');
  });

  it('sockets accepted by a server with linger n > 0 close without blocking', async () => {
    const server = net.createServer({ pauseOnConnect: true });
    setLinger(server, true, LINGER);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    client.pause();
    const [socket] = (await accepted) as [net.Socket];
    const written = await fillKernelSendQueue(socket);
    const { maxStallMs } = await measureStall(async () => {
      socket.destroy();
      await once(socket, 'close');
    });
    expect(maxStallMs).toBeLessThan(500);
    const view = await watchPeer(client).done;
    expect(view).toMatchObject({ bytes: written, ended: true, error: null });
    client.destroy();
    server.close();
  });

  it('an http server closing keep-alive sockets with inherited linger does not block', async () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 0x62);
    const server = http.createServer((req, res) => res.end(body));
    setLinger(server, true, LINGER);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    // A raw client that asks, then stops reading: the response stays queued.
    const client = net.connect(port, '127.0.0.1');
    client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    client.pause();
    await delay(200);
    const { maxStallMs } = await measureStall(async () => {
      server.closeAllConnections();
      await delay(100);
    });
    expect(maxStallMs).toBeLessThan(500);
    client.destroy();
    server.close();
  });
});

describe('ref() and unref() of a guarded socket', () => {
  // The guard wraps both (a close waiting on the socket follows them); the
  // runtime's own must still run: judged by whether the process stays alive.
  it('unref() then ref(): the socket keeps the process alive again', async () => {
    const dist = require.resolve('../dist/index.js');
    const server = net.createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const code = String.raw`
      const net = require('node:net');
      const lib = require(process.argv[1]);
      const s = net.connect(Number(process.argv[2]), '127.0.0.1', () => {
        lib.setLinger(s, true, 3);
        s.unref();
        s.ref();
        // Fires only if something else (the socket) keeps the process alive.
        setTimeout(() => { console.log('alive'); s.destroy(); }, 300).unref();
      });`;
    try {
      const run = await runProcess(process.execPath, ['-e', code, dist, String((server.address() as net.AddressInfo).port)], 15_000);
      expect(run.stderr).toBe('');
      expect(run.stdout.trim()).toBe('alive');
    } finally {
      server.close();
    }
  });
});

describe('the held reference in a worker thread', () => {
  // A worker's teardown closes its handles natively, so on POSIX a linger
  // n > 0 socket gets a second descriptor there (close-guard.ts). The same
  // steps run on the main thread (none held) and in a worker; the peer, in
  // the same thread, says whether the connection really ended.
  it.runIf(process.platform === 'linux')('a reference held as descriptor 0 is dropped at the close (the peer sees FIN); a linger set again during a close is held again', async () => {
    const dist = require.resolve('../dist/index.js');
    const steps = String.raw`
      const fs = require('node:fs');
      const net = require('node:net');
      const { once } = require('node:events');
      const { isMainThread } = require('node:worker_threads');
      const lib = require(${JSON.stringify(dist)});
      ${PROC_FD_HELPERS}
      async function pair(server) {
        const accepted = once(server, 'connection');
        const client = net.connect(server.address().port, '127.0.0.1');
        await once(client, 'connect');
        const [peer] = await accepted;
        return { client, peer };
      }
      const finWithin = (peer, ms) => new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        peer.on('end', () => { clearTimeout(timer); resolve(true); }).resume();
      });
      (async () => {
        const server = net.createServer({ allowHalfOpen: true }).listen(0, '127.0.0.1');
        await once(server, 'listening');
        // 1. Descriptor 0 free: the held reference gets it.
        const a = await pair(server);
        if (!isMainThread) fs.closeSync(0);
        lib.setLinger(a.client, true, 5);
        const heldAt0 = link(0) !== null && link(0) === link(a.client._handle.fd);
        const fin = finWithin(a.peer, 3000);
        a.client.destroy();
        const sawFin = await fin;
        a.peer.destroy();
        // 2. A close under way drops the reference (linger off); a linger n set again then is held again.
        const b = await pair(server);
        lib.setLinger(b.client, true, 5);
        const closing = lib.gracefulShutdown(b.client, { timeout: 5000 }); // waits for the peer's FIN
        await new Promise((resolve) => setTimeout(resolve, 50));
        const duringClose = dups();
        lib.setLinger(b.client, true, 5);
        const reheld = dups();
        b.peer.resume();
        b.peer.end();
        const result = await closing;
        report({ heldAt0, sawFin, duringClose, reheld, after: dups(), result: result.type });
        server.close();
      })();`;
    const { main, worker, stderr } = await mainThenWorker<Record<string, unknown>>(steps);
    // Node's own note on the worker closing descriptor 0, and nothing else.
    expect(stderr.replace(/^\(node:\d+\) Warning: File descriptor 0 closed but not opened in unmanaged mode\n\(Use `node --trace-warnings \.\.\.` to show where the warning was created\)\n/, '')).toBe('');
    expect(main).toEqual({ heldAt0: false, sawFin: true, duringClose: 0, reheld: 0, after: 0, result: 'graceful' });
    expect(worker).toEqual({ heldAt0: true, sawFin: true, duringClose: 0, reheld: 1, after: 0, result: 'graceful' });
  });

  // Fills the descriptor table: only where its limit is a modest one.
  const openFilesLimit = () => Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
  it.runIf(process.platform === 'linux' && openFilesLimit() <= 1 << 17)('no descriptor left for the reference (EMFILE): the linger is still set, and a later setLinger once one is free holds it', async () => {
    const dist = require.resolve('../dist/index.js');
    const inWorker = String.raw`
      const fs = require('node:fs');
      const net = require('node:net');
      const { once } = require('node:events');
      const { parentPort } = require('node:worker_threads');
      const lib = require(${JSON.stringify(dist)});
      ${PROC_FD_HELPERS}
      (async () => {
        const server = net.createServer().listen(0, '127.0.0.1');
        await once(server, 'listening');
        const accepted = once(server, 'connection');
        const client = net.connect(server.address().port, '127.0.0.1');
        await once(client, 'connect');
        const [peer] = await accepted;
        const fillers = [];
        try { for (;;) fillers.push(fs.openSync('/dev/null', 'r')); } catch (error) { if (error.code !== 'EMFILE') throw error; }
        lib.setLinger(client, true, 5); // no descriptor left for a second reference
        const linger = lib.getLinger(client);
        fs.closeSync(fillers.pop()); // two free: one for a reference, one to read /proc/self/fd with
        fs.closeSync(fillers.pop());
        const full = { linger, dups: dups() };
        lib.setLinger(client, true, 6);
        const freed = { linger: lib.getLinger(client), dups: dups() };
        for (const fd of fillers) fs.closeSync(fd);
        parentPort.postMessage({ filled: fillers.length > 0, full, freed });
        client.destroy(); peer.destroy(); server.close();
      })();`;
    const code = String.raw`
      const { Worker } = require('node:worker_threads');
      new Worker(${JSON.stringify(inWorker)}, { eval: true }).on('message', (r) => console.log(JSON.stringify(r)));`;
    const run = await runProcess(process.execPath, ['-e', code], 20_000);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({
      filled: true,
      full: { linger: { enabled: true, seconds: 5 }, dups: 0 },
      freed: { linger: { enabled: true, seconds: 6 }, dups: 1 },
    });
  });
});

describe('process.exit() with guarded sockets open', () => {
  // On Linux an exiting process's close() skips the linger (inet_release
  // checks PF_EXITING); Windows and macOS get no such pass, and a worker's
  // natively closed handles none either. So the guard switches every
  // nonzero linger off on 'exit'; what the kernel holds then is read from a
  // later 'exit' listener, in a child, with the sockets still open.
  it("every nonzero linger is off by the time 'exit' listeners run; linger 0 is kept; one listener for all sockets", async () => {
    const dist = require.resolve('../dist/index.js');
    const code = String.raw`
      const net = require('node:net');
      const lib = require(process.argv[1]);
      const server = net.createServer({ pauseOnConnect: true }).listen(0, '127.0.0.1', async () => {
        const { port } = server.address();
        const sockets = await Promise.all(Array.from({ length: 12 }, () => new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
        })));
        const before = process.listenerCount('exit');
        sockets.forEach((s, i) => lib.setLinger(s, true, 2 + i));
        lib.setLinger(sockets[0], true, 0);
        lib.setLinger(sockets[1], false);
        const hooks = process.listenerCount('exit') - before;
        const set = sockets.map((s) => lib.getLinger(s));
        process.on('exit', () => {
          console.log(JSON.stringify({ hooks, set, atExit: sockets.map((s) => lib.getLinger(s)) }));
        });
        process.exit(0);
      });`;
    const run = await runProcess(process.execPath, ['-e', code, dist], 15_000);
    expect(run.stderr).toBe(''); // no MaxListenersExceededWarning either
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
      hooks: number; set: { enabled: boolean; seconds: number }[]; atExit: { enabled: boolean; seconds: number }[];
    };
    expect(report.hooks, "'exit' listeners the package added for 12 guarded sockets").toBe(1);
    // Before the exit the kernel had what was asked...
    expect(report.set[0]).toEqual({ enabled: true, seconds: 0 });
    expect(report.set[1]).toEqual({ enabled: false, seconds: 0 });
    expect(report.set.slice(2)).toEqual(Array.from({ length: 10 }, (_, i) => ({ enabled: true, seconds: 4 + i })));
    // ...and at it, no nonzero linger is left; linger 0 is kept.
    expect(report.atExit[0]).toEqual({ enabled: true, seconds: 0 });
    expect(report.atExit.slice(1)).toEqual(Array.from({ length: 11 }, () => ({ enabled: false, seconds: 0 })));
  });
});

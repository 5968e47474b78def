// A worker thread that ends while one of its sockets has a nonzero linger in
// the kernel. Node closes the worker's handles natively (Environment cleanup),
// past the JavaScript close guard, so Linux's close() blocks the worker thread
// for the linger time (per socket, one after another), and worker.terminate()
// or the worker's exit waits for it. The main loop is not stalled, but the
// README's promise ("a nonzero kernel linger is never in force when a handle
// closes") does not hold there.
//
// Fixed: a lingering closeSocket() keeps the kernel's linger off while it
// waits; process.exit() in a worker switches guarded sockets off on 'exit';
// and for terminate(), which runs no JavaScript, the addon holds a second
// reference to each guarded socket, so Node's native close cannot end (or
// block on) the connection, and drops it, linger off, as the worker's
// environment goes away.
import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const DIST = join(__dirname, '..', '..', 'dist', 'index.js');
const LINGER_S = 2;

/**
 * A worker connects to a never-reading server of ours, sets linger n on its
 * socket, writes more than the kernel buffers hold, optionally starts
 * closeSocket(), then ends: by terminate() or by its own process.exit().
 * Returns how long the worker took to go away.
 */
async function teardownMs(mode: { closeInFlight: boolean; end: 'terminate' | 'process.exit' }) {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const peers: net.Socket[] = [];
  server.on('connection', (peer: net.Socket) => peers.push(peer));
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const lib = require(workerData.dist);
    const s = net.connect(workerData.port, '127.0.0.1', () => {
      lib.setLinger(s, true, workerData.seconds);
      s.write(Buffer.alloc(8 * 1024 * 1024));
      if (workerData.closeInFlight) lib.closeSocket(s).catch(() => {});
      setTimeout(() => {
        if (workerData.end === 'process.exit') { parentPort.postMessage('exiting'); process.exit(0); }
        else parentPort.postMessage('ready');
      }, 50);
    });`;
  const worker = new Worker(code, {
    eval: true,
    workerData: { dist: DIST, port: (server.address() as net.AddressInfo).port, seconds: LINGER_S, ...mode },
  });
  const errors: unknown[] = [];
  worker.on('error', (error) => errors.push(error));
  const exited = once(worker, 'exit');
  await once(worker, 'message');
  const start = performance.now();
  if (mode.end === 'terminate') await worker.terminate();
  await exited;
  const ms = performance.now() - start;
  for (const peer of peers) peer.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  console.log(`worker teardown (${mode.end}, closeSocket in flight: ${mode.closeInFlight}), linger ${LINGER_S} s: ${ms.toFixed(0)} ms`);
  expect(errors).toEqual([]);
  return ms;
}

describe('worker teardown never blocks on a kernel linger', () => {
  it('terminate() during a lingering closeSocket()', async () => {
    expect(await teardownMs({ closeInFlight: true, end: 'terminate' })).toBeLessThan(1000);
  });

  it('terminate() with setLinger(n) in force', async () => {
    expect(await teardownMs({ closeInFlight: false, end: 'terminate' })).toBeLessThan(1000);
  });

  it('process.exit() in the worker with setLinger(n) in force', async () => {
    expect(await teardownMs({ closeInFlight: false, end: 'process.exit' })).toBeLessThan(1000);
  });
});

describe('after terminate() the held connection still ends properly', () => {
  it('the peer gets every byte and a FIN, and no descriptor is left behind', async () => {
    const { readdirSync } = await import('node:fs');
    const { getTcpInfo } = await import('../../dist/index.js');
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const worker = new Worker(`
      const net = require('node:net');
      const lib = require(${JSON.stringify(DIST)});
      const { parentPort } = require('node:worker_threads');
      const s = net.connect(${(server.address() as net.AddressInfo).port}, '127.0.0.1', () => {
        lib.setLinger(s, true, ${LINGER_S});
        s.write(Buffer.alloc(1024 * 1024), () => parentPort.postMessage('written'));
      });`, { eval: true });
    const [peer] = await accepted;
    await once(worker, 'message');
    const start = performance.now();
    await worker.terminate();
    expect(performance.now() - start).toBeLessThan(1000);
    let bytes = 0;
    peer.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    const ended = once(peer, 'end');
    peer.resume();
    await ended;
    expect(bytes).toBe(1024 * 1024);
    expect(getTcpInfo(peer).state).toBe('CLOSE_WAIT'); // a FIN, not an RST
    peer.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(fds()).toBe(before); // the worker's held descriptor was closed too
  });
});

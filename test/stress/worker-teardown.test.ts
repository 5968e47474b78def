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
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { pythonPeer, type PyView } from '../helpers';

const DIST = join(__dirname, '..', '..', 'dist', 'index.js');
const LINGER_S = 2;
const WRITTEN = 8 * 1024 * 1024;
const openDescriptors = () => readdirSync('/proc/self/fd').length;

/**
 * A worker connects to a python peer that does not read yet, sets linger n on
 * its socket, writes more than the kernel buffers hold, optionally starts
 * closeSocket(), then ends: by terminate() or by its own process.exit(). Then
 * the peer reads to the end. Returns how long the worker took to go away,
 * what the peer saw, how many bytes the kernel had taken from the worker
 * (the rest was still in Node's buffer, which dies with the worker), and the
 * process's descriptors after the teardown against before the worker.
 */
async function teardown(mode: { closeInFlight: boolean; end: 'terminate' | 'process.exit' }) {
  const before = openDescriptors();
  const peer = pythonPeer({ listen: true, paused: true, timeoutMs: 15_000 });
  const { port } = await peer.next('listening');
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const lib = require(workerData.dist);
    const s = net.connect(workerData.port, '127.0.0.1', () => {
      lib.setLinger(s, true, workerData.seconds);
      s.write(Buffer.alloc(workerData.written, 0x61));
      setTimeout(() => {
        // libuv's own count of bytes not yet handed to the kernel (writableLength counts the whole write until it completes).
        const inKernel = workerData.written - s._handle.writeQueueSize;
        if (workerData.closeInFlight) lib.closeSocket(s).catch(() => {});
        if (workerData.end === 'process.exit') { parentPort.postMessage(inKernel); process.exit(0); }
        else parentPort.postMessage(inKernel);
      }, 100);
    });`;
  const worker = new Worker(code, {
    eval: true,
    workerData: { dist: DIST, port, seconds: LINGER_S, written: WRITTEN, ...mode },
  });
  const errors: unknown[] = [];
  worker.on('error', (error) => errors.push(error));
  const exited = once(worker, 'exit');
  const [inKernel] = (await once(worker, 'message')) as [number];
  const start = performance.now();
  if (mode.end === 'terminate') await worker.terminate();
  await exited;
  const ms = performance.now() - start;
  peer.command('read');
  const seen: PyView = await peer.done;
  await new Promise((resolve) => setTimeout(resolve, 100)); // the held descriptor is released as the worker's environment goes
  const after = openDescriptors();
  console.log(`worker teardown (${mode.end}, closeSocket in flight: ${mode.closeInFlight}), linger ${LINGER_S} s: ${ms.toFixed(0)} ms; peer: ${seen.bytes} of ${inKernel} queued bytes, fin ${seen.fin}, rst ${seen.rst}`);
  expect(errors).toEqual([]);
  return { ms, seen, inKernel, before, after };
}

/** A graceful end the peer can tell: every byte the kernel held, then a FIN, no RST; nothing left open. */
function expectGraceful(result: Awaited<ReturnType<typeof teardown>>) {
  expect(result.ms).toBeLessThan(1000);
  expect(result.inKernel).toBeGreaterThan(0);
  expect(result.inKernel).toBeLessThan(WRITTEN); // the kernel's buffers were full: a linger would have had work
  expect(result.seen.rst).toBe(false);
  expect(result.seen.fin).toBe(true);
  expect(result.seen.bytes).toBe(result.inKernel);
  expect(result.after).toBe(result.before); // no held descriptor leaked
}

describe('worker teardown never blocks on a kernel linger, and the peer still gets a graceful end', () => {
  it('terminate() during a lingering closeSocket()', async () => {
    expectGraceful(await teardown({ closeInFlight: true, end: 'terminate' }));
  });

  it('terminate() with setLinger(n) in force', async () => {
    expectGraceful(await teardown({ closeInFlight: false, end: 'terminate' }));
  });

  it('process.exit() in the worker with setLinger(n) in force', async () => {
    expectGraceful(await teardown({ closeInFlight: false, end: 'process.exit' }));
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

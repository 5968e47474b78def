// 10,000 lingering closes waiting together and timing out together, on peers
// that never read (test/fixtures/never-reads.py, one python3 process): this
// package with the kernel's wake-ups, the same with the poll, and Node alone
// doing the same job (end(), then a timer per socket that resets it at the
// deadline) in the same run. Each run: the connections, 32 KiB written to
// each, the closes issued BATCH per macrotask (an application closing that
// many would slice its loop too), then the wait and the timeouts.
//
// The figures: the longest loop stall after the last close was issued (the
// wait and the timeouts: the library's part), how much of that stall was a
// V8 garbage collection (a `gc` PerformanceObserver), the longest stall with
// no collection in it (the library's own work), every promise settled, the
// resets the peer saw, descriptors per waiting socket and left after.
import * as net from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { closeSocket, setLinger } from '../dist/index.mjs';
import { forcePolling } from '../dist/poller.js';
import { startNeverReads } from '../test/fixtures/never-reads.cjs';

const PAYLOAD = Buffer.alloc(32 * 1024);
const BATCH = 250;
const fds = () => readdirSync('/proc/self/fd').length;

/** Gaps between 1 ms ticks, each with the GC time that fell inside it. */
function gapMonitor() {
  const pauses = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push([entry.startTime, entry.startTime + entry.duration]);
  });
  observer.observe({ entryTypes: ['gc'] });
  const gaps = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push([last, now]);
    last = now;
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      gaps.push([last, performance.now()]);
      observer.disconnect();
      let maxMs = 0, gcInMax = 0, maxWithoutGcMs = 0, longestGcMs = 0;
      for (const [from, to] of gaps) {
        const gc = pauses.reduce((sum, [s, e]) => sum + Math.max(0, Math.min(e, to) - Math.max(s, from)), 0);
        if (to - from > maxMs) { maxMs = to - from; gcInMax = gc; }
        if (gc === 0) maxWithoutGcMs = Math.max(maxWithoutGcMs, to - from);
      }
      for (const [s, e] of pauses) longestGcMs = Math.max(longestGcMs, e - s);
      return { maxMs, gcInMax, maxWithoutGcMs, longestGcMs };
    },
  };
}

async function run(name, count, lingerSeconds, close) {
  const { peer, line } = startNeverReads();
  const port = Number(await line(''));
  // One lingering close first: the library's wake-ups (one epoll descriptor
  // for the thread, kept) exist before the descriptor count starts.
  const warm = net.connect(port, '127.0.0.1');
  await once(warm, 'connect');
  if (name !== 'node') setLinger(warm, true, 1);
  await close(warm, 1);
  const before = fds();
  const sockets = [];
  for (let i = 0; i < count; i += 500) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(500, count - i) }, () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      return once(socket, 'connect').then(() => socket);
    })));
  }
  for (const socket of sockets) {
    if (name !== 'node') setLinger(socket, true, lingerSeconds);
    socket.write(PAYLOAD);
  }
  const perSocket = (fds() - before) / count;
  await new Promise((r) => setTimeout(r, 500)); // the writes are in the kernel
  globalThis.gc?.();

  const start = performance.now();
  const results = [];
  for (let i = 0; i < count; i += BATCH) {
    for (const socket of sockets.slice(i, i + BATCH)) results.push(close(socket, lingerSeconds));
    await new Promise((r) => setImmediate(r));
  }
  const issueMs = performance.now() - start;
  const gaps = gapMonitor();
  const settled = await Promise.all(results);
  const settleMs = performance.now() - start;
  await new Promise((r) => setTimeout(r, 200)); // the 'close' events the last ones set off
  const stalls = gaps.stop();
  await Promise.all(sockets.filter((s) => !s.closed).map((s) => once(s, 'close')));
  peer.stdin.write('check\n');
  const [, resets] = (await line('resets')).split(' ').map(Number);
  const fdsLeft = fds() - before;
  peer.kill();
  const timedOut = settled.filter((r) => r === 'timedOut' || (r?.timedOut && r.type === 'abortive')).length;
  return { count, issueMs, settleMs, ...stalls, timedOut, resets, fdsPerSocket: perSocket, fdsLeft };
}

/** Node alone: end(), then at the deadline resetAndDestroy() (what one writes without this package). */
function nodeAlone(socket, lingerSeconds) {
  return new Promise((resolve) => {
    socket.end();
    const timer = setTimeout(() => { socket.resetAndDestroy(); }, lingerSeconds * 1000);
    socket.once('close', () => { clearTimeout(timer); resolve('timedOut'); });
  });
}

const WAYS = {
  wakeups: () => { forcePolling(false); return (s) => closeSocket(s); },
  poll: () => { forcePolling(true); return (s) => closeSocket(s); },
  node: () => { forcePolling(undefined); return nodeAlone; },
};

/**
 * The same run in a child Node with V8 flags of its own: the young
 * generation's size is fixed when the process starts, so a smaller one
 * (--max-semi-space-size, the application's choice) needs a process.
 */
async function runInChild(way, count, lingerSeconds, flags) {
  const child = spawn(process.execPath, [...flags, '--expose-gc', fileURLToPath(import.meta.url), way, String(count), String(lingerSeconds)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`bench/scale.mjs ${way} in a child (${flags.join(' ')}) exited with ${code}`);
  return JSON.parse(output);
}

export async function benchScale({ count = 10_000, lingerSeconds = 2, semiSpaceMb = 2 } = {}) {
  if (process.platform !== 'linux') return null;
  const out = {};
  out['closeSocket(), wake-ups'] = await run('wakeups', count, lingerSeconds, WAYS.wakeups());
  out['closeSocket(), the poll'] = await run('poll', count, lingerSeconds, WAYS.poll());
  out['Node alone: end() + a timer, resetAndDestroy()'] = await run('node', count, lingerSeconds, WAYS.node());
  forcePolling(undefined);
  // The application's GC setting, both ways: does a smaller young generation
  // bound the collector's pauses, for this package and for Node alone?
  const small = `--max-semi-space-size=${semiSpaceMb}`;
  out[`wake-ups, node ${small}`] = await runInChild('wakeups', count, lingerSeconds, [small]);
  out[`Node alone, node ${small}`] = await runInChild('node', count, lingerSeconds, [small]);
  return out;
}

// A child of runInChild(): one way, its figures as JSON on stdout.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [way, count, lingerSeconds] = process.argv.slice(2);
  const result = await run(way, Number(count), Number(lingerSeconds), WAYS[way]());
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

// The cost of waiting, side by side for the two ways a lingering close learns
// of delivery (src/poller.ts): kernel wake-ups (Linux) and the 10 ms poll
// (the fallback, forced here for the comparison). For each: CPU time and
// memory while BENCH_WAITING (default 4,000) sockets sit in a lingering close
// to peers that do not read; how soon delivery is noticed after a python3
// peer that starts reading late has every byte and the FIN (its socket seen
// in CLOSE_WAIT, checked after every read: CLOCK_MONOTONIC on both sides,
// as Node's hrtime and python's monotonic_ns read it); how soon a reset
// is noticed during a gracefulShutdown wait (the peer's FIN first, so Node
// no longer reads: only the watch can see it).
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { once } from 'node:events';
import { closeSocket, gracefulShutdown, setLinger } from '../dist/index.mjs';
import { deliveryWatch, forcePolling } from '../dist/poller.js';
import { connectMany, delay, listen } from './lib.mjs';

const PEER = String.raw`
import json, socket, struct, sys, time
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    mode = c.recv(1)
    time.sleep(0.05)  # reads late: the close is waiting by then
    if mode == b'r':  # read everything; report when the FIN had arrived
        fin_at = None    # (the first CLOSE_WAIT seen, checked after every read)
        while True:
            data = c.recv(1 << 16)
            if fin_at is None and c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 8:
                fin_at = time.monotonic_ns()
            if not data:
                break
        print(json.dumps({'at': fin_at or time.monotonic_ns()}), flush=True)
        c.close()
    else:  # FIN first, then an RST with our bytes unread
        c.shutdown(socket.SHUT_WR)
        time.sleep(0.05)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        at = time.monotonic_ns()
        c.close()
        print(json.dumps({'at': at}), flush=True)
`;

function pythonPeer() {
  const child = spawn('python3', ['-c', PEER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  const waiting = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    buffered += chunk;
    for (let i; (i = buffered.indexOf('\n')) >= 0; buffered = buffered.slice(i + 1)) {
      const line = buffered.slice(0, i);
      const waiter = waiting.shift();
      if (waiter) waiter(line); else lines.push(line);
    }
  });
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r)));
  return { next, stop: () => child.kill() };
}

const PAYLOAD = Buffer.alloc(1024 * 1024); // more than the peer's kernel takes unread
const nowNs = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, as python's monotonic_ns()
const ms = (ns) => Number(ns) / 1e6;

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1], samples: sorted.length };
}

async function noticeLatencies(peer, port, samples) {
  const delivered = [];
  const reset = [];
  // One close waits in the background throughout, as on any busy server: the
  // poll's timer then runs at its own phase, not started by each sample.
  const server = await listen();
  const [{ client: background, peer: stuck }] = await connectMany(server, 1);
  setLinger(background, true, 600);
  background.write(Buffer.alloc(8 * 1024 * 1024));
  const backgroundClose = closeSocket(background);
  for (let i = 0; i < samples; i++) {
    for (const mode of ['r', 'x']) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(mode);
      socket.write(PAYLOAD);
      let result;
      if (mode === 'r') {
        setLinger(socket, true, 3);
        result = await closeSocket(socket);
      } else {
        result = await gracefulShutdown(socket, { timeout: 3000 });
      }
      const settledAt = nowNs();
      const { at } = JSON.parse(await peer.next());
      const expected = mode === 'r' ? 'graceful' : 'abortive';
      if (result.type === expected && !result.timedOut) (mode === 'r' ? delivered : reset).push(ms(settledAt - BigInt(at)));
      if (!socket.destroyed) socket.destroy();
    }
  }
  stuck.destroy();
  await backgroundClose;
  server.close();
  return { delivered: summary(delivered), reset: summary(reset) };
}

async function waitingCost(sockets, lingerSeconds) {
  const server = await listen();
  const pairs = await connectMany(server, sockets);
  for (const { client } of pairs) { setLinger(client, true, lingerSeconds); client.write(PAYLOAD); }
  await delay(300);
  global.gc?.();
  const memBefore = process.memoryUsage();
  const settled = Promise.all(pairs.map(({ client }) => closeSocket(client)));
  await delay(500); // every close has started; all wait, peers not reading
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await delay(2000);
  const cpu = process.cpuUsage(cpuBefore);
  const waitedMs = performance.now() - start;
  const memDuring = process.memoryUsage();
  for (const { peer } of pairs) peer.destroy(); // the closes end with the resets
  await settled;
  server.close();
  return {
    cpuMsPerSecond: ((cpu.user + cpu.system) / 1000) / (waitedMs / 1000),
    heapBytesPerSocket: (memDuring.heapUsed - memBefore.heapUsed) / sockets,
    rssBytesPerSocket: (memDuring.rss - memBefore.rss) / sockets,
  };
}

export async function benchWaiting({ sockets = 4000, samples = 40, lingerSeconds = 10 } = {}) {
  forcePolling(false);
  const modes = deliveryWatch() === 'wakeups' ? ['wakeups', 'poll'] : ['poll'];
  const peer = pythonPeer();
  const port = Number(await peer.next());
  const results = {};
  for (const mode of modes) {
    forcePolling(mode === 'poll');
    results[mode] = { sockets, ...(await waitingCost(sockets, lingerSeconds)), noticeMs: await noticeLatencies(peer, port, samples) };
  }
  forcePolling(undefined);
  peer.stop();
  return results;
}

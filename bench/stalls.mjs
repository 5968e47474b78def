// Event-loop stalls with peers that never read: kernel linger n > 0 then
// destroy() (what users do without this package) against closeSocket() with
// the same linger, and destroy() after setLinger() (the close guard).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeSocket, setLinger } from '../dist/index.mjs';
import { native } from '../dist/native.js';
import { connectMany, listen, stallMonitor } from './lib.mjs';

const PAYLOAD = Buffer.alloc(512 * 1024);

async function measure(count, prepare, close) {
  const server = await listen();
  const pairs = await connectMany(server, count);
  for (const { client } of pairs) { prepare(client); client.write(PAYLOAD); }
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const stall = stallMonitor();
  const start = performance.now();
  await Promise.all(pairs.map(({ client }) => close(client)));
  const ms = performance.now() - start;
  const maxStallMs = stall.stop();
  histogram.disable();
  for (const { client, peer } of pairs) { client.destroy(); peer.destroy(); }
  server.close();
  return { sockets: count, ms, maxStallMs, p99DelayMs: histogram.percentile(99) / 1e6 };
}

export async function benchStalls({ sockets = 1000, rawSockets = 5, lingerSeconds = 1 } = {}) {
  const raw = (c) => native.setLinger(c._handle.fd, true, lingerSeconds); // no guard
  return {
    [`kernel linger ${lingerSeconds} s + destroy() (${rawSockets} sockets)`]:
      await measure(rawSockets, raw, async (c) => { c.destroy(); }),
    [`setLinger(s, true, ${lingerSeconds}) + destroy()`]:
      await measure(sockets, (c) => setLinger(c, true, lingerSeconds), async (c) => { c.destroy(); }),
    [`setLinger(s, true, ${lingerSeconds}) + closeSocket()`]:
      await measure(sockets, (c) => setLinger(c, true, lingerSeconds), (c) => closeSocket(c)),
  };
}

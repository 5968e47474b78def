// Event-loop stalls with peers that never read: kernel linger n > 0 then
// destroy() (what users do without this package) against closeSocket() with
// the same linger, and destroy() after setLinger() (the close guard).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeSocket, setLinger } from '../dist/index.mjs';
import { native } from '../dist/native.js';
import { connectMany, delay, listen, stallMonitor } from './lib.mjs';

const PAYLOAD = Buffer.alloc(512 * 1024);

/**
 * Closes `count` connections whose peers never read. Two figures: the time
 * the close calls themselves take, issued together in one tick (a cost of
 * issuing them, whatever the method), and the longest stall while the closes
 * are under way afterwards and for 200 ms after they settled (Node's own write
 * and shutdown callbacks included; a close that blocks the loop shows here).
 */
async function measure(count, prepare, close) {
  const server = await listen();
  const pairs = await connectMany(server, count);
  for (const { client } of pairs) { prepare(client); client.write(PAYLOAD); }
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const start = performance.now();
  const closing = pairs.map(({ client }) => close(client));
  const issueMs = performance.now() - start;
  const stall = stallMonitor();
  await Promise.all(closing);
  const ms = performance.now() - start;
  await delay(200); // what the closes set in motion (write and shutdown callbacks, 'close' events)
  const waitStallMs = stall.stop();
  histogram.disable();
  for (const { client, peer } of pairs) { client.destroy(); peer.destroy(); }
  server.close();
  return { sockets: count, ms, issueMs, waitStallMs, maxStallMs: Math.max(issueMs, waitStallMs), p99DelayMs: histogram.percentile(99) / 1e6 };
}

export async function benchStalls({ sockets = 1000, rawSockets = 5, lingerSeconds = 1 } = {}) {
  const raw = (c) => native.setLinger(c._handle.fd, true, lingerSeconds); // no guard
  return {
    [`kernel linger ${lingerSeconds} s + destroy() (${rawSockets} sockets)`]:
      await measure(rawSockets, raw, async (c) => { c.destroy(); }),
    'no linger, socket.end() (Node, for scale)':
      await measure(sockets, () => {}, async (c) => { c.end(); }),
    [`setLinger(s, true, ${lingerSeconds}) + destroy()`]:
      await measure(sockets, (c) => setLinger(c, true, lingerSeconds), async (c) => { c.destroy(); }),
    [`setLinger(s, true, ${lingerSeconds}) + closeSocket()`]:
      await measure(sockets, (c) => setLinger(c, true, lingerSeconds), (c) => closeSocket(c)),
  };
}

// The cost of waiting: CPU time and memory while 1,000 sockets sit in a
// lingering close, and how soon delivery is noticed after the peer has it all.
import { closeSocket, setLinger } from '../dist/index.mjs';
import { connectMany, delay, listen } from './lib.mjs';

export async function benchWaiting({ sockets = 1000, lingerSeconds = 3 } = {}) {
  const server = await listen();
  const pairs = await connectMany(server, sockets);
  for (const { client } of pairs) { setLinger(client, true, lingerSeconds); client.write(Buffer.alloc(256 * 1024)); }
  await delay(200);
  global.gc?.();
  const memBefore = process.memoryUsage();
  const settled = Promise.all(pairs.map(({ client }) => closeSocket(client)));
  await delay(300); // every close has started; all wait, peers not reading
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await delay(1000);
  const cpu = process.cpuUsage(cpuBefore);
  const waitedMs = performance.now() - start;
  const memDuring = process.memoryUsage();
  for (const { peer } of pairs) peer.destroy(); // let them time out or fail fast
  await settled;

  // Delivery notice: one connection at a time, the peer reads everything;
  // latency = settle time - the moment the peer's kernel had every byte + FIN.
  const latencies = [];
  const [{ client: probeClient, peer: probePeer }] = await connectMany(server, 1);
  void probeClient; void probePeer;
  for (let i = 0; i < 50; i++) {
    const [{ client, peer }] = await connectMany(server, 1);
    setLinger(client, true, lingerSeconds);
    client.write(Buffer.alloc(64 * 1024));
    let peerDoneAt = 0;
    peer.on('end', () => { peerDoneAt = performance.now(); });
    peer.resume();
    const result = await closeSocket(client);
    const settledAt = performance.now();
    if (result.type === 'graceful' && peerDoneAt > 0) latencies.push(settledAt - peerDoneAt);
    peer.destroy();
  }
  probeClient.destroy(); probePeer.destroy();
  server.close();
  latencies.sort((a, b) => a - b);
  return {
    sockets,
    cpuMsPerSecond: ((cpu.user + cpu.system) / 1000) / (waitedMs / 1000),
    heapBytesPerSocket: (memDuring.heapUsed - memBefore.heapUsed) / sockets,
    rssBytesPerSocket: (memDuring.rss - memBefore.rss) / sockets,
    noticeMs: { p50: latencies[Math.floor(latencies.length / 2)], max: latencies[latencies.length - 1], samples: latencies.length },
  };
}

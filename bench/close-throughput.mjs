// Close throughput: N loopback connections closed with each matrix row, and
// with Node's own end(), destroy() and resetAndDestroy(). The rate counts
// connections whose client handle has closed ('close'), peers reading.
import { once } from 'node:events';
import { abortiveClose, closeSocket, gracefulShutdown, setLinger } from '../dist/index.mjs';
import { connectMany, listen } from './lib.mjs';

const METHODS = {
  'socket.end()': (s) => { s.end(); },
  'socket.destroy()': (s) => { s.destroy(); },
  'socket.resetAndDestroy()': (s) => { s.resetAndDestroy(); },
  'closeSocket, linger off': (s) => closeSocket(s),
  'closeSocket, linger {on, 0}': (s) => { setLinger(s, true, 0); return closeSocket(s); },
  'closeSocket, linger {on, 5}': (s) => { setLinger(s, true, 5); return closeSocket(s); },
  'abortiveClose': (s) => abortiveClose(s),
  'gracefulShutdown': (s) => gracefulShutdown(s, { timeout: 5000 }),
};

export async function benchCloseThroughput({ connections = 10000, batch = 1000 } = {}) {
  const results = {};
  for (const [name, close] of Object.entries(METHODS)) {
    const server = await listen({ allowHalfOpen: false });
    let elapsed = 0;
    for (let done = 0; done < connections; done += batch) {
      const pairs = await connectMany(server, Math.min(batch, connections - done));
      // Peers read and answer a FIN with a FIN, like an ordinary client.
      for (const { peer } of pairs) peer.resume();
      const start = performance.now();
      await Promise.all(pairs.map(({ client }) => {
        const closed = once(client, 'close');
        return Promise.resolve(close(client)).then(() => closed);
      }));
      elapsed += performance.now() - start;
      for (const { peer } of pairs) peer.destroy();
    }
    server.close();
    results[name] = { connections, ms: elapsed, perSecond: (connections / elapsed) * 1000 };
  }
  return results;
}

// Shared pieces for the benchmarks: loopback pairs, stall monitor, tables.
import * as net from 'node:net';
import { once } from 'node:events';

// The stall monitor is the package's own (src/stall.ts), shared with the tests.
export { stallMonitor } from '../dist/stall.js';

export async function listen(options = {}) {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, ...options });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(server, 'listening');
  return server;
}

/** `count` connected pairs to `server`, made `batch` at a time. */
export async function connectMany(server, count, batch = 256) {
  const port = server.address().port;
  const accepted = [];
  const waiters = [];
  server.on('connection', (socket) => {
    socket.on('error', () => {});
    const waiter = waiters.shift();
    if (waiter) waiter(socket); else accepted.push(socket);
  });
  const nextPeer = () => (accepted.length ? Promise.resolve(accepted.shift()) : new Promise((r) => waiters.push(r)));
  const pairs = [];
  for (let i = 0; i < count; i += batch) {
    const group = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, async () => {
      const client = net.connect(port, '127.0.0.1');
      client.on('error', () => {});
      await once(client, 'connect');
      return client;
    }));
    for (const client of group) pairs.push({ client, peer: await nextPeer() });
  }
  server.removeAllListeners('connection');
  return pairs;
}

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

export function table(header, rows) {
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export const fmt = (n, digits = 1) => (n === null || n === undefined ? 'n/a' : Number(n).toFixed(digits));

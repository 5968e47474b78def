// Time to drain 1,000 idle keep-alive connections: drainServer() against
// server.closeIdleConnections() + server.close(), same run, same machine.
// Usage: npm run build:ts && node bench/drain.mjs [connections] [rounds]
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import { once } from 'node:events';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { drainServer } = require('../dist/http.js');

const N = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 5);

async function setup() {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => res.end('ok'));
  server.maxConnections = N + 10;
  server.listen(0, '127.0.0.1', 4096);
  await once(server, 'listening');
  const port = server.address().port;
  const clients = [];
  // Raw keep-alive clients that close when the server's FIN comes (as a pool does).
  for (let i = 0; i < N; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      c.on('data', (d) => { if (d.includes('ok')) resolve(); });
      c.on('end', () => c.end());
      c.on('error', reject);
      clients.push(c);
    })));
  }
  return { server, clients };
}

const results = { drainServer: [], closeIdleConnections: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const method of Object.keys(results)) {
    const { server, clients } = await setup();
    const allClosed = Promise.all(clients.map((c) => once(c, 'close')));
    const start = performance.now();
    let summary = '';
    if (method === 'drainServer') {
      const r = await drainServer(server, { timeout: 30_000 });
      summary = `graceful ${r.graceful} abortive ${r.abortive} delivered ${r.delivered}`;
    } else {
      server.closeIdleConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    const serverDone = performance.now() - start;
    await allClosed;
    results[method].push({ serverDone, clientsClosed: performance.now() - start, summary });
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${os.cpus()[0].model} x${os.cpus().length}, ${os.platform()} ${os.release()}; ${N} idle keep-alive connections, ${ROUNDS} rounds, loopback`);
for (const [method, rs] of Object.entries(results)) {
  console.log(`${method.padEnd(22)} resolved after median ${median(rs.map((r) => r.serverDone)).toFixed(1)} ms; all clients closed after ${median(rs.map((r) => r.clientsClosed)).toFixed(1)} ms ${rs[0].summary}`);
}

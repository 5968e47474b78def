// Requests/s of a keep-alive node:http server with lingeringClose() installed
// against the same server without, in the same run (goal >= 0.97x).
//
//   node bench/lingering.mjs            (BENCH_SECONDS per round, default 3;
//                                        BENCH_CONNS keep-alive connections, default 32;
//                                        BENCH_ROUNDS per variant, default 5)
//
// Each server runs in its own process (one core); the load generator is this
// process: BENCH_CONNS raw keep-alive connections, each sending the next GET
// as soon as the previous response is in (no pipelining). Rounds alternate
// (off, on, on, off, ...) so drift hits both variants alike; medians compared.
import * as net from 'node:net';
import * as http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus, release } from 'node:os';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

async function startServer(variant) {
  const child = spawn(process.execPath, [self, '--serve', variant], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(child.stdout, 'data');
  return { child, port: Number(String(line).trim()) };
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');

/** Keep-alive load for `seconds`: responses per second. */
async function load(port, connections, seconds) {
  // The response's length is fixed (Date is fixed-width): learn it once.
  const probe = net.connect(port, '127.0.0.1');
  probe.write(REQUEST);
  const [first] = await once(probe, 'data');
  const responseBytes = first.length;
  probe.destroy();
  let responses = 0;
  let running = true;
  const sockets = await Promise.all(Array.from({ length: connections }, async () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await once(socket, 'connect');
    let pending = 0;
    socket.on('data', (chunk) => {
      pending += chunk.length;
      while (pending >= responseBytes) {
        pending -= responseBytes;
        responses++;
        if (running) socket.write(REQUEST);
      }
    });
    return socket;
  }));
  const start = performance.now();
  const counted = responses;
  for (const socket of sockets) socket.write(REQUEST);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - start) / 1000;
  const rps = (responses - counted) / elapsed;
  for (const socket of sockets) socket.destroy();
  return rps;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export async function benchLingering({
  seconds = Number(process.env.BENCH_SECONDS ?? 3),
  connections = Number(process.env.BENCH_CONNS ?? 32),
  rounds = Number(process.env.BENCH_ROUNDS ?? 5),
} = {}) {
  const servers = { off: await startServer('off'), on: await startServer('on') };
  const rps = { off: [], on: [] };
  try {
    // Warm-up, not counted.
    await load(servers.off.port, connections, 1);
    await load(servers.on.port, connections, 1);
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const variant of order) rps[variant].push(await load(servers[variant].port, connections, seconds));
    }
  } finally {
    for (const { child } of Object.values(servers)) child.kill();
  }
  const off = median(rps.off);
  const on = median(rps.on);
  return {
    machine: `${cpus()[0]?.model} x${cpus().length}, ${process.platform} ${release()}, Node ${process.version}`,
    connections, seconds, rounds,
    withoutRps: Math.round(off),
    withRps: Math.round(on),
    ratio: Math.round((on / off) * 1000) / 1000,
    goal: 0.97,
    met: on / off >= 0.97,
    rounds_rps: { without: rps.off.map(Math.round), with: rps.on.map(Math.round) },
  };
}

if (process.argv[2] === '--serve') {
  const server = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end('hello world');
  });
  if (process.argv[3] === 'on') {
    const { lingeringClose } = await import('../dist/http.js');
    lingeringClose(server);
  }
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
} else if (process.argv[1] === self) {
  const result = await benchLingering();
  console.log(JSON.stringify(result, null, 2));
}

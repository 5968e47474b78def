// Cost per call: this package's functions against Node's own one-syscall
// socket options (setNoDelay, setKeepAlive) and the same syscall in C.
import { Bench } from 'tinybench';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLinger, getTcpInfo, setLinger, shutdown } from '../dist/index.mjs';
import { native } from '../dist/native.js';
import { connectMany, listen } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const INNER = 1000; // calls per sample: keeps timer overhead out of the figure
const ROUNDS = 5;

function floor() {
  const out = join(here, '..', 'build', 'bench-floor');
  try {
    mkdirSync(dirname(out), { recursive: true });
    if (!existsSync(out)) execFileSync('cc', ['-O2', '-o', out, join(here, 'floor.c')]);
    return JSON.parse(execFileSync(out, { encoding: 'utf8' }));
  } catch {
    return null; // no C compiler: the floor column stays empty
  }
}

export async function benchCalls({ time = 500 } = {}) {
  const server = await listen();
  const [{ client }] = await connectMany(server, 1);
  const bench = new Bench({ time, warmupTime: 100 });
  const add = (name, fn) => bench.add(name, () => { for (let i = 0; i < INNER; i++) fn(i); });
  // Node skips the syscall when setNoDelay/setKeepAlive repeat the current
  // value: alternate, so every call reaches the kernel (ours too, for parity).
  add('setLinger(s, true, 5)', (i) => setLinger(client, true, 5 + (i & 1)));
  // The Node-API floor: the addon's own call, descriptor read once (the library never caches it).
  const fd = client._handle.fd;
  add('native.setLinger(fd) (addon call alone)', (i) => native.setLinger(fd, true, 5 + (i & 1)));
  add('socket.setNoDelay(true)', (i) => client.setNoDelay((i & 1) === 0));
  add('socket.setKeepAlive(true, 1000)', (i) => client.setKeepAlive((i & 1) === 0, 1000));
  add('getLinger(s)', () => getLinger(client));
  add('getTcpInfo(s)', () => getTcpInfo(client));
  // Rounds, each running every task: on a shared VM one task can land in a
  // noisy stretch; the median over rounds of each task's median is reported.
  const rounds = {};
  for (let round = 0; round < ROUNDS; round++) {
    await bench.run();
    for (const t of bench.tasks) (rounds[t.name] ??= []).push((t.result.latency.p50 * 1e6) / INNER);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const perCall = Object.fromEntries(Object.entries(rounds).map(([name, xs]) => [name, median(xs)]));

  // shutdown() is one-shot per socket: time it over a batch of fresh pairs.
  const pairs = await connectMany(server, 2000);
  const start = performance.now();
  for (const { client: c } of pairs) shutdown(c, 'write');
  perCall["shutdown(s, 'write')"] = ((performance.now() - start) * 1e6) / pairs.length;
  const endStart = performance.now();
  const more = await connectMany(server, 2000);
  const t0 = performance.now();
  for (const { client: c } of more) c.end();
  perCall['socket.end() (comparison)'] = ((performance.now() - t0) * 1e6) / more.length;
  void endStart;
  for (const { client: c, peer } of [...pairs, ...more]) { c.destroy(); peer.destroy(); }
  client.destroy();
  server.close();
  return { perCallNs: perCall, floorNs: floor() };
}

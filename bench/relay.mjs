// relay() against a plain `a.pipe(b); b.pipe(a)` proxy (and socat where it is
// installed), each proxy in its own process, the same load in this one:
// throughput (MB/s, one connection, client -> target) and connections/s
// (100 B each way per connection, 32 at a time).
// Usage: npm run build:ts && node bench/relay.mjs [--mib 512] [--connections 4000] [--rounds 3]
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { cpus, release } from 'node:os';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };

if (args[0] === '--serve') {
  // A proxy: --serve relay|pipe LISTEN_PORT TARGET_PORT
  const [, kind, , targetPort] = args;
  const { relay } = await import('../dist/index.js');
  const server = net.createServer({ allowHalfOpen: true }, (a) => {
    const b = net.connect({ port: Number(targetPort), host: '127.0.0.1', allowHalfOpen: true });
    if (kind === 'relay') relay(a, b);
    else { a.pipe(b); b.pipe(a); a.on('error', () => b.destroy()); b.on('error', () => a.destroy()); }
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
} else {
  const MIB = opt('--mib', 512);
  const CONNECTIONS = opt('--connections', 4000);
  const ROUNDS = opt('--rounds', 3);
  // The target: discards what it gets; for short connections answers 100 B and ends.
  let received = 0;
  let onBulkDone = () => {};
  const target = net.createServer({ allowHalfOpen: true }, (s) => {
    s.once('data', (first) => {
      if (first[0] === 0x42) { received += first.length; s.on('data', (d) => { received += d.length; }); s.on('end', () => { s.end(); onBulkDone(); }); }
      else { s.resume(); s.end(Buffer.alloc(100, 1)); }
    });
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  const targetPort = target.address().port;

  async function startProxy(kind) {
    let child;
    if (kind === 'socat') {
      const port = 20000 + Math.floor(Math.random() * 20000);
      child = spawn('socat', [`TCP-LISTEN:${port},fork,reuseaddr,bind=127.0.0.1`, `TCP:127.0.0.1:${targetPort}`], { stdio: 'ignore' });
      // socat says nothing when it listens: wait until a connect succeeds.
      for (let tries = 0; ; tries++) {
        const ok = await new Promise((r) => {
          const probe = net.connect(port, '127.0.0.1', () => { probe.destroy(); r(true); });
          probe.on('error', () => r(false));
        });
        if (ok) break;
        if (tries > 50) throw new Error(`socat did not listen on ${port}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return { port, stop: () => child.kill() };
    }
    child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', kind, '0', String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = await once(child.stdout, 'data');
    return { port: Number(String(line).trim()), stop: () => child.kill() };
  }

  async function bulk(port) {
    received = 0;
    const total = MIB * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 0x42);
    const done = new Promise((r) => { onBulkDone = r; });
    const start = performance.now();
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    c.resume();
    for (let sent = 0; sent < total; sent += chunk.length) if (!c.write(chunk)) await once(c, 'drain');
    c.end();
    await done;
    await once(c, 'close');
    if (received !== total) throw new Error(`target got ${received} of ${total}`);
    return (total / 1e6) / ((performance.now() - start) / 1000);
  }

  async function conns(port) {
    let next = 0;
    const start = performance.now();
    const one = () => new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let got = 0;
      c.on('connect', () => c.end(Buffer.alloc(100, 1)));
      c.on('data', (d) => { got += d.length; });
      c.on('error', () => { failures[currentKind] = (failures[currentKind] ?? 0) + 1; });
      c.on('close', () => { if (got !== 100 && !c.errored) failures[currentKind] = (failures[currentKind] ?? 0) + 1; resolve(); });
    });
    await Promise.all(Array.from({ length: 32 }, async () => { while (next++ < CONNECTIONS) await one(); }));
    return CONNECTIONS / ((performance.now() - start) / 1000);
  }

  let currentKind = '';
  const failures = {};
  const kinds = ['pipe', 'relay'];
  if (spawnSync('socat', ['-V']).status === 0) kinds.push('socat');
  const results = Object.fromEntries(kinds.map((k) => [k, { mbps: [], cps: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of kinds) {
      currentKind = kind;
      let proxy;
      try {
        proxy = await startProxy(kind);
      } catch (error) {
        // socat is the optional comparison: its start is reported, not fatal.
        console.log(`# ${kind}: ${error.message}`);
        continue;
      }
      results[kind].mbps.push(await bulk(proxy.port));
      results[kind].cps.push(await conns(proxy.port));
      proxy.stop();
    }
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(`relay bench: ${cpus()[0].model} x${cpus().length}, Linux ${release()}, Node ${process.version}; ${MIB} MiB bulk, ${CONNECTIONS} connections (32 at a time), median of ${ROUNDS}`);
  for (const kind of kinds) {
    const r = results[kind];
    if (r.mbps.length === 0) continue;
    const vs = kind === 'pipe' ? '' : `  (${(median(r.mbps) / median(results.pipe.mbps)).toFixed(2)}x pipe MB/s, ${(median(r.cps) / median(results.pipe.cps)).toFixed(2)}x pipe conn/s)`;
    console.log(`${kind.padEnd(6)} ${median(r.mbps).toFixed(0).padStart(6)} MB/s  ${median(r.cps).toFixed(0).padStart(6)} conn/s${vs}${failures[kind] ? `  [${failures[kind]} short connections failed]` : ''}`);
  }
  target.close();
  process.exit(0);
}

// `npm run bench`: every benchmark, one table each, targets checked, and the
// raw figures written to bench/results.json (BENCHMARKS.md is made from them).
// Sizes: BENCH_CONNECTIONS (default 10000), BENCH_SOCKETS (default 1000),
// BENCH_WAITING (default 4000: sockets waiting at once, wake-ups and poll).
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { benchCalls } from './calls.mjs';
import { benchCloseThroughput } from './close-throughput.mjs';
import { benchScale } from './scale.mjs';
import { benchStalls } from './stalls.mjs';
import { benchWaiting } from './waiting.mjs';
import { fmt, table } from './lib.mjs';

const connections = Number(process.env.BENCH_CONNECTIONS ?? 10000);
const sockets = Number(process.env.BENCH_SOCKETS ?? 1000);
const only = process.argv[2];
const out = { machine: `${cpus()[0]?.model} x${cpus().length}, ${process.platform} ${release()}, Node ${process.version}`, at: new Date().toISOString() };
const verdict = (ok) => (ok ? 'met' : 'MISSED');
console.log(`socket-linger benchmarks: ${out.machine}\n`);

if (!only || only === 'calls') {
  const { perCallNs, floorNs } = await benchCalls();
  out.calls = { perCallNs, floorNs };
  const noDelay = perCallNs['socket.setNoDelay(true)'];
  const floorFor = {
    'setLinger(s, true, 5)': floorNs?.setsockopt_SO_LINGER,
    'getLinger(s)': floorNs?.getsockopt_SO_LINGER,
    'socket.setNoDelay(true)': floorNs?.setsockopt_TCP_NODELAY,
    'getTcpInfo(s)': floorNs?.getsockopt_TCP_INFO,
    'native.setLinger(fd) (addon call alone)': floorNs?.setsockopt_SO_LINGER,
  };
  console.log(table(['Call', 'ns/call', '× setNoDelay', 'C floor ns', '× floor'],
    Object.entries(perCallNs).map(([name, ns]) => [name, fmt(ns, 0), fmt(ns / noDelay, 2),
      floorFor[name] ? fmt(floorFor[name], 0) : '', floorFor[name] ? fmt(ns / floorFor[name], 2) : ''])));
  const ratio = perCallNs['setLinger(s, true, 5)'] / noDelay;
  out.calls.target = { setLingerOverSetNoDelay: ratio, limit: 1.3, met: ratio <= 1.3 };
  console.log(`target setLinger <= 1.3x setNoDelay: ${fmt(ratio, 2)}x, ${verdict(ratio <= 1.3)}\n`);
}

if (!only || only === 'close') {
  const results = await benchCloseThroughput({ connections });
  out.close = results;
  const endRate = results['socket.end()'].perSecond;
  console.log(table(['Close', 'connections', 'ms', 'closes/s', '× end()'],
    Object.entries(results).map(([name, r]) => [name, r.connections, fmt(r.ms, 0), fmt(r.perSecond, 0), fmt(r.perSecond / endRate, 2)])));
  const ratio = results['closeSocket, linger off'].perSecond / endRate;
  out.closeTarget = { closeSocketOffOverEnd: ratio, limit: 0.9, met: ratio >= 0.9 };
  console.log(`target closeSocket (linger off) >= 0.9x end(): ${fmt(ratio, 2)}x, ${verdict(ratio >= 0.9)}\n`);
}

if (!only || only === 'stalls') {
  const results = await benchStalls({ sockets });
  out.stalls = results;
  console.log(table(['Close (peers not reading)', 'sockets', 'total ms', 'issuing all (ms)', 'max stall after (ms)', 'p99 loop delay ms'],
    Object.entries(results).map(([name, r]) => [name, r.sockets, fmt(r.ms, 0), fmt(r.issueMs), fmt(r.waitStallMs), fmt(r.p99DelayMs)])));
  const ours = Object.entries(results).filter(([n]) => n.startsWith('setLinger'));
  const waitStall = Math.max(...ours.map(([, r]) => r.waitStallMs));
  const perCallUs = Math.max(...ours.map(([, r]) => (r.issueMs * 1000) / r.sockets));
  out.stallTarget = { waitStallMs: waitStall, issueUsPerClose: perCallUs, limit: 10, met: waitStall < 10 };
  console.log(`target max stall < 10 ms with this package: ${fmt(waitStall)} ms while closing (${fmt(perCallUs)} us per close call to issue), ${verdict(waitStall < 10)}\n`);
}

if (!only || only === 'waiting') {
  const results = await benchWaiting({ sockets: Number(process.env.BENCH_WAITING ?? 4000) });
  out.waiting = results;
  const modes = Object.keys(results);
  const row = (label, pick) => [label, ...modes.map((m) => pick(results[m]))];
  console.log(table(['Lingering close, waiting', ...modes], [
    row('sockets waiting at once', (r) => r.sockets),
    row('CPU while waiting (ms per s)', (r) => fmt(r.cpuMsPerSecond)),
    row('heap per waiting socket (bytes)', (r) => fmt(r.heapBytesPerSocket, 0)),
    row('RSS per waiting socket (bytes)', (r) => fmt(r.rssBytesPerSocket, 0)),
    row('delivery noticed after (p50 ms)', (r) => fmt(r.noticeMs.delivered.p50, 2)),
    row('delivery noticed after (max ms)', (r) => fmt(r.noticeMs.delivered.max, 2)),
    row('reset noticed after (p50 ms)', (r) => fmt(r.noticeMs.reset.p50, 2)),
    row('reset noticed after (max ms)', (r) => fmt(r.noticeMs.reset.max, 2)),
  ]));
  const best = results.wakeups ?? results.poll;
  const met = best.cpuMsPerSecond <= 15 && best.noticeMs.delivered.p50 <= 1;
  out.waitingTarget = { watch: modes[0], cpuMsPerSecond: best.cpuMsPerSecond, noticeP50Ms: best.noticeMs.delivered.p50, limits: { cpuMsPerSecond: 15, noticeP50Ms: 1 }, met };
  console.log(`target (${modes[0]}) <= 15 ms CPU/s with ${best.sockets} waiting, delivery noticed <= 1 ms p50: ` +
    `${fmt(best.cpuMsPerSecond)} ms/s, ${fmt(best.noticeMs.delivered.p50, 2)} ms, ${verdict(met)}\n`);
}

if ((!only || only === 'scale') && process.platform === 'linux') {
  const results = await benchScale({ count: Number(process.env.BENCH_SCALE ?? 10000), semiSpaceMb: Number(process.env.BENCH_SEMI_SPACE_MB ?? 2) });
  out.scale = results;
  const modes = Object.keys(results);
  const row = (label, pick) => [label, ...modes.map((m) => pick(results[m]))];
  console.log(table(['Lingering closes timing out together', ...modes], [
    row('closes', (r) => r.count),
    row('issuing (ms, 250 per macrotask)', (r) => fmt(r.issueMs, 0)),
    row('all settled after (ms)', (r) => fmt(r.settleMs, 0)),
    row('timed out and reset / RSTs the peer saw', (r) => `${r.timedOut} / ${r.resets}`),
    row('longest stall after issuing (ms)', (r) => fmt(r.maxMs)),
    row('  of it V8 garbage collection (ms)', (r) => fmt(r.gcInMax)),
    row('longest stall with no GC in it (ms)', (r) => fmt(r.maxWithoutGcMs)),
    row('longest GC pause (ms)', (r) => fmt(r.longestGcMs)),
    row('descriptors per waiting socket / left', (r) => `${fmt(r.fdsPerSocket, 2)} / ${r.fdsLeft}`),
  ]));
  const ours = results['closeSocket(), wake-ups'];
  const smallYoung = modes.find((m) => m.startsWith('wake-ups, node --max-semi-space-size'));
  const small = results[smallYoung];
  out.scaleTarget = { maxStallMs: ours.maxMs, maxWithoutGcMs: ours.maxWithoutGcMs, smallYoungMaxStallMs: small.maxMs, limit: 10,
    met: ours.maxMs <= 10, metWithSmallYoung: small.maxMs <= 10 };
  console.log(`target no stall > 10 ms with ${ours.count} timing out together (wake-ups): ${fmt(ours.maxMs)} ms ` +
    `(${fmt(ours.maxWithoutGcMs)} ms without GC), ${verdict(ours.maxMs <= 10)}; ` +
    `${smallYoung.slice('wake-ups, '.length)}: ${fmt(small.maxMs)} ms, ${verdict(small.maxMs <= 10)}\n`);
}

writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);

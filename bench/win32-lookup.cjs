'use strict';
// What the Windows socket lookup costs (npm run bench:windows; run by a real
// node.exe, here under Wine: scripts/bench-windows.sh). On Windows Node's
// handle.fd is -1, so the library finds the SOCKET behind a handle by walking
// the loop's handles and comparing addresses (native/socket_lookup_win32.cc),
// once per handle: src/handle.ts remembers the result in a WeakMap.
//
// With N open TCP handles (N/2 loopback pairs: both ends are handles of this
// loop, plus the listener) it times
//   (a) native.findSocket(...) called directly: the uncached walk;
//   (b) getLinger(socket): the first call on a fresh socket (walk + cache
//       fill) against repeated calls (cache hit: getsockname + WeakMap);
//   (c) socket.setNoDelay() alternating true/false: Node's own one-syscall
//       option, the yardstick.
// plus handle.getsockname() and native.getLinger(fd) alone (what a cache hit
// is made of). Sizes: BENCH_WIN32_HANDLES (default "100,1000,10000"); the run
// goes as far as the OS (or Wine) lets it open sockets and reports where and
// why it stopped. Table on stdout, figures as JSON to BENCH_WIN32_OUT
// (default .tools/bench-windows.json).
//
// Under Wine the figures are relative only: Wine maps every Winsock call onto
// Linux sockets, often through its wineserver; Windows' own costs differ.
process.env.PREBUILDS_ONLY = '1'; // never the host's build/Release (Linux ELF)

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');

const ROOT = path.resolve(__dirname, '..');
const DIST = process.env.SOCKET_LINGER_DIST || path.join(ROOT, 'dist');
const sl = require(path.join(DIST, 'index.js'));
const { native } = require(path.join(DIST, 'native.js'));

const LEVELS = (process.env.BENCH_WIN32_HANDLES || '100,1000,10000')
  .split(',').map((s) => Number(s.trim())).filter((n) => n > 0).sort((a, b) => a - b);
const OUT = process.env.BENCH_WIN32_OUT || path.join(ROOT, '.tools', 'bench-windows.json');
const UNDER_WINE = Boolean(process.env.WINEPREFIX || process.env.SOCKET_LINGER_WINE);
const WALK_BUDGET_MS = Number(process.env.BENCH_WIN32_WALK_MS || 2000); // per measurement
const BATCH_BUDGET_MS = Number(process.env.BENCH_WIN32_BATCH_MS || 600);
const FIRST_CALLS = Number(process.env.BENCH_WIN32_FIRST_CALLS || 60); // fresh sockets per level
const CONNECT_BATCH = 100;
const CONNECT_TIMEOUT_MS = 30_000;
const LISTENER_ONLY = -2; // findSocket's remotePort for "a listener" (src/handle.ts)

const log = (line = '') => console.log(line);
const now = () => process.hrtime.bigint();
const elapsedNs = (t0) => Number(process.hrtime.bigint() - t0);

// ---------------------------------------------------------------- statistics

function summary(samplesNs) {
  const s = [...samplesNs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
  return { n: s.length, medianNs: at(0.5), p10Ns: at(0.1), p90Ns: at(0.9), minNs: s[0], maxNs: s[s.length - 1] };
}

/** Each call timed on its own (for calls of a microsecond and more). */
function timeEach(fn, { budgetMs = WALK_BUDGET_MS, min = 15, max = 3000 } = {}) {
  const samples = [];
  const deadline = performance.now() + budgetMs;
  while (samples.length < max && (samples.length < min || performance.now() < deadline)) {
    const t0 = now();
    fn();
    samples.push(elapsedNs(t0));
  }
  return summary(samples);
}

/** Calls timed `inner` at a time, per-call figures (for sub-microsecond calls). */
function timeBatched(fn, { inner = 200, budgetMs = BATCH_BUDGET_MS, min = 15 } = {}) {
  for (let i = 0; i < inner; i++) fn(); // warm-up
  const samples = [];
  const deadline = performance.now() + budgetMs;
  while (samples.length < min || performance.now() < deadline) {
    const t0 = now();
    for (let i = 0; i < inner; i++) fn();
    samples.push(elapsedNs(t0) / inner);
  }
  return { ...summary(samples), inner };
}

// ---------------------------------------------------------------- sockets

let server;
const pairs = []; // { client, peer }
const used = new Set(); // sockets the library has already looked up (cached)
const waiting = []; // accept() resolvers, in order
const acceptedEarly = [];

function onConnection(socket) {
  socket.on('error', () => {});
  const waiter = waiting.shift();
  if (waiter) waiter(socket);
  else acceptedEarly.push(socket);
}

function nextAccepted() {
  if (acceptedEarly.length) return Promise.resolve(acceptedEarly.shift());
  return new Promise((resolve) => waiting.push(resolve));
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(Object.assign(new Error(`timed out: ${what}`), { code: 'ETIMEDOUT_BENCH' })), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Opens pairs until `pairCount` exist; returns null or the error that stopped it. */
async function growTo(pairCount) {
  const port = server.address().port;
  while (pairs.length < pairCount) {
    const n = Math.min(CONNECT_BATCH, pairCount - pairs.length);
    const clients = [];
    try {
      await withTimeout(Promise.all(Array.from({ length: n }, () => {
        const client = net.connect({ port, host: '127.0.0.1' });
        clients.push(client);
        return once(client, 'connect');
      })), CONNECT_TIMEOUT_MS, `connecting ${n} sockets`);
      const peers = await withTimeout(Promise.all(clients.map(() => nextAccepted())), CONNECT_TIMEOUT_MS, `accepting ${n} sockets`);
      for (let i = 0; i < n; i++) {
        clients[i].on('error', () => {});
        pairs.push({ client: clients[i], peer: peers[i] });
      }
    } catch (error) {
      for (const c of clients) { c.on('error', () => {}); c.destroy(); }
      return { pairsOpen: pairs.length, wanted: pairCount, code: error.code ?? null, message: String(error.message ?? error) };
    }
  }
  return null;
}

function tcpHandleCount() {
  if (typeof process.getActiveResourcesInfo !== 'function') return null;
  return process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
}

/** The arguments src/handle.ts passes to findSocket for a connected socket. */
function lookupArgs(socket) {
  const local = {};
  const remote = {};
  const handle = socket._handle;
  if (handle.getsockname(local) !== 0 || handle.getpeername(remote) !== 0) throw new Error('getsockname/getpeername failed');
  return [local.address, local.port, remote.address, remote.port];
}

/** Sockets no library call has touched yet, spread over the whole set. */
function freshSockets(count) {
  const all = [];
  for (const { client, peer } of pairs) {
    if (!used.has(client)) all.push(client);
    if (!used.has(peer)) all.push(peer);
  }
  if (all.length <= count) return all;
  const step = all.length / count;
  return Array.from({ length: count }, (_, i) => all[Math.floor(i * step)]);
}

// ---------------------------------------------------------------- measurements

function measureLevel(target) {
  const handles = 2 * pairs.length + 1;
  const counted = tcpHandleCount();
  const middle = pairs[Math.floor(pairs.length / 2)];
  const socket = middle.client;
  const args = lookupArgs(socket);

  // (a) the walk, uncached: the same SOCKET every time, never an error.
  const sock = native.findSocket(...args);
  if (!(sock >= 0)) throw new Error(`findSocket returned ${sock}`);
  const walk = timeEach(() => {
    if (native.findSocket(...args) !== sock) throw new Error('findSocket changed its answer');
  });
  // The listener's lookup (remotePort -2): the same walk, one more getsockopt on a match.
  const serverLocal = {};
  server._handle.getsockname(serverLocal);
  const walkListener = timeEach(() => native.findSocket(serverLocal.address, serverLocal.port, '', LISTENER_ONLY),
    { budgetMs: WALK_BUDGET_MS / 4 });

  // (b) getLinger: first call on fresh sockets, then the cache hit.
  const fresh = freshSockets(FIRST_CALLS);
  const firstSamples = [];
  for (const s of fresh) {
    const t0 = now();
    const linger = sl.getLinger(s);
    firstSamples.push(elapsedNs(t0));
    used.add(s);
    if (linger.enabled !== false) throw new Error(`unexpected linger ${JSON.stringify(linger)}`);
  }
  const first = summary(firstSamples);
  sl.getLinger(socket);
  used.add(socket);
  const cached = timeBatched(() => sl.getLinger(socket));
  const setLingerCached = timeBatched(() => sl.setLinger(socket, false));

  // (c) the yardstick; alternating, or Node skips the unchanged value.
  let flag = false;
  const noDelay = timeBatched(() => { flag = !flag; socket.setNoDelay(flag); });

  // What a cache hit is made of.
  const out = {};
  const handle = socket._handle;
  const getsockname = timeBatched(() => handle.getsockname(out));
  const lingerOut = new Int32Array(2);
  const rawGetLinger = timeBatched(() => native.getLinger(sock, lingerOut));

  return {
    target, pairs: pairs.length, tcpHandles: handles, tcpHandlesCounted: counted,
    findSocketWalk: walk, findSocketListener: walkListener,
    walkNsPerHandle: walk.medianNs / handles,
    getLingerFirstCall: first, getLingerCached: cached, setLingerCached,
    setNoDelayAlternating: noDelay,
    handleGetsockname: getsockname, nativeGetLinger: rawGetLinger,
    firstOverCached: first.medianNs / cached.medianNs,
    cachedOverSetNoDelay: cached.medianNs / noDelay.medianNs,
    firstOverSetNoDelay: first.medianNs / noDelay.medianNs,
  };
}

// ---------------------------------------------------------------- report

const us = (ns) => (ns === null || ns === undefined ? 'n/a' : (ns / 1000).toFixed(ns < 10_000 ? 2 : ns < 1e6 ? 1 : 0));
const x = (v) => `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}x`;

function table(header, rows) {
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

async function main() {
  const started = performance.now();
  const machine = `${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}`;
  const wine = process.env.BENCH_WINE_VERSION || null;
  log(`socket-linger: Windows socket lookup cost, node ${process.version} ${process.platform}-${process.arch}`
    + `${UNDER_WINE ? ` under Wine${wine ? ` (${wine})` : ''}` : ''}, ${machine}`);
  if (UNDER_WINE) log('# Wine maps Winsock onto Linux sockets: compare the rows with each other, not with Windows.');
  log(`# median per call; walk = native.findSocket (uv_walk over every handle, getsockname each TCP one)`);

  server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConnection);
  server.on('error', () => {});
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(server, 'listening');

  // JIT warm-up of the library's paths, on sockets the figures never use.
  const warm = [];
  {
    const port = server.address().port;
    for (let i = 0; i < 5; i++) {
      const c = net.connect(port, '127.0.0.1');
      await once(c, 'connect');
      const p = await nextAccepted();
      warm.push(c, p);
      sl.getLinger(c); sl.getLinger(p);
      for (let j = 0; j < 2000; j++) { sl.getLinger(c); c.setNoDelay(j % 2 === 0); }
    }
    for (const s of warm) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
  }

  const results = [];
  let stopped = null;
  for (const target of LEVELS) {
    const wantPairs = Math.max(1, Math.round((target - 1) / 2));
    const t0 = performance.now();
    stopped = await growTo(wantPairs);
    const openMs = performance.now() - t0;
    if (stopped) {
      log(`# stopped opening sockets at ${stopped.pairsOpen} pairs (${2 * stopped.pairsOpen + 1} TCP handles) of ${wantPairs}: ${stopped.code ?? ''} ${stopped.message}`);
      if (pairs.length === 0 || (results.length && results[results.length - 1].pairs === pairs.length)) break;
    }
    await new Promise((r) => setTimeout(r, 200)); // let the accepts/reads settle
    const r = measureLevel(target);
    r.openMs = openMs;
    r.limitedBy = stopped;
    results.push(r);
    log(`# ${r.tcpHandles} TCP handles (getActiveResourcesInfo: ${r.tcpHandlesCounted}) opened in ${Math.round(openMs)} ms, walk median ${us(r.findSocketWalk.medianNs)} us`);
    if (stopped) break;
  }

  log('');
  log(table(
    ['TCP handles', 'walk us (p10-p90)', 'ns/handle', 'listener walk us', 'getLinger 1st us', 'getLinger cached us', 'setNoDelay us', '1st/cached', 'cached/setNoDelay', '1st/setNoDelay'],
    results.map((r) => [
      r.tcpHandles,
      `${us(r.findSocketWalk.medianNs)} (${us(r.findSocketWalk.p10Ns)}-${us(r.findSocketWalk.p90Ns)})`,
      r.walkNsPerHandle.toFixed(0),
      us(r.findSocketListener.medianNs),
      `${us(r.getLingerFirstCall.medianNs)} (n=${r.getLingerFirstCall.n})`,
      us(r.getLingerCached.medianNs),
      us(r.setNoDelayAlternating.medianNs),
      x(r.firstOverCached), x(r.cachedOverSetNoDelay), x(r.firstOverSetNoDelay),
    ])));
  log('');
  log(table(
    ['TCP handles', 'handle.getsockname us', 'native.getLinger(fd) us', 'getLinger cached us', 'setLinger(s, false) cached us', 'setNoDelay us'],
    results.map((r) => [r.tcpHandles, us(r.handleGetsockname.medianNs), us(r.nativeGetLinger.medianNs),
      us(r.getLingerCached.medianNs), us(r.setLingerCached.medianNs), us(r.setNoDelayAlternating.medianNs)])));
  const wanted = LEVELS[LEVELS.length - 1];
  const reached = results.length ? results[results.length - 1].tcpHandles : 0;
  if (stopped) log(`\nlimit: wanted ${wanted} handles, measured up to ${reached}; opening more failed: ${stopped.code ?? ''} ${stopped.message}`);
  else log(`\nall sizes reached (up to ${reached} TCP handles)`);

  const report = {
    what: 'Windows socket lookup (uv_walk) vs the per-handle cache; per-call nanoseconds',
    node: process.version, platform: `${process.platform}-${process.arch}`, underWine: UNDER_WINE, wine,
    machine, at: new Date().toISOString(), levels: LEVELS, limit: stopped, results,
    runMs: Math.round(performance.now() - started),
  };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
  log(`figures: ${OUT}`);
  log(`run ${((performance.now() - started) / 1000).toFixed(1)} s`);

  for (const { client, peer } of pairs) { client.destroy(); peer.destroy(); }
  server.close();
  process.exit(0);
}

main().catch((error) => {
  console.log(`bench failed: ${error && error.stack || error}`);
  process.exit(1);
});

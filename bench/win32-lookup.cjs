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
// is made of), all interleaved in rounds. Sizes: BENCH_WIN32_HANDLES (default
// "100,1000,10000"), BENCH_WIN32_LEVEL_MS per size (default 4000); the run
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
// Every measurement of a size runs in interleaved rounds (one sample of each
// per round) for at least LEVEL_MS and MIN_ROUNDS rounds: under Wine a
// wineserver round trip costs ~20 us or ~100 us depending on scheduling, and
// interleaving keeps such phases out of the ratios between the columns.
const LEVEL_MS = Number(process.env.BENCH_WIN32_LEVEL_MS || 4000);
const MIN_ROUNDS = Number(process.env.BENCH_WIN32_MIN_ROUNDS || 20);
const MAX_ROUNDS = 2000;
const FIRST_CALLS = Number(process.env.BENCH_WIN32_FIRST_CALLS || 60); // fresh sockets per size, at most
const FIRST_PER_ROUND = 3;
const INNER_SLOW = 25; // calls per sample for calls that cross to the wineserver
const INNER_FAST = 200; // for setNoDelay
const FD_LIMIT = Number(process.env.BENCH_FD_LIMIT) || null; // ulimit -n, from scripts/bench-windows.sh
const FD_MARGIN = 400; // Wine's own descriptors (DLLs, wineserver pipes) and the listener
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

/** One call, timed on its own (for calls of a microsecond and more). */
function timeOnce(fn) {
  const t0 = now();
  fn();
  return elapsedNs(t0);
}

/** `inner` calls timed together: one per-call figure (for short calls). */
function timeBatch(fn, inner) {
  const t0 = now();
  for (let i = 0; i < inner; i++) fn();
  return elapsedNs(t0) / inner;
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
  const peerArgs = lookupArgs(middle.peer);
  const handle = socket._handle;
  const serverLocal = {};
  server._handle.getsockname(serverLocal);

  // The walk must find the same SOCKET every time, and the library agree.
  const sock = native.findSocket(...args);
  if (!(sock >= 0)) throw new Error(`findSocket returned ${sock}`);
  const peerSock = native.findSocket(...peerArgs);
  if (!(peerSock >= 0) || peerSock === sock) throw new Error(`findSocket (accepted) returned ${peerSock}`);
  const listenerSock = native.findSocket(serverLocal.address, serverLocal.port, '', LISTENER_ONLY);
  if (!(listenerSock >= 0)) throw new Error(`findSocket (listener) returned ${listenerSock}`);
  sl.getLinger(socket);
  used.add(socket);

  const fresh = freshSockets(FIRST_CALLS);
  const samples = {
    walk: [], walkPeer: [], walkListener: [], first: [], firstClient: [], firstPeer: [], cached: [], setLingerCached: [], noDelay: [], getsockname: [], rawGetLinger: [],
  };
  const out = {};
  const lingerOut = new Int32Array(2);
  let flag = false;
  const steps = {
    // (a) the walk, uncached, for a connected socket and for the listener
    //     (remotePort -2: the same walk, one more getsockopt on a match).
    //     An accepted socket shares its local address with the listener and
    //     every other accepted socket: for each of those the walk asks for the
    //     peer too (one more getpeername), where a client's differs by port.
    walk: () => timeOnce(() => {
      if (native.findSocket(...args) !== sock) throw new Error('findSocket changed its answer');
    }),
    walkPeer: () => timeOnce(() => {
      if (native.findSocket(...peerArgs) !== peerSock) throw new Error('findSocket changed its answer');
    }),
    walkListener: () => timeOnce(() => native.findSocket(serverLocal.address, serverLocal.port, '', LISTENER_ONLY)),
    // (b) getLinger once cached (getsockname + WeakMap + getsockopt), and setLinger.
    cached: () => timeBatch(() => sl.getLinger(socket), INNER_SLOW),
    setLingerCached: () => timeBatch(() => sl.setLinger(socket, false), INNER_SLOW),
    // (c) the yardstick; alternating, or Node skips an unchanged value.
    noDelay: () => timeBatch(() => { flag = !flag; socket.setNoDelay(flag); }, INNER_FAST),
    // What a cache hit is made of.
    getsockname: () => timeBatch(() => handle.getsockname(out), INNER_SLOW),
    rawGetLinger: () => timeBatch(() => native.getLinger(sock, lingerOut), INNER_SLOW),
  };
  for (const step of Object.values(steps)) for (let i = 0; i < 3; i++) step(); // warm-up

  const deadline = performance.now() + LEVEL_MS;
  let rounds = 0;
  while (rounds < MAX_ROUNDS && (rounds < MIN_ROUNDS || performance.now() < deadline || fresh.length > 0 && samples.first.length < Math.min(FIRST_CALLS, 15))) {
    rounds++;
    for (const [name, step] of Object.entries(steps)) samples[name].push(step());
    // (b) the first call on fresh sockets: the walk, then the cache is filled.
    for (let i = 0; i < FIRST_PER_ROUND && fresh.length > 0; i++) {
      const s = fresh.shift();
      let linger;
      const ns = timeOnce(() => { linger = sl.getLinger(s); });
      samples.first.push(ns);
      (s.server ? samples.firstPeer : samples.firstClient).push(ns);
      used.add(s);
      if (linger.enabled !== false) throw new Error(`unexpected linger ${JSON.stringify(linger)}`);
    }
  }

  const r = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summary(v)]));
  return {
    target, pairs: pairs.length, tcpHandles: handles, tcpHandlesCounted: counted, rounds,
    findSocketWalk: r.walk, findSocketAccepted: r.walkPeer, findSocketListener: r.walkListener,
    walkNsPerHandle: r.walk.medianNs / handles,
    walkPerHandleOverGetsockname: r.walk.medianNs / handles / r.getsockname.medianNs,
    getLingerFirstCall: r.first, getLingerFirstCallClient: r.firstClient, getLingerFirstCallAccepted: r.firstPeer,
    getLingerCached: { ...r.cached, inner: INNER_SLOW },
    setLingerCached: { ...r.setLingerCached, inner: INNER_SLOW },
    setNoDelayAlternating: { ...r.noDelay, inner: INNER_FAST },
    handleGetsockname: { ...r.getsockname, inner: INNER_SLOW },
    nativeGetLinger: { ...r.rawGetLinger, inner: INNER_SLOW },
    firstOverCached: r.first.medianNs / r.cached.medianNs,
    cachedOverSetNoDelay: r.cached.medianNs / r.noDelay.medianNs,
    firstOverSetNoDelay: r.first.medianNs / r.noDelay.medianNs,
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
  const cpus = process.env.BENCH_CPUS || null; // taskset list from scripts/bench-windows.sh
  log(`socket-linger: Windows socket lookup cost, node ${process.version} ${process.platform}-${process.arch}`
    + `${UNDER_WINE ? ` under Wine${wine ? ` (${wine})` : ''}` : ''}, ${machine}${cpus ? `, pinned to CPU ${cpus}` : ''}`
    + `${FD_LIMIT ? `, ulimit -n ${FD_LIMIT}` : ''}`);
  if (UNDER_WINE) log('# Wine maps Winsock onto Linux sockets: compare the rows with each other, not with Windows.');
  log('# median per call; walk = native.findSocket for a client socket (uv_walk over every handle, getsockname each TCP one);');
  log('# getLinger 1st = first call on a fresh socket (half clients, half accepted); cached = later calls (getsockname + WeakMap + getsockopt)');

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
  const report = () => ({
    what: 'Windows socket lookup (uv_walk) vs the per-handle cache; per-call nanoseconds',
    node: process.version, platform: `${process.platform}-${process.arch}`, underWine: UNDER_WINE, wine, pinnedCpus: cpus,
    fdLimit: FD_LIMIT, machine, at: new Date().toISOString(), levels: LEVELS, limit: stopped, results,
    runMs: Math.round(performance.now() - started),
  });
  const save = () => {
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, `${JSON.stringify(report(), null, 2)}\n`);
  };
  for (const target of LEVELS) {
    if (FD_LIMIT && target > FD_LIMIT - FD_MARGIN)
      log(`# ${target} handles: over what ulimit -n ${FD_LIMIT} leaves room for under Wine (every SOCKET is a Unix`
        + ' descriptor): going until EMFILE; if accept() runs out first, libuv aborts the process instead');
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
    try { save(); } catch {} // partial figures, in case a larger size kills the process
    if (stopped) break;
  }

  log('');
  log(table(
    ['TCP handles', 'walk us (p10-p90)', 'ns/handle', 'walk accepted us', 'walk listener us', 'getLinger 1st us (n)', '1st client / accepted us', 'getLinger cached us', 'setNoDelay us', '1st/cached', 'cached/setNoDelay', '1st/setNoDelay'],
    results.map((r) => [
      r.tcpHandles,
      `${us(r.findSocketWalk.medianNs)} (${us(r.findSocketWalk.p10Ns)}-${us(r.findSocketWalk.p90Ns)})`,
      r.walkNsPerHandle.toFixed(0),
      us(r.findSocketAccepted.medianNs),
      us(r.findSocketListener.medianNs),
      `${us(r.getLingerFirstCall.medianNs)} (${r.getLingerFirstCall.n})`,
      `${us(r.getLingerFirstCallClient.medianNs)} / ${us(r.getLingerFirstCallAccepted.medianNs)}`,
      us(r.getLingerCached.medianNs),
      us(r.setNoDelayAlternating.medianNs),
      x(r.firstOverCached), x(r.cachedOverSetNoDelay), x(r.firstOverSetNoDelay),
    ])));
  log('');
  log('What a cache hit is made of (same rounds):');
  log(table(
    ['TCP handles', 'rounds', 'handle.getsockname us', 'native.getLinger(fd) us', 'getLinger cached us', 'setLinger(s, false) cached us', 'setNoDelay us', 'walk per handle / getsockname'],
    results.map((r) => [r.tcpHandles, r.rounds, us(r.handleGetsockname.medianNs), us(r.nativeGetLinger.medianNs),
      us(r.getLingerCached.medianNs), us(r.setLingerCached.medianNs), us(r.setNoDelayAlternating.medianNs),
      x(r.walkPerHandleOverGetsockname)])));
  const wanted = LEVELS[LEVELS.length - 1];
  const reached = results.length ? results[results.length - 1].tcpHandles : 0;
  if (stopped) log(`\nlimit: wanted ${wanted} handles, measured up to ${reached}; opening more failed: ${stopped.code ?? ''} ${stopped.message}`);
  else log(`\nall sizes reached (up to ${reached} TCP handles)`);

  // Close everything first: at the descriptor limit not even the JSON file opens.
  const closed = [];
  for (const { client, peer } of pairs) for (const s of [client, peer]) { closed.push(once(s, 'close')); s.destroy(); }
  server.close();
  await withTimeout(Promise.all(closed), 30_000, 'closing').catch(() => {});
  save();
  log(`figures: ${OUT}`);
  log(`run ${((performance.now() - started) / 1000).toFixed(1)} s`);
  process.exit(0);
}

main().catch((error) => {
  console.log(`bench failed: ${error && error.stack || error}`);
  process.exit(1);
});

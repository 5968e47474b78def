// Stress: STRESS_CONNECTIONS (default 10 000) loopback connections through
// every row of the close matrix and gracefulShutdown(), in concurrent batches
// of STRESS_BATCH (default 200), against peers that read, read slowly and
// never read. Judged connection by connection: every promise settles, the
// result is what the matrix documents, graceful rows deliver byte-exact data
// (sha256 on the peer), abortive rows leave the peer's kernel in CLOSED (an
// RST; a FIN leaves CLOSE_WAIT). Afterwards descriptors and active handles are
// back to baseline, and the event loop never stalled near the linger time.
import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  abortiveClose, closeSocket, getLinger, getTcpInfo, gracefulShutdown, setLinger,
  type CloseResult, type TcpState,
} from '../../dist/index.js';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

const CONNECTIONS = envInt('STRESS_CONNECTIONS', 10_000);
const LINGER_S = envInt('STRESS_LINGER_S', 1);
const TIMEOUT_MS = LINGER_S * 1000;
/** Bytes per ms a throttled peer reads (1 MiB/s). */
const SLOW_RATE = 1024 * 1024 / 1000;
/** No promise may take longer than this (the linger/timeout plus a loose margin). */
const SETTLE_BOUND_MS = TIMEOUT_MS + 15_000;

type Row = 'off' | 'linger0' | 'lingerN' | 'abortiveClose' | 'gracefulShutdown';
type PeerMode = 'reads' | 'slow' | 'never';
const ROWS: Row[] = ['off', 'linger0', 'lingerN', 'abortiveClose', 'gracefulShutdown'];
const MODES: PeerMode[] = ['reads', 'slow', 'never'];
const COMBOS = ROWS.flatMap((row) => MODES.map((mode) => ({ row, mode })));

// ---------------------------------------------------------------------------
// Payloads: slices of one random buffer (writes share its memory), with their
// sha256 computed once.

const BASE = randomBytes(8 * 1024 * 1024);
/** More than a never-reading loopback peer and both kernels' buffers absorb (~4 MB). */
const STUCK_SIZE = 7 * 1024 * 1024;
const SIZES = [
  0, 1, 2, 100, 1460, 4095, 4096, 65_535, 65_536, 65_537, 131_072, 200_003, 262_144,
  500_000, 786_432, 1_048_576,
];
const SLOW_MAX = 262_144; // a 1 MiB/s reader finishes well inside the 1 s linger

interface Payload { data: Buffer; sha256: string }
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const PAYLOADS: Payload[] = SIZES.map((size, j) => {
  const offset = (j * 104_729) % (BASE.length - size);
  const data = BASE.subarray(offset, offset + size);
  return { data, sha256: sha256(data) };
});
const STUCK: Payload = { data: BASE.subarray(0, STUCK_SIZE), sha256: sha256(BASE.subarray(0, STUCK_SIZE)) };
const REPLIES = PAYLOADS.filter((p) => p.data.length <= 65_536);

function payloadFor(id: number, row: Row, mode: PeerMode): Payload {
  if (mode === 'never' && row === 'lingerN') return STUCK;
  const fits = mode === 'slow' ? PAYLOADS.filter((p) => p.data.length <= SLOW_MAX) : PAYLOADS;
  return fits[(id * 7 + (id >> 4)) % fits.length];
}

// ---------------------------------------------------------------------------
// Resources.

function fdCount(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null; // not Linux
  }
}

function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
}

function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** Kinds whose count must come back exactly (timers belong to the runner too). */
const SOCKET_KINDS = ['TCPSocketWrap', 'TCPServerWrap', 'ShutdownWrap', 'WriteWrap', 'TCPConnectWrap'];

function socketHandles(counts: Record<string, number>): number {
  return SOCKET_KINDS.reduce((n, kind) => n + (counts[kind] ?? 0), 0);
}

function delay(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the promise's value, or `onTimeout` after `ms`. */
function bounded<T, U>(promise: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<U>((resolve) => { timer = setTimeout(() => resolve(onTimeout), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// One connection.

interface PeerView {
  bytes: number;
  /** Every byte received so far equals the payload at that offset. */
  prefixOk: boolean;
  sha256: string | null;
  ended: boolean;
  error: string | null;
  /** The peer's kernel state when its stream ended, errored or was polled. */
  state: TcpState | null;
  outcome: 'FIN' | 'RST' | 'open';
}

interface Conn {
  id: number;
  row: Row;
  mode: PeerMode;
  client: net.Socket;
  peer: net.Socket;
  payload: Payload;
  reply: Payload | null;
  replyReceived: Buffer[];
  clientErrors: string[];
  result: CloseResult | 'unsettled' | { rejected: unknown } | null;
  view: PeerView;
  peerDone: Promise<PeerView> | null;
}

function newView(): PeerView {
  return { bytes: 0, prefixOk: true, sha256: null, ended: false, error: null, state: null, outcome: 'open' };
}

function snapshot(conn: Conn): void {
  const { view } = conn;
  try {
    view.state = getTcpInfo(conn.peer).state;
  } catch {
    view.state = null;
  }
  if (view.error === 'ECONNRESET' || view.state === 'CLOSED') view.outcome = 'RST';
  else if (view.ended && view.state === 'CLOSE_WAIT') view.outcome = 'FIN';
}

/** A peer that reads (throttled to SLOW_RATE if `slow`), checks and hashes every byte. */
function readPeer(conn: Conn, slow: boolean): Promise<PeerView> {
  const { peer, view } = conn;
  const expected = conn.payload.data;
  const hash = createHash('sha256');
  return new Promise<PeerView>((resolve) => {
    peer.on('data', (chunk: Buffer) => {
      const at = view.bytes;
      if (at + chunk.length > expected.length || !chunk.equals(expected.subarray(at, at + chunk.length)))
        view.prefixOk = false;
      view.bytes += chunk.length;
      hash.update(chunk);
      if (slow) {
        peer.pause();
        setTimeout(() => peer.resume(), chunk.length / SLOW_RATE);
      }
    });
    peer.on('end', () => {
      view.ended = true;
      view.sha256 = hash.digest('hex');
      snapshot(conn);
      // gracefulShutdown(): the peer saw our FIN, answers, and FINs back.
      if (conn.row === 'gracefulShutdown' && view.outcome === 'FIN' && conn.reply) peer.end(conn.reply.data);
      resolve(view);
    });
    peer.on('error', (error: NodeJS.ErrnoException) => {
      view.error = error.code ?? String(error);
      snapshot(conn);
      resolve(view);
    });
    peer.on('close', () => resolve(view));
    peer.resume();
  });
}

/** A peer that never reads: judged by polling its kernel state until CLOSED. */
async function pollUntilClosed(conn: Conn, ms: number): Promise<PeerView> {
  const deadline = performance.now() + ms;
  for (;;) {
    snapshot(conn);
    if (conn.view.state === 'CLOSED' || conn.view.state === null || performance.now() > deadline) return conn.view;
    await delay(20);
  }
}

function setUp(conn: Conn): void {
  const { client, row } = conn;
  switch (row) {
    case 'off': setLinger(client, false); break;
    case 'linger0': setLinger(client, true, 0); break;
    case 'lingerN': setLinger(client, true, LINGER_S); break;
    // abortiveClose resets whatever the linger: try each.
    case 'abortiveClose': setLinger(client, conn.id % 3 !== 0, [0, LINGER_S, 0][conn.id % 3]); break;
    case 'gracefulShutdown': break;
  }
  if (row === 'lingerN') {
    const option = getLinger(client);
    if (!option.enabled || option.seconds !== LINGER_S) throw new Error(`linger not set: ${JSON.stringify(option)}`);
  }
}

function close(conn: Conn): Promise<CloseResult> {
  switch (conn.row) {
    case 'abortiveClose': return abortiveClose(conn.client);
    case 'gracefulShutdown': return gracefulShutdown(conn.client, { timeout: TIMEOUT_MS });
    default: return closeSocket(conn.client);
  }
}

/** What the matrix documents for this row and peer; null when it holds. */
function judge(conn: Conn): string | null {
  const { row, mode, result: r, view } = conn;
  if (r === null || r === 'unsettled') return `promise did not settle within ${SETTLE_BOUND_MS} ms`;
  if ('rejected' in r) return `rejected: ${String((r.rejected as Error)?.message ?? r.rejected)}`;
  const fullDelivery = () => {
    if (view.outcome !== 'FIN') return `peer saw ${view.outcome} (state ${view.state}, error ${view.error}), expected FIN`;
    if (view.bytes !== conn.payload.data.length) return `peer got ${view.bytes} of ${conn.payload.data.length} bytes`;
    if (!view.prefixOk || view.sha256 !== conn.payload.sha256) return 'peer data differs (sha256)';
    return null;
  };
  const reset = () => {
    if (view.outcome !== 'RST') return `peer saw ${view.outcome} (state ${view.state}, error ${view.error}), expected RST`;
    if (!view.prefixOk) return 'peer data before the RST differs from what was written';
    return null;
  };
  const shape = (type: CloseResult['type'], waited: boolean, timedOut: boolean) =>
    r.type === type && r.waited === waited && r.timedOut === timedOut
      ? null
      : `result ${JSON.stringify(r)}, expected ${JSON.stringify({ type, waited, timedOut })}`;
  const waitsFull = mode !== 'never';
  switch (row) {
    case 'off':
      return shape('graceful', false, false) ?? fullDelivery();
    case 'linger0':
    case 'abortiveClose':
      return shape('abortive', false, false) ?? reset();
    case 'lingerN':
    case 'gracefulShutdown': {
      if (waitsFull) {
        const problem = shape('graceful', true, false) ?? fullDelivery();
        if (problem || row === 'lingerN') return problem;
        const reply = Buffer.concat(conn.replyReceived);
        return sha256(reply) === conn.reply!.sha256 ? null : `client got ${reply.length} reply bytes, not the ${conn.reply!.data.length} sent`;
      }
      const problem = shape('abortive', true, true) ?? reset();
      if (problem) return problem;
      return r.elapsedMs >= TIMEOUT_MS - 15 ? null : `timed out after only ${r.elapsedMs} ms`;
    }
  }
}

// ---------------------------------------------------------------------------
// A batch: connect everything, set up, write, close all at once, judge.

interface ComboFigures { row: Row; mode: PeerMode; n: number; failed: number; sumMs: number; maxMs: number; bytes: number; fin: number; rst: number }
const perCombo: ComboFigures[] = COMBOS.map(({ row, mode }) => ({ row, mode, n: 0, failed: 0, sumMs: 0, maxMs: 0, bytes: 0, fin: 0, rst: 0 }));

/** The longest synchronous stretch of each phase in any batch (ms). */
const phases = { setupMs: 0, writeMs: 0, closeCallsMs: 0 };

interface BatchFigures { failures: { conn: Conn; problem: string }[]; peakFds: number | null }

async function connectAll(server: net.Server, port: number, count: number) {
  const accepted = new Map<number, net.Socket>();
  let allAccepted: () => void = () => {};
  const acceptedAll = new Promise<void>((resolve) => { allAccepted = resolve; });
  const onConnection = (peer: net.Socket) => {
    accepted.set(peer.remotePort!, peer);
    if (accepted.size === count) allAccepted();
  };
  server.on('connection', onConnection);
  const clients = await Promise.all(Array.from({ length: count }, async () => {
    const client = net.connect(port, '127.0.0.1');
    await once(client, 'connect');
    return client;
  }));
  await bounded(acceptedAll, 10_000, undefined);
  server.off('connection', onConnection);
  return clients.map((client) => {
    const peer = accepted.get(client.localPort!);
    if (!peer) throw new Error(`no accepted socket for client port ${client.localPort}`);
    return { client, peer };
  });
}

async function runBatch(firstId: number, count: number): Promise<BatchFigures> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  server.listen(0, '127.0.0.1', 1024);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const pairs = await connectAll(server, port, count);
  const conns: Conn[] = pairs.map(({ client, peer }, i) => {
    const id = firstId + i;
    const { row, mode } = COMBOS[id % COMBOS.length];
    const conn: Conn = {
      id, row, mode, client, peer,
      payload: payloadFor(id, row, mode),
      reply: row === 'gracefulShutdown' ? REPLIES[id % REPLIES.length] : null,
      replyReceived: [], clientErrors: [], result: null, view: newView(), peerDone: null,
    };
    client.on('error', (error: NodeJS.ErrnoException) => conn.clientErrors.push(error.code ?? String(error)));
    peer.on('error', () => {}); // recorded by readPeer where it reads; silent peers only poll
    return conn;
  });

  const setupStart = performance.now();
  for (const conn of conns) {
    setUp(conn);
    if (conn.mode !== 'never') conn.peerDone = readPeer(conn, conn.mode === 'slow');
    if (conn.row === 'gracefulShutdown') conn.client.on('data', (chunk: Buffer) => conn.replyReceived.push(chunk));
  }
  phases.setupMs = Math.max(phases.setupMs, performance.now() - setupStart);
  let t = performance.now();
  for (const conn of conns) conn.client.write(conn.payload.data);
  phases.writeMs = Math.max(phases.writeMs, performance.now() - t);
  const peakFds = fdCount();
  t = performance.now();
  const closing = conns.map(async (conn) => {
    try {
      conn.result = await bounded(close(conn), SETTLE_BOUND_MS, 'unsettled' as const);
    } catch (rejected) {
      conn.result = { rejected };
    }
  });
  phases.closeCallsMs = Math.max(phases.closeCallsMs, performance.now() - t);
  await Promise.all(closing);

  // Peers that did not read while the close ran: row 1 still delivers every
  // byte in the background (they read now); every other row reset them.
  for (const conn of conns) {
    if (conn.mode !== 'never') continue;
    conn.peerDone = conn.row === 'off' ? readPeer(conn, false) : pollUntilClosed(conn, 5000);
  }
  await Promise.all(conns.map((conn) => bounded(conn.peerDone!, 15_000, conn.view)));
  for (const conn of conns) if (conn.view.outcome === 'open') snapshot(conn);

  const failures: BatchFigures['failures'] = [];
  for (const conn of conns) {
    const problem = judge(conn);
    if (problem) failures.push({ conn, problem });
    const figures = perCombo[conn.id % COMBOS.length];
    figures.n++;
    if (problem) figures.failed++;
    const ms = conn.result && typeof conn.result === 'object' && 'elapsedMs' in conn.result ? conn.result.elapsedMs : 0;
    figures.sumMs += ms;
    figures.maxMs = Math.max(figures.maxMs, ms);
    figures.bytes += conn.view.bytes;
    if (conn.view.outcome === 'FIN') figures.fin++;
    if (conn.view.outcome === 'RST') figures.rst++;
  }

  // Clean up: every socket and the server closed before the next batch.
  const closes: Promise<unknown>[] = [];
  for (const { client, peer } of conns) {
    for (const socket of [client, peer]) {
      if (!socket.closed) closes.push(once(socket, 'close'));
      socket.destroy();
    }
  }
  closes.push(new Promise<void>((resolve) => server.close(() => resolve())));
  await bounded(Promise.all(closes), 10_000, undefined);
  return { failures, peakFds };
}

// ---------------------------------------------------------------------------

async function warmUpLingeringClose(): Promise<void> {
  const handlesBefore = socketHandles(handleCounts());
  const server = net.createServer((socket) => socket.resume()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  setLinger(client, true, 1);
  const closed = once(client, 'close');
  await closeSocket(client);
  await closed;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // Node's last handle closes come a few turns later: the baseline is taken after them.
  for (let i = 0; i < 100 && socketHandles(handleCounts()) > handlesBefore; i++) await delay(10);
}

describe('stress: the close matrix under load', () => {
  it(`${CONNECTIONS} connections through every row, peers that read, read slowly, never read`, async () => {
    const limit = openFileLimit();
    // Each connection costs two descriptors here (client and accepted end).
    let batch = envInt('STRESS_BATCH', 200);
    // One lingering close first: on Linux it opens the library's wake-ups (one
    // epoll descriptor, kept for the thread's life) before the baseline.
    await warmUpLingeringClose();
    const before = { fds: fdCount(), handles: handleCounts() };
    if (limit !== null && before.fds !== null) {
      const fits = Math.floor((limit - before.fds - 64) / 2);
      if (fits < batch) {
        console.log(`ulimit -n ${limit}: batches of ${fits} instead of ${batch}`);
        batch = Math.max(1, fits);
      }
    }

    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    let last = performance.now();
    let maxStallMs = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxStallMs = Math.max(maxStallMs, now - last - 5);
      last = now;
    }, 5);

    const start = performance.now();
    const failures: BatchFigures['failures'] = [];
    let peakFds = before.fds ?? 0;
    let batches = 0;
    for (let first = 0; first < CONNECTIONS; first += batch) {
      const figures = await runBatch(first, Math.min(batch, CONNECTIONS - first));
      failures.push(...figures.failures);
      peakFds = Math.max(peakFds, figures.peakFds ?? 0);
      batches++;
    }
    const elapsedS = (performance.now() - start) / 1000;
    clearInterval(ticker);
    histogram.disable();

    // Let the last closes finish (deferred handle closes, TIME_WAIT is the kernel's).
    let after = { fds: fdCount(), handles: handleCounts() };
    const settleStart = performance.now();
    while (performance.now() - settleStart < 10_000 &&
           ((before.fds !== null && after.fds! > before.fds) ||
            socketHandles(after.handles) > socketHandles(before.handles))) {
      await delay(50);
      after = { fds: fdCount(), handles: handleCounts() };
    }
    const settleMs = Math.round(performance.now() - settleStart);

    const report = [
      `socket-linger stress: ${CONNECTIONS} connections, ${batches} batches of up to ${batch}, ` +
        `${ROWS.length} rows x ${MODES.length} peers, linger/timeout ${LINGER_S} s, ulimit -n ${limit ?? '?'}`,
      `  time: ${elapsedS.toFixed(1)} s (${(CONNECTIONS / elapsedS).toFixed(0)} connections/s)`,
      `  failures: ${failures.length}`,
      `  fds: before ${before.fds}, peak ${peakFds}, after ${after.fds} (settled in ${settleMs} ms)`,
      `  socket handles (${SOCKET_KINDS.join('/')}): before ${socketHandles(before.handles)}, after ${socketHandles(after.handles)}`,
      `  active resources before: ${JSON.stringify(before.handles)}`,
      `  active resources after:  ${JSON.stringify(after.handles)}`,
      `  event loop: max stall ${maxStallMs.toFixed(1)} ms (5 ms ticker), ` +
        `delay histogram max ${(histogram.max / 1e6).toFixed(1)} ms, p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms`,
      `  longest synchronous stretch per batch: setLinger+listeners ${phases.setupMs.toFixed(1)} ms, ` +
        `the test's write() loop ${phases.writeMs.toFixed(1)} ms, the ${batch} close calls ${phases.closeCallsMs.toFixed(1)} ms`,
    ];
    report.push('  row               peer    conns  failed  mean ms   max ms  peer FIN  peer RST  MiB to peers');
    for (const f of perCombo) {
      report.push(`  ${f.row.padEnd(16)}  ${f.mode.padEnd(6)}  ${String(f.n).padStart(5)}  ${String(f.failed).padStart(6)}  ` +
        `${(f.n ? f.sumMs / f.n : 0).toFixed(1).padStart(7)}  ${f.maxMs.toFixed(1).padStart(7)}  ` +
        `${String(f.fin).padStart(8)}  ${String(f.rst).padStart(8)}  ${(f.bytes / 2 ** 20).toFixed(1).padStart(12)}`);
    }
    for (const { conn, problem } of failures.slice(0, 20))
      report.push(`  FAIL #${conn.id} ${conn.row}/${conn.mode} (${conn.payload.data.length} B): ${problem}`);
    console.log(report.join('\n'));

    expect(failures.map(({ conn, problem }) => `#${conn.id} ${conn.row}/${conn.mode}: ${problem}`).slice(0, 20)).toEqual([]);
    if (before.fds !== null) expect(after.fds).toBeLessThanOrEqual(before.fds);
    expect(socketHandles(after.handles)).toBe(socketHandles(before.handles));
    // A close that blocked in the kernel would stall for the whole linger time.
    expect(maxStallMs).toBeLessThan(TIMEOUT_MS * 0.9);
  });
});

// The close matrix, run live on loopback: every row of the Winsock table, the
// shutdown sequence and the raw blocking-close trap, each with a peer that
// reads and one that does not, judged by what the peer's kernel saw.
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { abortiveClose, closeSocket, gracefulShutdown, type CloseResult } from './close';
import { setLinger, writeLinger } from './linger';
import { LINGER_MAX_SECONDS } from './validate';
import { descriptorOf, tcpHandleOf } from './handle';
import { getTcpInfo } from './tcp-info';
import { stallMonitor } from './stall';
import { elapsedSince } from './socket-close';

export type PeerMode = 'reads' | 'does not read';

export interface MatrixRow {
  close: string;
  setting: string;
  peer: PeerMode;
  /** What the close call settled with (null for a plain destroy()). */
  result: CloseResult | null;
  /** How long the close call took to settle, ms. */
  tookMs: number;
  peerBytes: number;
  totalBytes: number;
  /** What ended the connection at the peer, by its kernel state. */
  peerSaw: 'FIN' | 'RST' | 'nothing';
  /** Longest event-loop stall from the close call to the peer's verdict, ms. */
  maxStallMs: number;
  /** What the Winsock documentation says should happen. */
  expected: string;
  /** Whether it did; null for the informational trap rows. */
  ok: boolean | null;
  mismatches: string[];
}

export interface MatrixOptions {
  /** Bytes written before each close (default 8 MiB: more than kernel buffers hold; see MIN_PAYLOAD_BYTES). */
  payloadBytes?: number;
  /** n for the lingering rows, seconds (default 1). */
  lingerSeconds?: number;
  /** The loopback address both ends use (default 127.0.0.1; ::1 for IPv6). */
  host?: string;
  /** Called as each row starts (index from 0, of `total`). */
  onRowStart?: (row: Pick<MatrixRow, 'close' | 'setting' | 'peer'>, index: number, total: number) => void;
  /** Called with each row as it is judged. */
  onRow?: (row: MatrixRow, index: number, total: number) => void;
}

export const DEFAULT_PAYLOAD_BYTES = 8 * 1024 * 1024;

/**
 * The initial receive buffer of a new TCP socket, bytes: on Linux the middle
 * value of net.ipv4.tcp_rmem (131072 by default); elsewhere 128 KiB (macOS's
 * net.inet.tcp.recvspace default; Windows starts at 64 KiB).
 */
export function initialReceiveBuffer(): number {
  if (process.platform === 'linux') {
    try {
      const middle = Number(readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/)[1]);
      if (Number.isSafeInteger(middle) && middle > 0) return middle;
    } catch { /* no /proc: the default */ }
  }
  return 128 * 1024;
}

/**
 * The smallest payload the matrix accepts. The rows that reset (SO_LINGER
 * {on, 0}, abortiveClose, and a peer that does not read within n s) expect
 * unsent data lost, so the payload must exceed what the peer's kernel queues
 * while the peer is not reading: its initial receive buffer, which does not
 * grow while nothing is read (127973 bytes queued with Linux's default 131072;
 * payloads up to that arrive whole before the RST). Twice that, for margin.
 */
export const MIN_PAYLOAD_BYTES = 2 * initialReceiveBuffer();

/** How long past the linger window the matrix waits for the peer's verdict, ms. */
const VERDICT_GRACE_MS = 5000;
/** The longest a Node timer waits (setTimeout clamps anything longer to 1 ms, with a warning). */
export const TIMER_MAX_MS = 2 ** 31 - 1;
/**
 * The largest n the matrix runs: the platform's linger limit, and n s plus
 * the verdict grace must fit one timer.
 */
export const MATRIX_LINGER_MAX_SECONDS = Math.min(
  LINGER_MAX_SECONDS, Math.floor((TIMER_MAX_MS - VERDICT_GRACE_MS) / 1000));

/** A stall longer than this counts as blocking the event loop. */
export const STALL_LIMIT_MS = 200;

interface Scenario {
  close: string;
  setting: string;
  expected: (peer: PeerMode, n: number) => string;
  prepare?: (socket: net.Socket, n: number) => void;
  run: (socket: net.Socket, n: number) => Promise<CloseResult | null>;
  /** The peer's part: when it ends its side (for the shutdown sequence). */
  peerEndsAfterFin?: boolean;
  check: (row: MatrixRow, n: number) => string[];
  informational?: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    close: 'closeSocket()',
    setting: 'SO_DONTLINGER (off)',
    prepare: (s) => setLinger(s, false),
    run: (s) => closeSocket(s),
    expected: () => 'graceful, no wait (delivered unknown); every byte + FIN',
    check: (row) => [
      ...expectResult(row, 'graceful', false, false, null),
      ...(row.tookMs < 100 ? [] : ['did not settle at once']),
      ...expectPeer(row, 'FIN', true),
    ],
  },
  {
    close: 'closeSocket()',
    setting: 'SO_LINGER {on, 0}',
    prepare: (s) => setLinger(s, true, 0),
    run: (s) => closeSocket(s),
    expected: () => 'abortive, no wait; RST, unsent data lost',
    check: (row) => [
      ...expectResult(row, 'abortive', false, false, false),
      ...(row.tookMs < 100 ? [] : ['did not settle at once']),
      ...expectPeer(row, 'RST', false),
    ],
  },
  {
    close: 'closeSocket()',
    setting: 'SO_LINGER {on, n}',
    prepare: (s, n) => setLinger(s, true, n),
    run: (s) => closeSocket(s),
    expected: (peer, n) => peer === 'reads'
      ? `graceful, waits < ${n} s, delivered; every byte + FIN`
      : `abortive at ${n} s; RST`,
    check: (row, n) => row.peer === 'reads'
      ? [...expectResult(row, 'graceful', true, false, true), ...expectPeer(row, 'FIN', true)]
      : [
        ...expectResult(row, 'abortive', true, true, false),
        ...(Math.abs(row.tookMs - n * 1000) <= 100 ? [] : [`settled at ${row.tookMs} ms, not ${n * 1000}`]),
        ...expectPeer(row, 'RST', false),
      ],
  },
  {
    close: 'abortiveClose()',
    setting: 'any',
    run: (s) => abortiveClose(s),
    expected: () => 'abortive, no wait; RST',
    check: (row) => [...expectResult(row, 'abortive', false, false, false), ...expectPeer(row, 'RST', false)],
  },
  {
    close: 'gracefulShutdown()',
    setting: 'timeout n s',
    run: (s, n) => gracefulShutdown(s, { timeout: n * 1000 }),
    peerEndsAfterFin: true,
    expected: (peer, n) => peer === 'reads'
      ? 'graceful after the peer\'s FIN, delivered; every byte + FIN'
      : `abortive at ${n} s; RST`,
    check: (row) => row.peer === 'reads'
      ? [...expectResult(row, 'graceful', true, false, true), ...expectPeer(row, 'FIN', true)]
      : [...expectResult(row, 'abortive', true, true, false), ...expectPeer(row, 'RST', false)],
  },
  {
    close: 'destroy() (no library)',
    setting: 'kernel SO_LINGER {on, n}',
    // Straight to the kernel, without the close guard: what users hit today.
    prepare: (s, n) => writeLinger(descriptorOf(tcpHandleOf(s)), true, n),
    run: async (s) => { s.destroy(); return null; },
    // A peer in this same process cannot read while the loop is blocked.
    expected: (_peer, n) => process.platform === 'linux'
      ? `Linux: blocks the event loop up to ${n} s`
      : 'returns at once (the kernel does not wait)',
    check: () => [],
    informational: true,
  },
  {
    close: 'destroy()',
    setting: 'setLinger(s, true, n)',
    // The close guard switches the linger off first: FIN in the background.
    prepare: (s, n) => setLinger(s, true, n),
    run: async (s) => { s.destroy(); return null; },
    expected: () => 'no stall; kernel-queued bytes + FIN',
    check: (row) => (row.peerSaw === 'FIN' ? [] : [`peer saw ${row.peerSaw}, expected FIN`]),
  },
];

function expectResult(
  row: MatrixRow, type: CloseResult['type'], waited: boolean, timedOut: boolean, delivered: CloseResult['delivered'],
): string[] {
  const r = row.result;
  if (!r) return ['no result'];
  const out: string[] = [];
  if (r.type !== type) out.push(`type ${r.type}, expected ${type}`);
  if (r.waited !== waited) out.push(`waited ${r.waited}, expected ${waited}`);
  if (r.timedOut !== timedOut) out.push(`timedOut ${r.timedOut}, expected ${timedOut}`);
  if (r.delivered !== delivered) out.push(`delivered ${r.delivered}, expected ${delivered}`);
  return out;
}

function expectPeer(row: MatrixRow, saw: 'FIN' | 'RST', everyByte: boolean): string[] {
  const out: string[] = [];
  if (row.peerSaw !== saw) out.push(`peer saw ${row.peerSaw}, expected ${saw}`);
  if (everyByte && row.peerBytes !== row.totalBytes)
    out.push(`peer got ${row.peerBytes} of ${row.totalBytes} bytes`);
  if (!everyByte && row.peerBytes >= row.totalBytes) out.push('peer got every byte despite the reset');
  return out;
}

/** Runs every scenario with both kinds of peer; rows in table order. */
export async function runMatrix(options: MatrixOptions = {}): Promise<MatrixRow[]> {
  const payloadBytes = options.payloadBytes ?? DEFAULT_PAYLOAD_BYTES;
  const n = options.lingerSeconds ?? 1;
  const host = options.host ?? '127.0.0.1';
  const plan = SCENARIOS.flatMap((scenario) => (['reads', 'does not read'] as PeerMode[]).map((peer) => ({ scenario, peer })));
  const rows: MatrixRow[] = [];
  for (const [index, { scenario, peer }] of plan.entries()) {
    options.onRowStart?.({ close: scenario.close, setting: scenario.setting, peer }, index, plan.length);
    const row = await runRow(scenario, peer, payloadBytes, n, host);
    rows.push(row);
    options.onRow?.(row, index, plan.length);
  }
  return rows;
}

async function runRow(
  scenario: Scenario, peerMode: PeerMode, payloadBytes: number, n: number, host: string,
): Promise<MatrixRow> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, host);
  await once(server, 'listening'); // rejects with the listen error (EADDRNOTAVAIL for a missing ::1)
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, host);
  client.on('error', () => {}); // the rows that reset are meant to
  await once(client, 'connect');
  const [peer] = await accepted;
  const verdict = watchPeer(peer, scenario.peerEndsAfterFin === true && peerMode === 'reads');
  if (peerMode === 'reads') peer.resume();

  scenario.prepare?.(client, n);
  client.write(Buffer.alloc(payloadBytes, 0x6c));
  const stall = stallMonitor();
  const started = performance.now();
  const result = await scenario.run(client, n);
  const tookMs = elapsedSince(started);
  // A peer that was not reading looks only after any linger window passed.
  if (peerMode === 'does not read') {
    await delayMs(Math.max(0, n * 1000 + 200 - tookMs));
    peer.resume();
  }
  const seen = await Promise.race([verdict, delayMs(n * 1000 + VERDICT_GRACE_MS).then(() => null)]);
  const maxStallMs = Math.round(stall.stop() * 10) / 10;
  peer.destroy();
  client.destroy();
  server.close();

  const row: MatrixRow = {
    close: scenario.close, setting: scenario.setting, peer: peerMode, result, tookMs,
    peerBytes: seen?.bytes ?? 0, totalBytes: payloadBytes, peerSaw: seen?.saw ?? 'nothing',
    maxStallMs, expected: scenario.expected(peerMode, n), ok: null, mismatches: [],
  };
  const mismatches = judge(scenario, row, n);
  row.mismatches = mismatches ?? [];
  row.ok = mismatches === null ? null : mismatches.length === 0;
  return row;
}

/**
 * How a row differs from what the Winsock documentation says for its close,
 * setting and peer (empty when it agrees), or null for an informational row
 * (the raw kernel trap, shown but not judged). `n` is the row's linger, s.
 */
export function mismatchesOf(row: MatrixRow, n: number): string[] | null {
  const scenario = SCENARIOS.find((s) => s.close === row.close && s.setting === row.setting);
  if (scenario === undefined) throw new RangeError(`Not a row of the matrix: ${row.close}, ${row.setting}`);
  return judge(scenario, row, n);
}

function judge(scenario: Scenario, row: MatrixRow, n: number): string[] | null {
  if (scenario.informational) return null;
  const mismatches = scenario.check(row, n);
  if (row.maxStallMs >= STALL_LIMIT_MS) mismatches.push(`event loop stalled ${row.maxStallMs} ms`);
  return mismatches;
}

/** Bytes and how the connection ended, judged by the peer's kernel state. */
function watchPeer(peer: net.Socket, endAfterFin: boolean): Promise<{ bytes: number; saw: 'FIN' | 'RST' }> {
  return new Promise((resolve) => {
    let bytes = 0;
    peer.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    peer.on('end', () => {
      // Node reports an RST after a partial read as 'end': CLOSED tells.
      let state = 'CLOSED';
      try { state = getTcpInfo(peer).state; } catch { /* closed */ }
      resolve({ bytes, saw: state === 'CLOSE_WAIT' ? 'FIN' : 'RST' });
      if (endAfterFin) peer.end();
    });
    peer.on('error', () => resolve({ bytes, saw: 'RST' }));
  });
}

function delayMs(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

// relay(): two connected sockets joined, passing on what each side does
// faithfully: bytes both ways with backpressure, a FIN as a FIN after every
// byte before it (the other direction keeps flowing: half-close), an RST as
// an RST after every byte received before it (written, flushed and
// acknowledged first: Envoy #45267), an error as an RST. A naive
// `a.pipe(b); b.pipe(a)` turns every RST into a FIN.
import * as net from 'node:net';
import { abortiveClose, closeSocket } from './close';
import { invalidArgType, invalidArgValue, socketClosed } from './errors';
import { descriptorOf, tcpHandleOf, validateSocket } from './handle';
import { closedAfterBothFins } from './runtime';
import { elapsedSince, peerResetOn } from './socket-close';
import { readTcpInfo } from './tcp-info';
import { validateTimeout } from './validate';

/** How a direction ended at its destination: a FIN after every byte, or an RST. */
export type RelayEnding = 'FIN' | 'RST';

export interface RelayDirection {
  /** Bytes read from the source and written to the destination. */
  bytes: number;
  /**
   * 'FIN': the source's FIN was passed on after every byte. 'RST': the
   * direction ended in a reset (the source reset or failed, the destination
   * did, or the relay reset both: idle timeout, abort).
   */
  ending: RelayEnding;
}

/**
 * - 'closed': both directions ended with a FIN;
 * - 'reset': one side reset the connection (`by` says which), the other was reset after the flush;
 * - 'error': one side failed otherwise (a TLS error, say: `error`), the other was reset;
 * - 'idle': `idleTimeout` ms without a byte either way: both reset;
 * - 'aborted': `signal` aborted: both reset;
 * - 'fault': an injected fault (socket-linger proxy) ended it.
 */
export type RelayReason = 'closed' | 'reset' | 'error' | 'idle' | 'aborted' | 'fault';

export interface RelayResult {
  /** From `a` to `b`. */
  aToB: RelayDirection;
  /** From `b` to `a`. */
  bToA: RelayDirection;
  reason: RelayReason;
  /** The side whose reset or error ended the relay; null otherwise. */
  by: 'a' | 'b' | null;
  /** The error that ended it ('reset' / 'error'); null otherwise. */
  error: Error | null;
  /** From the call until both sockets closed. */
  elapsedMs: number;
}

export interface RelayOptions {
  /** ms without a byte in either direction: both sides are reset. 0 or absent: none. */
  idleTimeout?: number;
  /** Aborting resets both sides now. */
  signal?: AbortSignal;
  /**
   * ms an RST being passed on waits for the bytes before it to be
   * acknowledged by the receiving peer (a peer that does not read holds them
   * forever); then it is sent anyway. Default 10 000.
   */
  flushTimeout?: number;
}

export const DEFAULT_RELAY_FLUSH_TIMEOUT_MS = 10_000;

/** Faults for socket-linger proxy (`a` is the client, `b` the target). Internal. */
export interface RelayFaults {
  /** After this many bytes in a direction: as if its source sent a FIN, or an RST to both sides. */
  aToBAfter?: { bytes: number; then: RelayEnding };
  bToAAfter?: { bytes: number; then: RelayEnding };
  /** b's FIN reaches a as an RST (b gets a FIN). */
  rstOnFinFromB?: boolean;
  /** ms before every close toward a (a FIN or an RST). */
  delayCloseA?: number;
  /** Closes toward a are closeSocket(a): its SO_LINGER decides (linger 0: RST; n: wait, then RST). */
  lingerCloseA?: boolean;
  /** ms each chunk is held before it is written (both directions). */
  latencyMs?: number;
}

type Side = 'a' | 'b';

const FLUSH_POLL_MS = 5;
/** Bytes held by the latency fault before the source is paused. */
const LATENCY_HIGH_WATER = 1024 * 1024;

interface Direction {
  readonly from: Side;
  readonly src: net.Socket;
  readonly dst: net.Socket;
  readonly cut: { bytes: number; then: RelayEnding } | undefined;
  bytes: number;
  ending: RelayEnding | null;
  /** Nothing more is passed on; the source is still read (and discarded) until it ends. */
  done: boolean;
  /** Latency fault: chunks held, and their bytes. */
  held: { at: number; chunk: Buffer | null }[];
  heldBytes: number;
  timer: NodeJS.Timeout | undefined;
  /** Latency fault: the source is paused until the destination's 'drain'. */
  awaitingDrain: boolean;
}

/**
 * Joins two connected (or connecting) sockets, TCP or TLS, until both are
 * closed. Resolves (never rejects once started) with what each direction
 * carried and how it ended; invalid arguments reject with Node's error codes
 * before anything is touched. Sets `allowHalfOpen` on both sockets.
 */
export function relay(a: net.Socket, b: net.Socket, options?: RelayOptions): Promise<RelayResult> {
  try {
    const checked = validateRelay(a, b, options);
    return new Relay(a, b, checked, {}).promise;
  } catch (error) {
    return Promise.reject(error);
  }
}

/** relay() with faults injected (socket-linger proxy). Internal. */
export function relayWithFaults(a: net.Socket, b: net.Socket, options: RelayOptions, faults: RelayFaults): Promise<RelayResult> {
  try {
    return new Relay(a, b, validateRelay(a, b, options), faults).promise;
  } catch (error) {
    return Promise.reject(error);
  }
}

interface Checked { idleTimeout: number; signal: AbortSignal | undefined; flushTimeout: number }

function validateRelay(a: unknown, b: unknown, options: unknown): Checked {
  validateSocket(a, 'a');
  validateSocket(b, 'b');
  if (a === b) throw invalidArgValue('b', '<the same socket as a>', 'must be a different socket from a');
  if (options !== undefined && (options === null || typeof options !== 'object'))
    throw invalidArgType('options', 'of type object', options);
  const { idleTimeout, signal, flushTimeout } = (options ?? {}) as RelayOptions;
  if (idleTimeout !== undefined) validateTimeout(idleTimeout, 'options.idleTimeout');
  if (flushTimeout !== undefined) validateTimeout(flushTimeout, 'options.flushTimeout');
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
  if (a.destroyed || b.destroyed) throw socketClosed();
  return { idleTimeout: idleTimeout ?? 0, signal, flushTimeout: flushTimeout ?? DEFAULT_RELAY_FLUSH_TIMEOUT_MS };
}

function isReset(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED';
}

class Relay {
  readonly promise: Promise<RelayResult>;
  private resolve!: (result: RelayResult) => void;
  private readonly start = performance.now();
  private readonly aToB: Direction;
  private readonly bToA: Direction;
  private readonly closed = { a: false, b: false };
  /** A side reset (by its peer or us) or failed: nothing more goes to it. */
  private readonly gone = { a: false, b: false };
  /** resetAfterFlush() is waiting for the bytes toward this side. */
  private readonly flushing = { a: false, b: false };
  private reason: RelayReason | null = null;
  private by: Side | null = null;
  private error: Error | null = null;
  private idleTimer: NodeJS.Timeout | undefined;
  private pendingCloses = 0;
  private settled = false;
  private readonly onAbort = () => this.resetBoth('aborted');

  constructor(
    private readonly a: net.Socket,
    private readonly b: net.Socket,
    private readonly options: Checked,
    private readonly faults: RelayFaults,
  ) {
    this.promise = new Promise((resolve) => { this.resolve = resolve; });
    this.aToB = direction('a', a, b, faults.aToBAfter);
    this.bToA = direction('b', b, a, faults.bToAAfter);
    for (const d of [this.aToB, this.bToA]) this.attach(d);
    for (const side of ['a', 'b'] as const) {
      const socket = this.socketOf(side);
      socket.on('error', (error) => this.onGone(side, error));
      socket.once('close', () => this.onClose(side));
    }
    if (options.idleTimeout > 0) this.idleTimer = setTimeout(() => this.resetBoth('idle'), options.idleTimeout);
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(this.onAbort);
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: equivalent, a signal aborts once, and settleIfClosed() removes the listener
      else options.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    for (const d of [this.aToB, this.bToA]) if (d.cut?.bytes === 0) this.cut(d);
  }

  private socketOf(side: Side): net.Socket {
    return side === 'a' ? this.a : this.b;
  }

  private from(side: Side): Direction {
    return side === 'a' ? this.aToB : this.bToA;
  }

  private to(side: Side): Direction {
    return side === 'a' ? this.bToA : this.aToB;
  }

  private attach(d: Direction): void {
    const { src, dst } = d;
    src.allowHalfOpen = true;
    const resume = () => {
      if (!src.destroyed) src.resume();
    };
    src.on('data', (chunk: Buffer) => {
      if (d.done) return;
      let bytes = chunk;
      let cut = false;
      if (d.cut !== undefined && d.bytes + chunk.length >= d.cut.bytes) {
        bytes = chunk.subarray(0, d.cut.bytes - d.bytes);
        cut = true;
      }
      this.idleTimer?.refresh();
      if (bytes.length > 0) {
        d.bytes += bytes.length;
        if (this.faults.latencyMs) this.hold(d, bytes);
        else if (!dst.write(bytes) && !cut) {
          src.pause();
          dst.once('drain', resume);
        }
      }
      if (cut) this.cut(d);
    });
    src.on('end', () => this.onEnd(d));
    dst.on('finish', () => this.destroyIfDone(dst));
    src.on('end', () => this.destroyIfDone(src));
  }

  /** The latency fault: each chunk is written latencyMs after it arrived; a FIN (null) waits its turn. */
  private hold(d: Direction, chunk: Buffer | null): void {
    d.held.push({ at: performance.now() + (this.faults.latencyMs ?? 0), chunk });
    if (chunk) d.heldBytes += chunk.length;
    if (d.heldBytes > LATENCY_HIGH_WATER) d.src.pause();
    if (d.timer === undefined) this.release(d);
  }

  private release(d: Direction): void {
    d.timer = undefined;
    const now = performance.now();
    while (d.held.length > 0 && d.held[0].at <= now) {
      const { chunk } = d.held.shift()!;
      if (chunk) d.heldBytes -= chunk.length;
      const to: Side = d.dst === this.a ? 'a' : 'b';
      // A side being reset after the flush still gets the bytes held for it
      // (they came before the RST); a side gone otherwise gets nothing.
      const flushing = chunk !== null && this.flushing[to] && !this.aborted();
      if (d.dst.destroyed || (this.gone[to] && !flushing)) continue;
      if (chunk === null) this.closeToward(d.dst, 'FIN');
      else d.dst.write(chunk);
    }
    this.resumeHeld(d);
    // Stryker disable next-line MethodExpression: Math.min gives 0, so release() runs again every timer tick until the head is due: the same writes at the same times
    if (d.held.length > 0) d.timer = setTimeout(() => this.release(d), Math.max(0, d.held[0].at - now));
  }

  /** Latency fault: the source reads again while little is held and the destination takes more (its backpressure). */
  private resumeHeld(d: Direction): void {
    if (d.heldBytes > LATENCY_HIGH_WATER || d.done || d.src.destroyed) return;
    if (!d.dst.writableNeedDrain) {
      d.src.resume();
      return;
    }
    d.src.pause();
    if (d.awaitingDrain) return;
    d.awaitingDrain = true;
    d.dst.once('drain', () => {
      d.awaitingDrain = false;
      this.resumeHeld(d);
    });
  }

  /** The source's end of stream: its FIN, or (Node may report one so) its RST: the kernel tells. */
  private onEnd(d: Direction): void {
    if (d.done) return;
    let reset: boolean;
    try {
      reset = peerResetOn(descriptorOf(tcpHandleOf(d.src)));
    } catch {
      reset = !closedAfterBothFins(d.src);
    }
    if (reset) {
      this.onGone(d.from, Object.assign(new Error('read ECONNRESET (reported as end of stream)'), { code: 'ECONNRESET' }));
      return;
    }
    if (d === this.bToA && this.faults.rstOnFinFromB) {
      this.setReason('fault', null, null);
      d.done = true;
      d.ending = 'RST';
      // The client is reset; the target, which only sent its FIN, gets one.
      // Stryker disable next-line BooleanLiteral: equivalent, resetAfterFlush('a') below sets it too, in the same tick
      this.aToB.done = true;
      this.aToB.ending ??= 'FIN';
      this.closeToward(this.b, 'FIN');
      this.resetAfterFlush('a');
      return;
    }
    this.passFin(d);
  }

  private passFin(d: Direction): void {
    d.done = true;
    d.ending ??= 'FIN';
    if (this.faults.latencyMs) this.hold(d, null);
    else this.closeToward(d.dst, 'FIN');
    this.settleIfFinished();
  }

  /** A direction's byte limit (a fault): the source's FIN, or both sides reset once the bytes are through. */
  private cut(d: Direction): void {
    d.src.resume(); // read and discard from here
    if (d.cut!.then === 'FIN') {
      this.setReason('fault', null, null);
      this.passFin(d);
      return;
    }
    this.setReason('fault', null, null);
    d.done = true;
    d.ending = 'RST';
    const other = this.to(d.from);
    // Stryker disable next-line BooleanLiteral: equivalent, this direction is from(d.dst), which resetAfterFlush() below marks done in the same tick
    other.done = true;
    other.ending ??= 'RST';
    this.gone[d.from] = true;
    abortiveClose(d.src).catch(() => {});
    this.resetAfterFlush(d.dst === this.a ? 'a' : 'b');
  }

  /** `side` was reset by its peer or failed: every byte from it goes on, then the other side is reset. */
  private onGone(side: Side, error: Error): void {
    if (this.gone[side]) return;
    this.gone[side] = true;
    const other: Side = side === 'a' ? 'b' : 'a';
    this.setReason(isReset(error) ? 'reset' : 'error', side, error);
    const from = this.from(side);
    const to = this.to(side);
    from.done = true;
    from.ending ??= 'RST';
    to.done = true;
    to.ending ??= 'RST';
    const socket = this.socketOf(side);
    if (!socket.destroyed) abortiveClose(socket).catch(() => {});
    if (!this.gone[other]) this.resetAfterFlush(other);
  }

  /** Resets `side` once Node's, libuv's and the kernel's buffers toward it are empty (or flushTimeout). */
  private resetAfterFlush(side: Side): void {
    this.gone[side] = true;
    this.flushing[side] = true;
    const socket = this.socketOf(side);
    const incoming = this.from(side);
    incoming.done = true;
    incoming.ending ??= 'RST';
    socket.resume();
    const deadline = performance.now() + this.options.flushTimeout;
    const check = () => {
      if (socket.destroyed) return;
      const held = side === 'a' ? this.bToA.heldBytes : this.aToB.heldBytes;
      if (performance.now() < deadline && !this.aborted() && (held > 0 || !flushed(socket))) {
        setTimeout(check, FLUSH_POLL_MS);
        return;
      }
      this.closeToward(socket, 'RST');
    };
    check();
  }

  private aborted(): boolean {
    return this.reason === 'idle' || this.reason === 'aborted';
  }

  private closeToward(socket: net.Socket, how: RelayEnding): void {
    const delay = socket === this.a ? this.faults.delayCloseA ?? 0 : 0;
    const close = () => {
      if (socket.destroyed) return;
      if (how === 'RST') abortiveClose(socket).catch(() => {});
      else if (socket === this.a && this.faults.lingerCloseA) {
        // Its SO_LINGER decides: linger 0 (or n s without an acknowledgement) is an RST.
        this.pendingCloses++;
        closeSocket(socket).then((r) => {
          if (r.type === 'abortive') this.bToA.ending = 'RST';
        }, () => {}).finally(() => {
          this.pendingCloses--;
          this.settleIfClosed();
        });
      }
      else socket.end();
    };
    if (delay > 0 && !this.aborted()) setTimeout(close, delay);
    else close();
  }

  /** Idle timeout or abort: both sides reset now. */
  private resetBoth(reason: 'idle' | 'aborted'): void {
    if (this.closed.a && this.closed.b) return;
    this.reason = reason;
    this.by = null;
    this.error = null;
    for (const side of ['a', 'b'] as const) {
      this.gone[side] = true;
      const d = this.from(side);
      d.done = true;
      d.ending ??= 'RST';
      const socket = this.socketOf(side);
      if (!socket.destroyed) abortiveClose(socket).catch(() => {});
    }
  }

  private setReason(reason: RelayReason, by: Side | null, error: Error | null): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.by = by;
    this.error = error;
  }

  /** Both FINs passed on (and so read): each socket closes once its own FIN is flushed. */
  private settleIfFinished(): void {
    this.destroyIfDone(this.a);
    this.destroyIfDone(this.b);
  }

  private destroyIfDone(socket: net.Socket): void {
    if (socket.destroyed || !socket.readableEnded || !socket.writableFinished) return;
    if (socket === this.a && this.faults.lingerCloseA) return; // closeSocket() closes it
    socket.destroy();
  }

  private onClose(side: Side): void {
    this.closed[side] = true;
    // Closed without an end of stream or an error we saw (closeSocket()'s
    // filter read it, or the application destroyed it): what it sent is over.
    const from = this.from(side);
    if (!from.done) {
      if (this.gone[side]) from.ending ??= 'RST';
      else this.passFin(from);
    }
    const to = this.to(side);
    if (!to.done) {
      to.done = true;
      to.ending ??= 'RST';
      const other: Side = side === 'a' ? 'b' : 'a';
      if (!this.gone[other] && !this.socketOf(other).destroyed) this.resetAfterFlush(other);
    }
    this.settleIfClosed();
  }

  private settleIfClosed(): void {
    if (!this.closed.a || !this.closed.b || this.pendingCloses > 0 || this.settled) return;
    this.settled = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    for (const d of [this.aToB, this.bToA]) if (d.timer) clearTimeout(d.timer);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    const bothFin = this.aToB.ending === 'FIN' && this.bToA.ending === 'FIN';
    this.resolve({
      aToB: { bytes: this.aToB.bytes, ending: this.aToB.ending ?? 'RST' },
      bToA: { bytes: this.bToA.bytes, ending: this.bToA.ending ?? 'RST' },
      reason: this.reason ?? (bothFin ? 'closed' : 'reset'),
      by: this.by,
      error: this.error,
      elapsedMs: elapsedSince(this.start),
    });
  }
}

function direction(from: Side, src: net.Socket, dst: net.Socket, cut: Direction['cut']): Direction {
  return { from, src, dst, cut, bytes: 0, ending: null, done: false, held: [], heldBytes: 0, timer: undefined, awaitingDrain: false };
}

/** Every byte (and a FIN passed on) written to `socket` has left Node and libuv and been acknowledged by its peer. */
function flushed(socket: net.Socket): boolean {
  // A FIN passed on (end()) that libuv has not yet sent would be lost to the RST.
  if (socket.writableLength > 0 || (socket.writableEnded && !socket.writableFinished)) return false;
  try {
    const handle = tcpHandleOf(socket) as { writeQueueSize?: number };
    if ((handle.writeQueueSize ?? 0) > 0) return false;
    const info = readTcpInfo(descriptorOf(handle as never));
    return (info.unsentBytes ?? 0) + (info.unackedBytes ?? 0) === 0 || info.state === 'CLOSED';
  } catch {
    return true;
  }
}

// One close per socket. Every public close (closeSocket, abortiveClose,
// gracefulShutdown) starts or joins it, and every other close of the socket
// (destroy(), destroySoon(), resetAndDestroy(), timeouts, Node's
// auto-destroy) ends it through the close guard. It owns the deadline (the
// earliest of its callers'; any caller's abort signal resets), the read side
// while it runs, and the result, computed when the handle closes from what
// was observed: Node's buffer flushed or not, every byte and the FIN
// acknowledged or not, an RST sent or received, unread bytes left behind.
import type * as net from 'node:net';
import { errnoOf } from './errors';
import { descriptorOf, type InternalHandle } from './handle';
import { guardClose, watchClose, type CloseWatcher } from './close-guard';
import { readLinger } from './linger';
import { native } from './native';
import { Deadline, type Expiring } from './deadlines';
import { whenDelivered, type DeliveryListener, type DeliveryWatching } from './poller';
import { filterReads } from './reading';
import { inSlices } from './slices';
import { readTcpInfo } from './tcp-info';
import { closedAfterBothFins, runtime } from './runtime';

export interface CloseResult {
  /** What the peer got: every byte and a FIN, or an RST. */
  type: 'graceful' | 'abortive';
  /** Whether the promise waited for delivery (linger > 0, shutdown sequence). */
  waited: boolean;
  /** A deadline ran out and the connection was reset. */
  timedOut: boolean;
  elapsedMs: number;
  /**
   * Every byte written (Node's buffer and the kernel's) and the FIN were
   * acknowledged by the peer before the end; false when any were discarded;
   * null where it cannot be known (a close that settles before its
   * background flush ends).
   */
  delivered: boolean | null;
}

/**
 * How the close proceeds:
 * - `release`: Winsock's default closesocket(): settles at once; Node's
 *   buffer is flushed, the FIN queued, then the handle is released.
 * - `linger`: waits until every byte and the FIN are acknowledged, then
 *   closes; RST at the deadline.
 * - `sequence`: the shutdown sequence: FIN, read until the peer's FIN, every
 *   byte acknowledged, close; RST at the deadline.
 * - `reset`: RST now.
 * - `abandon`: a socket still connecting: the attempt is dropped (a late
 *   SYN-ACK gets the kernel's RST); no connection, so nothing delivered.
 */
export type CloseKind = 'release' | 'linger' | 'sequence' | 'reset' | 'abandon';

export interface JoinOptions {
  signal?: AbortSignal;
  /** ms from now; the close's deadline is the earliest of all callers'. */
  timeoutMs?: number;
}

/**
 * A lingering close's bounds on a peer that keeps sending (nginx's
 * lingering_timeout and a byte budget): past either the close ends with
 * linger off, as nginx's does, and is `abortive` if the peer was still
 * sending when it ended (what it sends next is reset by the kernel).
 */
export interface ReadLimits {
  /** ms without data from the peer. */
  idleTimeoutMs?: number;
  /** Bytes read and discarded (or passed on) during the close. */
  maxBytes?: number;
}

type Outcome = Omit<CloseResult, 'elapsedMs'>;

const closes = new WeakMap<net.Socket, SocketClose>();
/** No read limits: one object for every close that has none. */
const NO_LIMITS: ReadLimits = Object.freeze({});

/** The close under way on `socket`, if any. */
export function closeOf(socket: net.Socket): SocketClose | undefined {
  return closes.get(socket);
}

/** Starts the one close of `socket`; the caller's promise is the first join. */
export function startClose(
  socket: net.Socket, handle: InternalHandle, kind: CloseKind, options: JoinOptions, limits?: ReadLimits,
): Promise<CloseResult> {
  const close = new SocketClose(socket, handle, kind, limits ?? NO_LIMITS);
  const joined = close.join(options);
  close.begin();
  return joined;
}

/** Loop turns a release waits for libuv to read what arrived during its flush. */
const DRAIN_TURNS = 8;
const ECONNRESET = errnoOf('ECONNRESET');

interface Caller { start: number; resolve: (result: CloseResult) => void }

// Every close of every socket has one of these for as long as it waits, ten
// thousand at once on a busy server: the common case (one caller, no signal)
// allocates no arrays, no closures and no timer of its own.
class SocketClose implements CloseWatcher, DeliveryListener, Expiring {
  /** The first caller; later ones with their own options in `moreCallers`. */
  private firstCaller: Caller | undefined;
  private moreCallers: Caller[] | undefined;
  private aborts: [AbortSignal, () => void][] | undefined;
  private outcome: Outcome | undefined;
  private firstJoin: Promise<CloseResult> | undefined;
  /** The earliest caller's deadline (performance.now()), queued in deadlines.ts. */
  deadlineAt = Infinity;
  private deadline: Deadline | undefined;
  private timedOut = false;
  private handleClosing = false;
  // What was observed.
  private resetSent = false;
  private resetReceived = false;
  private flushed = false;
  private acknowledged = false;
  private peerFinished = false;
  private peerSent = false;
  private peerBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private closingOurselves = false;
  private finished = false;
  private whenClosed: (() => void)[] | undefined;
  private watching: DeliveryWatching | undefined;
  /**
   * A second reference to the socket where the runtime closes it itself
   * once both FINs have passed (Bun), before JavaScript hears of the peer's
   * FIN: the kernel can still be asked then whether everything was acknowledged.
   */
  // -1: none held.
  private kernelView = -1;

  constructor(
    private readonly socket: net.Socket,
    private readonly handle: InternalHandle,
    private readonly kind: CloseKind,
    private readonly limits: ReadLimits = {},
  ) {
    closes.set(socket, this);
    guardClose(handle, { hold: false }); // the kernel linger is off while a close runs
    watchClose(handle, this);
    // Node emits a destroy's 'error' before its 'close': absorbed until then.
    socket.on('error', onErrorDuringClose);
    socket.on('close', onClosedDuringClose);
  }

  /** The socket's 'close' (onClosedDuringClose): after it, a new call starts no join here. */
  closed(): void {
    this.finish();
    this.socket.off('error', onErrorDuringClose);
    this.socket.off('close', onClosedDuringClose);
    // Until now, a call in the same tick as the close joins it.
    closes.delete(this.socket);
  }

  /** A caller of any close function: shares this close's result. */
  join({ signal, timeoutMs }: JoinOptions = {}): Promise<CloseResult> {
    // A caller that brings nothing of its own shares the first one's promise.
    if (signal === undefined && timeoutMs === undefined && this.firstJoin !== undefined) return this.firstJoin;
    const start = performance.now();
    const joined = new Promise<CloseResult>((resolve) => {
      if (this.outcome !== undefined) {
        resolve(withElapsed(this.outcome, start));
        return;
      }
      // Stryker disable next-line EqualityOperator: equivalent, settle() resolves the first caller and the rest alike, wherever each is kept
      if (this.firstCaller === undefined) this.firstCaller = { start, resolve };
      else (this.moreCallers ??= []).push({ start, resolve });
      if (timeoutMs !== undefined) this.setDeadline(start + timeoutMs);
      if (signal === undefined) return;
      if (signal.aborted) {
        this.abort(false);
        return;
      }
      const onAbort = () => this.abort(false);
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: equivalent, a signal aborts once, and settle() removes the listener
      signal.addEventListener('abort', onAbort, { once: true });
      (this.aborts ??= []).push([signal, onAbort]);
    });
    this.firstJoin ??= joined;
    return joined;
  }

  /**
   * abortiveClose() during this close: RST now. A close that settled already
   * (a release still flushing) is cut short, and this caller hears of the RST.
   */
  resetNow(): Promise<CloseResult> {
    if (this.finished) return this.join();
    if (this.outcome === undefined) return this.join({ signal: AbortSignal.abort() });
    const start = performance.now();
    return new Promise((resolve) => {
      (this.whenClosed ??= []).push(() => resolve(withElapsed(
        { type: 'abortive', waited: false, timedOut: false, delivered: false }, start)));
      this.resetConnection();
    });
  }

  begin(): void {
    const { socket } = this;
    switch (this.kind) {
      case 'reset':
        this.resetConnection();
        return;
      case 'abandon':
        this.resetSent = true;
        this.closeNow();
        return;
      case 'release':
        // Winsock's closesocket(): the application receives nothing more.
        filterReads(socket, () => false);
        // Settles now: what the peer gets is decided (a FIN after the
        // flush), whether it arrives is not known yet.
        this.settle({ type: 'graceful', waited: false, timedOut: false, delivered: null });
        this.afterFlush(() => this.closeWhenRead());
        return;
      case 'linger':
        // Reads are swallowed (EOF too, or Node would close the socket);
        // a reset ends the wait: nothing more can be delivered.
        filterReads(socket, (bytes) => {
          if (bytes !== null) this.onPeerData(bytes);
          else this.onHangUp();
          return false;
        });
        break;
      case 'sequence':
        // The peer's FIN may be in already (Node's stream has its EOF).
        this.peerFinished = (socket as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
        // Data still reaches the app while it takes it; once its buffer is
        // full (a paused stream) or nobody listens, it is drained. The
        // peer's FIN completes the sequence whatever the app's flow state.
        filterReads(socket, (bytes) => {
          if (bytes === null) {
            // Node tells a read error from EOF (it destroys the socket with
            // the error, which the guard then sees): decide after it has.
            queueMicrotask(() => this.onHangUp());
            return true;
          }
          if (!this.onPeerData(bytes)) return false;
          const listening = socket.listenerCount('data') > 0 || socket.listenerCount('readable') > 0;
          return listening && socket.readableLength < socket.readableHighWaterMark;
        });
        break;
    }
    preventAutoDestroy(socket);
    if (runtime.closesAfterBothFins) this.holdKernelView();
    if (this.limits.idleTimeoutMs !== undefined) this.armIdleTimer(this.limits.idleTimeoutMs);
    this.afterFlush(() => {
      this.watching = whenDelivered(socket, this);
    });
  }

  // ------------------------------------------------------------- delivery

  /** Every byte and the FIN acknowledged (poller.ts). */
  onDelivered(): void {
    this.acknowledged = true;
    this.completeIfDone();
  }

  /** Reset during the wait (poller.ts): nothing more can be delivered. */
  onReset(): void {
    this.resetReceived = true;
    this.closeNow();
  }

  /** The deadline (deadlines.ts): RST. */
  runSlice(): void {
    this.abort(true);
  }

  // ------------------------------------------------------------- the guard

  onHandleClosing(how: 'close' | 'reset'): void {
    if (this.handleClosing) return;
    this.handleClosing = true;
    this.stopWatching();
    this.clearTimers();
    if (this.outcome !== undefined) return; // settled already (release): nothing to learn
    // Someone else's close cut this one short while the peer was still
    // sending (data came, its FIN did not): what it sends next reaches a
    // closed socket and is reset (node:http's destroySoon(), say).
    if (how === 'reset' || (!this.closingOurselves && this.peerSent && !this.peerFinished)) this.resetSent = true;
    this.flushed = this.socket.writableLength === 0;
    // Node destroys a socket whose read or write failed (ECONNRESET, EPIPE)
    // with that error: it is set before the handle closes, emitted after.
    if (isSystemError(this.socket.errored)) this.resetReceived = true;
    try {
      const fd = descriptorOf(this.handle);
      const linger = readLinger(fd);
      if (linger.enabled && linger.seconds === 0) this.resetSent = true;
      // Unread bytes make the kernel reset instead of FIN (RFC 1122 4.2.2.13).
      if (native.readableBytes(fd) > 0) this.resetSent = true;
      if (peerResetOn(fd)) this.resetReceived = true;
      if (!this.acknowledged && this.socket.writableFinished) this.acknowledged = unacknowledgedOn(fd) === 0;
    } catch {
      // The OS socket is gone already: nothing more to learn from it.
    }
  }

  onHandleClosed(): void {
    this.finish();
  }

  onRefChange(): void {
    this.refTimer();
  }

  // ------------------------------------------------------------- events

  /** An 'error' during the close (onErrorDuringClose). */
  onError(error: Error): void {
    // A failed read or write during the close: the connection was reset.
    // (Stream errors, a write after end() say, say nothing about the peer.)
    if (!isSystemError(error)) return;
    this.resetReceived = true;
    // With auto-destroy off (the close owns the socket) Node only reports a
    // failed write: the connection is gone, close it.
    queueMicrotask(() => this.closeNow());
  }

  /** The handle is closed (the guard saw it, or at the latest 'close'): the result. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.releaseKernelView();
    this.clearTimers();
    this.stopWatching();
    watchClose(this.handle, undefined);
    const whenClosed = this.whenClosed;
    this.whenClosed = undefined;
    if (whenClosed !== undefined) for (const then of whenClosed) then();
    if (this.outcome !== undefined) return;
    const type = this.resetSent || this.resetReceived ? 'abortive' : 'graceful';
    // Every byte and the FIN acknowledged is delivered, even if the peer
    // reset afterwards; an RST before that discarded what was left.
    const delivered = !this.flushed ? false : this.acknowledged ? true : type === 'abortive' ? false : null;
    this.settle({ type, waited: this.kind === 'linger' || this.kind === 'sequence', timedOut: this.timedOut, delivered });
  }

  /** Data from the peer during the close; false once past the read limits (the close ends). */
  private onPeerData(bytes: number): boolean {
    this.peerSent = true;
    this.peerBytes += bytes;
    const { idleTimeoutMs, maxBytes } = this.limits;
    if (maxBytes !== undefined && this.peerBytes > maxBytes) {
      this.endAtLimit(true);
      // The socket is destroyed now: passing the read on would throw inside Node's read callback.
      return false;
    }
    if (idleTimeoutMs !== undefined) this.armIdleTimer(idleTimeoutMs);
    return true;
  }

  private armIdleTimer(ms: number): void {
    if (this.idleTimer !== undefined) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => inSlices(() => this.endAtLimit(false)), ms);
      this.refTimer();
    }
  }

  /** Past a read limit: close with linger off, as nginx does. */
  private endAtLimit(peerStillSending: boolean): void {
    if (this.handleClosing) return;
    // A quiet peer gets our FIN (sent already) and a plain close; one that
    // is still sending gets the kernel's RST for its next bytes: say so.
    if (peerStillSending) this.resetSent = true;
    // Stryker disable next-line BooleanLiteral: equivalent while closeNow() below marks the close as ours (onHandleClosing asks both)
    else this.peerSent = false;
    this.closeNow();
  }

  /**
   * The peer's FIN, or a read error (libuv may report a reset as either: the
   * socket's kernel state tells them apart).
   */
  private onHangUp(): void {
    if (this.handleClosing) return; // a read error: Node closed the socket with it
    // Stryker disable next-line BooleanLiteral: equivalent, every path below assigns it or returns
    let reset = false;
    try {
      reset = peerResetOn(descriptorOf(this.handle));
    } catch {
      // Bun closed the socket at the peer's FIN after ours: the kernel view
      // tells a reset, and whether everything was acknowledged (else: unknown).
      if (closedAfterBothFins(this.socket) && this.kernelView >= 0) {
        reset = peerResetOn(this.kernelView);
        if (!reset) {
          this.peerFinished = true;
          this.acknowledged = unacknowledgedOn(this.kernelView) === 0;
          this.releaseKernelView();
          this.closeWhenRead();
          return;
        }
      } else reset = true;
    }
    if (reset) {
      this.resetReceived = true;
      this.closeNow();
      return;
    }
    this.peerFinished = true;
    this.completeIfDone();
  }

  private holdKernelView(): void {
    try {
      const held = native.holdSocket(descriptorOf(this.handle));
      if (held >= 0) this.kernelView = held;
    } catch {
      // Closed already: nothing to watch.
    }
  }

  private releaseKernelView(): void {
    if (this.kernelView >= 0) native.releaseHeld(this.kernelView);
    this.kernelView = -1;
  }

  private completeIfDone(): void {
    if (!this.acknowledged) return;
    if (this.kind === 'sequence' && !this.peerFinished) return;
    this.closeWhenRead();
  }

  // ------------------------------------------------------------- actions

  /** Once Node's buffer is flushed and the FIN queued. */
  private afterFlush(then: () => void): void {
    const { socket } = this;
    socket.end();
    if (socket.writableFinished) then();
    else socket.once('finish', then);
  }

  /**
   * Closes once libuv has read (and the filter dropped) what arrived during
   * the flush, a TLS 1.3 session ticket say: bytes left in the receive queue
   * would turn the FIN the result promised into an RST. A peer that keeps
   * sending is given a few loop turns, then the close goes ahead.
   */
  private closeWhenRead(turns = DRAIN_TURNS): void {
    let unread = 0;
    try {
      unread = native.readableBytes(descriptorOf(this.handle));
    } catch {
      // Closed underneath: nothing left to read.
    }
    if (unread > 0 && turns > 0 && !this.socket.destroyed) setImmediate(() => this.closeWhenRead(turns - 1));
    else this.closeNow();
  }

  /** Linger off (it is), close: a FIN, or an RST if bytes are left unread. */
  private closeNow(): void {
    this.closingOurselves = true;
    this.socket.destroy(); // of a destroyed stream: does nothing
  }

  /** linger {on, 0} and close: RST. */
  private resetConnection(): void {
    try {
      native.setLinger(descriptorOf(this.handle), true, 0);
    } catch {
      // Closed meanwhile: nothing left to cut.
    }
    this.closeNow();
  }

  private abort(timedOut: boolean): void {
    if (this.handleClosing || this.socket.destroyed) return;
    this.timedOut = timedOut;
    this.resetConnection();
  }

  private settle(outcome: Outcome): void {
    this.outcome = outcome;
    // Settled: a caller's signal can no longer change what it was told.
    if (this.aborts !== undefined) for (const [signal, onAbort] of this.aborts) signal.removeEventListener('abort', onAbort);
    this.aborts = undefined;
    const first = this.firstCaller;
    const more = this.moreCallers;
    this.firstCaller = this.moreCallers = undefined;
    if (first !== undefined) first.resolve(withElapsed(outcome, first.start));
    if (more !== undefined) for (const caller of more) caller.resolve(withElapsed(outcome, caller.start));
  }

  // ------------------------------------------------------------- the deadline

  /** The earliest deadline of all callers (one queue for every close's: deadlines.ts). */
  private setDeadline(at: number): void {
    if (at >= this.deadlineAt || this.handleClosing) return;
    this.deadlineAt = at;
    if (this.deadline === undefined) this.deadline = new Deadline(this, this.keepsAlive());
    else this.deadline.moved();
  }

  /** The deadline keeps the process alive only while the socket would. */
  private keepsAlive(): boolean {
    const hasRef = (this.handle as { hasRef?: () => boolean }).hasRef;
    return hasRef === undefined || hasRef.call(this.handle);
  }

  private refTimer(): void {
    const ref = this.keepsAlive();
    this.deadline?.ref(ref);
    if (this.idleTimer === undefined) return;
    if (ref) this.idleTimer.ref();
    else this.idleTimer.unref();
  }

  private clearTimers(): void {
    this.deadline?.cancel();
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private stopWatching(): void {
    this.watching?.stop();
    this.watching = undefined;
  }
}

// One pair of listeners for every close (none of their own): `this` is the socket.
function onErrorDuringClose(this: net.Socket, error: Error): void {
  closes.get(this)?.onError(error);
}

function onClosedDuringClose(this: net.Socket): void {
  closes.get(this)?.closed();
}

function isSystemError(error: unknown): boolean {
  return typeof (error as { errno?: unknown } | null)?.errno === 'number';
}

function withElapsed(outcome: Outcome, start: number): CloseResult {
  return { ...outcome, elapsedMs: elapsedSince(start) };
}

/** ms since `start` (a performance.now()), to 0.1 ms: every elapsedMs the package reports. */
export function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/**
 * Only the close may close the socket: Node would auto-destroy it at 'finish'
 * once reading ended, or at 'end' once writing finished. Node destroys only
 * when both sides allow it, so either flag would do there; both are cleared so
 * a stream that checks only its own side cannot either.
 */
function preventAutoDestroy(socket: net.Socket): void {
  const states = socket as { _readableState?: { autoDestroy: boolean }; _writableState?: { autoDestroy: boolean } };
  // Stryker disable next-line BooleanLiteral: equivalent on Node, which auto-destroys only when both sides allow it (the other line suffices)
  if (states._readableState) states._readableState.autoDestroy = false;
  // Stryker disable next-line BooleanLiteral: equivalent on Node, as above
  if (states._writableState) states._writableState.autoDestroy = false;
}

/**
 * Whether the peer reset the connection: a reset leaves ECONNRESET pending
 * (SO_ERROR), unless libuv's read consumed it; then the kernel's state tells:
 * CLOSED with data or the FIN unacknowledged (after both FINs an open socket
 * reads CLOSED too, but with nothing unacknowledged).
 */
export function peerResetOn(fd: number): boolean {
  if (native.pendingError(fd) === ECONNRESET) return true;
  const info = readTcpInfo(fd);
  return info.state === 'CLOSED' && (info.unsentBytes ?? 0) + (info.unackedBytes ?? 0) > 0;
}

const one = new Float64Array(1);
const oneLast = Float64Array.of(NaN);
const oneOut = new Float64Array(1);

function unacknowledgedOn(fd: number): number {
  one[0] = fd;
  native.unacknowledged(one, oneLast, oneOut);
  return oneOut[0];
}

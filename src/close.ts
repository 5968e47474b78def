// The Winsock close matrix as promises: closeSocket() (driven by the
// socket's linger option), abortiveClose() and gracefulShutdown(). None of
// them lets a nonzero kernel linger be in force when the handle closes, so
// nothing ever blocks the event loop: the waiting is done here, in timers.
import * as net from 'node:net';
import { errnoOf, invalidArgType } from './errors';
import { descriptorOf, isPending, tcpHandleOf, validateSocket, type InternalHandle } from './handle';
import { closedWithReset, guardClose } from './close-guard';
import { readLinger, writeLinger } from './linger';
import { native } from './native';
import { whenDelivered } from './poller';
import { filterReads } from './reading';
import { inSlices } from './slices';
import { readTcpInfo } from './tcp-info';
import { validateTimeout } from './validate';

export interface CloseResult {
  /** What the peer got: every byte and a FIN, or an RST. */
  type: 'graceful' | 'abortive';
  /** Whether the promise waited for delivery (linger > 0, shutdown sequence). */
  waited: boolean;
  /** The wait ran out and the connection was reset. */
  timedOut: boolean;
  elapsedMs: number;
}

export interface CloseOptions {
  /** Aborting turns any wait into an abortive close, now. */
  signal?: AbortSignal;
}

export interface GracefulShutdownOptions extends CloseOptions {
  /** How long to wait for the peer's FIN, in ms (default 30 000). */
  timeout?: number;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Winsock closesocket(), driven by the socket's linger option:
 * - off: settles at once; queued data (Node's buffer too) is still delivered,
 *   then FIN, then the handle is released;
 * - on, 0 s: RST now, unsent data discarded;
 * - on, n s: waits (asynchronously) until every byte and the FIN are
 *   acknowledged, then closes; after n s, RST.
 */
export function closeSocket(socket: net.Socket, options?: CloseOptions): Promise<CloseResult> {
  return settle(() => {
    validateSocket(socket);
    const { signal } = validateOptions(options);
    const inFlight = closing.get(socket);
    if (inFlight) return inFlight;
    const start = performance.now();
    if (isPending(socket)) return abortConnect(socket, start);
    const handle = tcpHandleOf(socket);
    const fd = descriptorOf(handle);
    const linger = readLinger(fd);
    if (signal?.aborted || (linger.enabled && linger.seconds === 0))
      return reset(socket, start, false, false);
    const errors = absorbErrors(socket);
    if (!linger.enabled) {
      discardReads(socket);
      releaseAfterFlush(socket);
      return Promise.resolve(result('graceful', false, false, start));
    }
    // The wait is ours from here: with the kernel's n in force, any close that
    // comes first (a worker's teardown, say) would block its thread for n s.
    // The guard tells later whether someone else's close was an RST.
    guardClose(handle);
    writeLinger(fd, false, 0);
    return track(socket, lingerThenClose(socket, handle, linger.seconds * 1000, start, signal, errors));
  });
}

/** A close under way: later closeSocket/gracefulShutdown calls share it. */
const closing = new WeakMap<net.Socket, Promise<CloseResult>>();

function track(socket: net.Socket, promise: Promise<CloseResult>): Promise<CloseResult> {
  closing.set(socket, promise);
  return promise;
}

/**
 * RST now: linger {on, 0} and close. Unlike socket.resetAndDestroy() it
 * works on TLS sockets and while an end() is still pending.
 */
export function abortiveClose(socket: net.Socket): Promise<CloseResult> {
  return settle(() => {
    validateSocket(socket);
    const start = performance.now();
    if (isPending(socket)) return abortConnect(socket, start);
    return reset(socket, start, false, false);
  });
}

/**
 * The shutdown sequence Microsoft documents (nginx's lingering close): flush,
 * shutdown(write), keep receiving until the peer's FIN (data still reaches
 * 'data' listeners, or is drained), close. After `timeout` ms: RST.
 */
export function gracefulShutdown(socket: net.Socket, options?: GracefulShutdownOptions): Promise<CloseResult> {
  return settle(() => {
    validateSocket(socket);
    const { signal, timeout } = validateOptions(options, true);
    const inFlight = closing.get(socket);
    if (inFlight) return inFlight;
    const start = performance.now();
    if (isPending(socket)) return abortConnect(socket, start);
    const fd = descriptorOf(tcpHandleOf(socket));
    if (signal?.aborted) return reset(socket, start, false, false);
    // The sequence closes gracefully, whoever closes in the end (Node's
    // auto-destroy or us): no linger 0 (RST), no linger n (a blocking close).
    writeLinger(fd, false, 0);
    const errors = absorbErrors(socket);
    return track(socket, new Promise<CloseResult>((resolve) => {
      let closeType: CloseResult['type'] = 'graceful';
      const finish = settleOnce(socket, start, true, signal, timeout, resolve, () => {
        clearListeners();
      });
      // Runs before Node's own auto-destroy: 'end'/'finish' listeners come first.
      const closeWhenDone = () => {
        if (socket.readableEnded && socket.writableFinished && !socket.destroyed)
          closeType = closeGracefully(socket);
      };
      const onEnd = () => {
        // Node reports a hang-up after a partial read as EOF: ask the kernel.
        if (wasReset(socket)) closeType = 'abortive';
        closeWhenDone();
      };
      const onClose = () => finish(errors.seen || resetByUs.has(socket) ? 'abortive' : closeType, false);
      const clearListeners = () => {
        socket.off('end', onEnd);
        socket.off('finish', closeWhenDone);
        socket.off('close', onClose);
      };
      socket.on('end', onEnd);
      socket.on('finish', closeWhenDone);
      socket.on('close', onClose);
      if (socket.listenerCount('data') === 0 && socket.listenerCount('readable') === 0) socket.resume();
      socket.end();
      closeWhenDone();
    }));
  });
}

// ---------------------------------------------------------------------------

function lingerThenClose(
  socket: net.Socket, handle: InternalHandle, timeoutMs: number, start: number,
  signal: AbortSignal | undefined, errors: { seen: boolean },
): Promise<CloseResult> {
  return new Promise<CloseResult>((resolve) => {
    let stopWatching = () => {};
    const finish = settleOnce(socket, start, true, signal, timeoutMs, resolve, () => {
      stopWatching();
      socket.off('close', onClose);
    });
    // Closed underneath us: by a failed write (the peer reset), by an
    // abortive close (linger 0, resetAndDestroy), or by a plain destroy(),
    // whose guard closes gracefully in the background.
    const onClose = () => finish(errors.seen || closedWithReset(handle) ? 'abortive' : 'graceful', false);
    socket.once('close', onClose);
    // The peer's FIN (or a reset libuv saw as a read error) comes as a
    // hang-up: a reset ends the wait now, nothing more can be delivered.
    discardReads(socket, () => {
      if (!peerReset(socket)) return;
      socket.destroy();
      finish('abortive', false);
    });
    const watch = () => {
      stopWatching = whenDelivered(socket, () => inSlices(() => {
        if (!socket.destroyed) finish(closeGracefully(socket), false);
      }));
    };
    // Only this wait may close the socket: Node would auto-destroy it once
    // 'finish' comes if its reading had ended (after shutdown('read'), say).
    preventAutoDestroy(socket);
    socket.end();
    if (socket.writableFinished) watch();
    else socket.once('finish', watch);
  });
}

function preventAutoDestroy(socket: net.Socket): void {
  const states = socket as { _readableState?: { autoDestroy: boolean }; _writableState?: { autoDestroy: boolean } };
  if (states._readableState) states._readableState.autoDestroy = false;
  if (states._writableState) states._writableState.autoDestroy = false;
}

/**
 * Whether the peer reset the connection. libuv's read may already have
 * consumed the pending ECONNRESET, so the kernel's state decides too: CLOSED
 * with data or the FIN still unacknowledged is a reset (after both FINs an
 * open socket also reads CLOSED, but with nothing unacknowledged).
 */
function peerReset(socket: net.Socket): boolean {
  if (wasReset(socket)) return true;
  try {
    const info = readTcpInfo(descriptorOf(tcpHandleOf(socket)));
    return info.state === 'CLOSED' && (info.unsentBytes ?? 0) + (info.unackedBytes ?? 0) > 0;
  } catch {
    return false;
  }
}

/**
 * Linger off, then close. Unread bytes in the receive queue make the kernel
 * send RST instead of FIN (RFC 1122): report that, never a FIN not sent.
 */
function closeGracefully(socket: net.Socket): CloseResult['type'] {
  let type: CloseResult['type'] = 'graceful';
  try {
    const fd = descriptorOf(tcpHandleOf(socket));
    native.setLinger(fd, false, 0);
    if (native.readableBytes(fd) > 0) type = 'abortive';
  } catch {
    // Already closed: nothing left to send either way.
  }
  socket.destroy();
  return type;
}

/** Row 1: the handle is released once Node's buffer is flushed and the FIN queued. */
function releaseAfterFlush(socket: net.Socket): void {
  socket.end();
  if (socket.writableFinished) closeGracefully(socket);
  else socket.once('finish', () => closeGracefully(socket));
}

/** linger {on, 0} and close: RST. Settles when the handle is closed. */
function reset(socket: net.Socket, start: number, waited: boolean, timedOut: boolean): Promise<CloseResult> {
  const type = resetNow(socket);
  return closed(socket).then(() => result(type, waited, timedOut, start));
}

/**
 * linger {on, 0} and close. If the kernel refused the option (macOS, once
 * both directions are shut down) the close is a FIN: say so.
 */
function resetNow(socket: net.Socket): CloseResult['type'] {
  const fd = descriptorOf(tcpHandleOf(socket));
  const armed = native.setLinger(fd, true, 0) === 0;
  if (armed) resetByUs.add(socket);
  socket.destroy();
  return armed ? 'abortive' : 'graceful';
}

/** Sockets this library reset: a close waiting on them reports the RST. */
const resetByUs = new WeakSet<net.Socket>();

/** Closing a socket still connecting: there is no connection to end. */
function abortConnect(socket: net.Socket, start: number): Promise<CloseResult> {
  socket.destroy();
  return closed(socket).then(() => result('abortive', false, false, start));
}

/**
 * One settlement for a waiting close: by delivery, by `timeoutMs` (RST,
 * timedOut) or by the abort signal (RST).
 */
function settleOnce(
  socket: net.Socket, start: number, waited: boolean, signal: AbortSignal | undefined,
  timeoutMs: number, resolve: (value: CloseResult) => void, cleanup: () => void,
) {
  let settled = false;
  const finish = (type: CloseResult['type'], timedOut: boolean) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    cleanup();
    resolve(result(type, waited, timedOut, start));
  };
  const abortively = (timedOut: boolean) => {
    if (settled) return;
    let type: CloseResult['type'] = 'abortive';
    try {
      type = resetNow(socket);
    } catch {
      // Closed meanwhile: the reset has nothing left to cut.
    }
    finish(type, timedOut);
  };
  const onAbort = () => abortively(false);
  // Deadlines that fall together are served in slices (see slices.ts).
  // Timers hold at most 2^31-1 ms (~24.8 days); longer lingers re-arm.
  let timer: NodeJS.Timeout;
  const arm = (remainingMs: number) => {
    timer = remainingMs > MAX_TIMER_MS
      ? setTimeout(() => arm(remainingMs - MAX_TIMER_MS), MAX_TIMER_MS)
      : setTimeout(() => inSlices(() => abortively(true)), remainingMs);
  };
  arm(timeoutMs);
  signal?.addEventListener('abort', onAbort, { once: true });
  return finish;
}

function closed(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/**
 * Winsock's closesocket(): the application receives nothing more. EOF and
 * read errors are swallowed too (so Node does not auto-close the socket);
 * `onHangUp` hears of them.
 */
function discardReads(socket: net.Socket, onHangUp?: () => void): void {
  filterReads(socket, (hasData) => {
    if (!hasData) onHangUp?.();
    return false;
  });
}

/** Errors during a close belong to its result, not to an 'error' crash. */
function absorbErrors(socket: net.Socket): { seen: boolean } {
  const errors = { seen: false };
  socket.on('error', () => { errors.seen = true; });
  return errors;
}

/** A reset leaves ECONNRESET pending on the socket; a FIN leaves nothing. */
function wasReset(socket: net.Socket): boolean {
  try {
    return native.pendingError(descriptorOf(tcpHandleOf(socket))) === errnoOf('ECONNRESET');
  } catch {
    return false;
  }
}

function result(type: CloseResult['type'], waited: boolean, timedOut: boolean, start: number): CloseResult {
  return { type, waited, timedOut, elapsedMs: Math.round((performance.now() - start) * 10) / 10 };
}

function validateOptions(options: unknown, withTimeout = false): { signal?: AbortSignal; timeout: number } {
  if (options === undefined) return { timeout: DEFAULT_SHUTDOWN_TIMEOUT_MS };
  if (options === null || typeof options !== 'object')
    throw invalidArgType('options', 'of type object', options);
  const { signal, timeout } = options as GracefulShutdownOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
  if (withTimeout && timeout !== undefined) validateTimeout(timeout, 'options.timeout');
  return { signal, timeout: timeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS };
}

/** The promise functions never throw synchronously: errors reject. */
function settle<T>(run: () => Promise<T>): Promise<T> {
  try {
    return run();
  } catch (error) {
    return Promise.reject(error);
  }
}

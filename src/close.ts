// The Winsock close matrix as promises: closeSocket() (driven by the
// socket's linger option), abortiveClose() and gracefulShutdown(). Each
// validates, picks how the socket's one close proceeds (socket-close.ts),
// and starts it, or joins the close already under way. None of them lets a
// nonzero kernel linger be in force when the handle closes, so nothing ever
// blocks the event loop: the waiting is done in timers.
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import { errnoOf, invalidArgType, socketClosed, systemError } from './errors';
import {
  connectionPhase, descriptorOf, http2PartsOf, isHttp2Session, tcpHandleOf, validateSocket, validateStreamControl, type Http2Parts,
} from './handle';
import { closeHttp2, resetHttp2 } from './http/http2';
import { readLinger, writeLinger } from './linger';
import { native } from './native';
import {
  closeOf, peerResetOn, startClose, type CloseKind, type CloseResult, type JoinOptions, type ReadLimits,
} from './socket-close';
import { validateTimeout } from './validate';

export type { CloseResult } from './socket-close';

export interface CloseOptions {
  /** Aborting turns any wait into an abortive close, now. */
  signal?: AbortSignal;
}

export interface GracefulShutdownOptions extends CloseOptions {
  /** How long to wait for the peer's FIN, in ms (default 30 000). */
  timeout?: number;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/**
 * Winsock closesocket(), driven by the socket's linger option:
 * - off: settles at once; queued data (Node's buffer too) is still delivered,
 *   then FIN, then the handle is released. Unread bytes in the receive queue
 *   make it an RST now, as the kernel's own close would (RFC 1122);
 * - on, 0 s: RST now, unsent data discarded;
 * - on, n s: waits (asynchronously) until every byte and the FIN are
 *   acknowledged, then closes; after n s, RST.
 * A close already under way is joined: its result is shared, and `signal`
 * can still end it now.
 */
export function closeSocket(socket: net.Socket | http2.Http2Session, options?: CloseOptions): Promise<CloseResult> {
  return settle(() => {
    const h2 = http2Of(socket);
    if (h2) return closeHttp2(h2, validateH2(h2, options, false), lingerClose);
    return lingerClose(socket as net.Socket, validateClose(socket, options, false));
  });
}

/** closeSocket() of a validated socket, driven by its linger. */
function lingerClose(socket: net.Socket, { signal }: JoinOptions): Promise<CloseResult> {
  {
    const inFlight = closeOf(socket);
    if (inFlight) return inFlight.join({ signal });
    const handle = tcpHandleOf(socket);
    if (socket.connecting) return startClose(socket, handle, 'abandon', {});
    const fd = descriptorOf(handle);
    const linger = readLinger(fd);
    let kind: CloseKind;
    if (signal?.aborted || (linger.enabled && linger.seconds === 0)) kind = 'reset';
    else if (!linger.enabled) kind = native.readableBytes(fd) > 0 || peerResetOn(fd) ? 'reset' : 'release';
    else kind = 'linger';
    // The wait is ours from here: with the kernel's n in force, any close
    // that comes first (a worker's teardown, say) would block for n s.
    if (kind === 'linger') writeLinger(fd, false, 0);
    return startClose(socket, handle, kind, { signal, timeoutMs: kind === 'linger' ? linger.seconds * 1000 : undefined });
  }
}

/**
 * RST now: linger {on, 0} and close. Unlike socket.resetAndDestroy() it
 * works on TLS sockets and while an end() is still pending. A close under
 * way ends with this RST.
 */
export function abortiveClose(socket: net.Socket | http2.Http2Session): Promise<CloseResult> {
  return settle(() => {
    const h2 = http2Of(socket);
    if (h2) {
      // Stryker disable next-line BooleanLiteral: no options: validateOptions() returns before it looks at withTimeout, and the result is unused here
      validateH2(h2, undefined, false);
      return resetHttp2(h2);
    }
    const plain = socket as net.Socket;
    // Stryker disable next-line BooleanLiteral: no options: validateOptions() returns before it looks at withTimeout, and the result is unused here
    validateClose(plain, undefined, false);
    const inFlight = closeOf(plain);
    if (inFlight) return inFlight.resetNow();
    const handle = tcpHandleOf(plain);
    return startClose(plain, handle, plain.connecting ? 'abandon' : 'reset', {});
  });
}

/**
 * The shutdown sequence Microsoft documents (nginx's lingering close): flush,
 * shutdown(write), keep receiving until the peer's FIN (data still reaches
 * 'data' listeners while they take it, or is drained), close once every
 * byte and the FIN are acknowledged. After `timeout` ms: RST. A close
 * already under way is joined: its result is shared, and `timeout` and
 * `signal` can only make it end sooner.
 */
export function gracefulShutdown(
  socket: net.Socket | http2.Http2Session, options?: GracefulShutdownOptions,
): Promise<CloseResult> {
  return settle(() => {
    const h2 = http2Of(socket);
    if (h2) return closeHttp2(h2, validateH2(h2, options, true), shutdownSequence);
    const { signal, timeout } = validateClose(socket, options, true);
    return shutdownSequence(socket as net.Socket, { signal, timeoutMs: timeout });
  });
}

/**
 * The shutdown sequence with a lingering close's read limits (nginx's
 * lingering_timeout, a byte budget): for socket-linger/http. Arguments are
 * the caller's to validate; throws like the public functions do.
 */
export function shutdownSequence(socket: net.Socket, join: JoinOptions, limits?: ReadLimits): Promise<CloseResult> {
  const inFlight = closeOf(socket);
  if (inFlight) return inFlight.join(join);
  const handle = tcpHandleOf(socket);
  if (socket.connecting) return startClose(socket, handle, 'abandon', {});
  const fd = descriptorOf(handle);
  if (join.signal?.aborted) return startClose(socket, handle, 'reset', {});
  // The sequence closes gracefully, whoever closes in the end (Node's
  // auto-destroy or us): no linger 0 (RST), no linger n (a blocking close).
  writeLinger(fd, false, 0);
  return startClose(socket, handle, 'sequence', join, limits);
}

// ---------------------------------------------------------------------------

/**
 * Everything checked before any effect: the socket (a stream Node lets us
 * end: an HTTP/2 session's socket refuses), connected or connecting (a
 * socket never connected has nothing to close: ENOTCONN, as shutdown()
 * says), and the options.
 */
function validateClose(
  socket: unknown, options: unknown, withTimeout: boolean,
): { signal?: AbortSignal; timeout: number } {
  validateSocket(socket);
  const validated = validateOptions(options, withTimeout);
  validateStreamControl(socket);
  if (connectionPhase(socket) === 'unconnected') throw systemError(errnoOf('ENOTCONN'), 'shutdown');
  return validated;
}

/** The parts of an HTTP/2 session or of its socket proxy; a destroyed session: ERR_SOCKET_CLOSED. */
function http2Of(value: unknown): Http2Parts | null {
  const parts = http2PartsOf(value);
  if (parts === null && isHttp2Session(value)) throw socketClosed();
  return parts;
}

/**
 * An HTTP/2 session (or its socket proxy): its real socket must be a
 * connected TCP socket; the options as for a socket.
 */
function validateH2(h2: Http2Parts, options: unknown, withTimeout: boolean): JoinOptions {
  const { signal, timeout } = validateOptions(options, withTimeout);
  if (connectionPhase(h2.socket) === 'closed' || h2.session.destroyed) throw socketClosed();
  tcpHandleOf(h2.socket);
  return { signal, timeoutMs: withTimeout ? timeout : undefined };
}

function validateOptions(options: unknown, withTimeout: boolean): { signal?: AbortSignal; timeout: number } {
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

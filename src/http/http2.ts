// HTTP/2 at the connection level: closing an Http2Session (or its
// `session.socket` proxy) the way the close functions close a socket.
// - abortive: RST of the TCP connection (linger {on, 0} + close of the real
//   socket); Node then destroys the session (its socket closed).
// - graceful / closeSocket: GOAWAY (session.close()), the open streams end,
//   and when Node's http2 core ends the socket (finishSessionClose calls
//   socket.end() once nghttp2 has written everything) the socket-level close
//   takes over from that very call: the shutdown sequence (graceful) or the
//   socket's linger (closeSocket). Its CloseResult is the session's.
// One close per session, as per socket: later calls join it.
import type * as net from 'node:net';
import { socketClosed } from '../errors';
import { tcpHandleOf, type Http2Parts } from '../handle';
import { closeOf, elapsedSince, startClose, type CloseResult, type JoinOptions } from '../socket-close';

/** Runs the socket-level close once the session hands its socket over. */
export type SocketCloser = (socket: net.Socket, join: JoinOptions) => Promise<CloseResult>;

class SessionClose {
  private readonly start = performance.now();
  private deadline = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly signals: AbortSignal[] = [];
  private readonly callers: ((result: CloseResult) => void)[] = [];
  /** The socket-level close, once it began. */
  private socketClose: Promise<CloseResult> | undefined;
  private result: CloseResult | undefined;

  constructor(private readonly parts: Http2Parts, private readonly closer: SocketCloser) {
    const { session, socket } = parts;
    sessionCloses.set(socket, this);
    // Node's http2 core ends the socket when the session is done with it
    // (or when the peer's FIN came first): from that call on, the socket is ours.
    const own = Object.prototype.hasOwnProperty.call(socket, 'end') ? socket.end : undefined;
    const end = socket.end;
    const hooked = ((...args: unknown[]) => {
      if (own === undefined) delete (socket as { end?: unknown }).end;
      else socket.end = own;
      const returned = (end as (...a: unknown[]) => net.Socket).apply(socket, args);
      this.begin();
      return returned;
    }) as net.Socket['end'];
    socket.end = hooked;
    // A socket that closes before it is handed over (the peer reset it, the
    // app destroyed the session): nothing of ours ran on it.
    socket.once('close', () => {
      if (this.socketClose !== undefined) return;
      this.settle({ type: 'abortive', waited: true, timedOut: false, delivered: false, elapsedMs: 0 });
    });
    session.close(); // GOAWAY; the session ends the socket when its streams have ended
  }

  join({ signal, timeoutMs }: JoinOptions): Promise<CloseResult> {
    if (this.socketClose !== undefined) return closeOf(this.parts.socket)?.join({ signal, timeoutMs }) ?? this.socketClose;
    if (this.result !== undefined) return Promise.resolve(this.result);
    return new Promise((resolve) => {
      this.callers.push(resolve);
      if (timeoutMs !== undefined && performance.now() + timeoutMs < this.deadline) {
        this.deadline = performance.now() + timeoutMs;
        this.arm();
      }
      if (signal === undefined) return;
      if (signal.aborted) this.reset(false);
      else {
        this.signals.push(signal);
        // Stryker disable next-line ObjectLiteral,BooleanLiteral: equivalent, a signal aborts once, and settle() removes the listener
        signal.addEventListener('abort', this.onAbort, { once: true });
      }
    });
  }

  /** abortiveClose() during the GOAWAY phase: RST now. */
  resetNow(): Promise<CloseResult> {
    if (this.socketClose !== undefined) return closeOf(this.parts.socket)?.resetNow() ?? this.socketClose;
    const joined = this.join({});
    this.reset(false, false);
    return joined;
  }

  private readonly onAbort = (): void => this.reset(false);

  private arm(): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a timer left behind is for a later deadline, and reset() ignores it once the close has moved on
    if (this.timer !== undefined) clearTimeout(this.timer);
    // Every timeout is validated <= 2 ** 31 - 1 ms (setTimeout's limit): one timer is enough.
    this.timer = setTimeout(() => this.reset(true), Math.max(0, this.deadline - performance.now()));
    this.timer.unref();
  }

  /** The deadline or an abort before the socket was handed over: RST of the connection. */
  private reset(timedOut: boolean, waited = true): void {
    // Stryker disable next-line LogicalOperator: equivalent (&&), after the handover only an abort reaches here (the timer is cleared), and the closer has that signal: it resets the same connection with the same result; after settle() no timer or listener is left
    if (this.socketClose !== undefined || this.result !== undefined) return;
    const { socket } = this.parts;
    let reset: Promise<CloseResult>;
    try {
      const inFlight = closeOf(socket);
      reset = inFlight ? inFlight.resetNow() : startClose(socket, tcpHandleOf(socket), 'reset', {});
      destroyAfterReset(this.parts.session);
    } catch (error) {
      reset = Promise.reject(error);
    }
    this.socketClose = reset;
    void reset.then(
      (result) => this.settle({ ...result, waited, timedOut }),
      () => this.settle({ type: 'abortive', waited, timedOut, delivered: false, elapsedMs: 0 }),
    );
  }

  /** Node ends the socket: the socket-level close begins, with what is left of the deadline. */
  private begin(): void {
    // Stryker disable next-line LogicalOperator: equivalent (&&), the hook runs once and Node ends only a live socket: after a reset or the socket's close it never calls end()
    if (this.socketClose !== undefined || this.result !== undefined) return;
    const signal = this.signals.length === 0 ? undefined
      : this.signals.length === 1 ? this.signals[0] : AbortSignal.any(this.signals);
    const timeoutMs = this.deadline === Infinity ? undefined : Math.max(0, this.deadline - performance.now());
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a timer left behind fires reset(), which returns once the socket-level close began
    if (this.timer !== undefined) clearTimeout(this.timer);
    let closed: Promise<CloseResult>;
    try {
      closed = this.closer(this.parts.socket, { signal, timeoutMs });
    } catch (error) {
      closed = Promise.reject(error);
    }
    this.socketClose = closed;
    void closed.then(
      (result) => this.settle(result),
      () => this.settle({ type: 'abortive', waited: true, timedOut: false, delivered: false, elapsedMs: 0 }),
    );
  }

  private settle(result: CloseResult): void {
    if (this.result !== undefined) return;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a timer left behind fires reset(), which returns once settled
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const signal of this.signals) signal.removeEventListener('abort', this.onAbort);
    sessionCloses.delete(this.parts.socket);
    this.result = { ...result, elapsedMs: elapsedSince(this.start) };
    for (const resolve of this.callers.splice(0)) resolve(this.result);
  }
}

const sessionCloses = new WeakMap<net.Socket, SessionClose>();

/**
 * gracefulShutdown / closeSocket of a session: GOAWAY, streams end, then
 * `closer` on the real socket. Joins a close under way (of the session or
 * of its socket).
 */
export function closeHttp2(parts: Http2Parts, join: JoinOptions, closer: SocketCloser): Promise<CloseResult> {
  const { socket, session } = parts;
  const underWay = sessionCloses.get(socket);
  if (underWay) return underWay.join(join);
  const socketClose = closeOf(socket);
  if (socketClose) return socketClose.join(join);
  if (socket.destroyed || session.destroyed) throw socketClosed();
  const close = new SessionClose(parts, closer);
  return close.join(join);
}

/** abortiveClose of a session: RST of its TCP connection now; Node destroys the session. */
export function resetHttp2(parts: Http2Parts): Promise<CloseResult> {
  const { socket, session } = parts;
  const underWay = sessionCloses.get(socket);
  if (underWay) return underWay.resetNow();
  const socketClose = closeOf(socket);
  if (socketClose) return socketClose.resetNow();
  if (socket.destroyed || session.destroyed) throw socketClosed();
  const reset = startClose(socket, tcpHandleOf(socket), 'reset', {});
  destroyAfterReset(session);
  return reset;
}

/** The socket is reset and closed: the session goes now (it would at the socket's 'close'), sending nothing. */
function destroyAfterReset(session: Http2Parts['session']): void {
  if (!session.destroyed) session.destroy();
}

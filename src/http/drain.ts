// drainServer(server): stop an HTTP/1.1 or HTTP/2 server without losing a
// response, and say what each connection got.
//
// Finding the connections of a running server (none needs a tracker
// installed beforehand):
// - http/https: Node's own ConnectionsList, `server[Symbol(http.server.connections)]`
//   (the list closeIdleConnections() uses; `.all()`, `.idle()` give parsers
//   whose `.socket` is the connection), created at 'listening';
// - http2 (Node 20 keeps no list of sessions): the server's live sockets,
//   from `process._getActiveHandles()` (accepted sockets carry `.server`),
//   each socket's session found by handle.ts. Sockets unref()'d are not
//   listed there, and on a TLS server only the TCP sockets under the
//   TLSSockets are: an Http2SecureServer's sessions are found only through
//   'session' events after the drain began (a documented limit on Node 20);
// - both: sockets seen by 'connection'/'request'/'session' during the drain.
// Stopping: net.Server.prototype.close() stops accepting. Not http.Server's
// close(): since Node 19 it destroys idle keep-alive sockets (RST when a
// request is racing in).
import { setMaxListeners } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as http2 from 'node:http2';
import { shutdownSequence } from '../close';
import { invalidArgType, socketClosed } from '../errors';
import { http2SessionOnSocket, http2PartsOf, tcpHandleOf, type Http2SessionLike } from '../handle';
import { filterReads } from '../reading';
import { runtime, type HttpConnections } from '../runtime';
import { refuseUnreachableHttp } from './lingering';
import { closeOf, elapsedSince, startClose, type CloseResult } from '../socket-close';
import { validateTimeout } from '../validate';
import { closeHttp2 } from './http2';

export interface DrainOptions {
  /** ms before what remains is reset, default 30 000. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface DrainResult {
  /** Connections open when the drain began. */
  connections: number;
  graceful: number;
  abortive: number;
  timedOut: number;
  /** Connections whose every byte was acknowledged (where known). */
  delivered: number;
  elapsedMs: number;
  results: CloseResult[];
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

type DrainableServer = http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer;

interface HttpSocket extends net.Socket {
  _httpMessage?: http.ServerResponse | null;
  parser?: unknown;
  server?: net.Server;
  /** A TLSSocket's TCP socket. */
  _parent?: net.Socket | null;
}

/**
 * Stops `server` and closes every connection it has:
 * - HTTP/1.1 idle keep-alive connections: the shutdown sequence now (FIN,
 *   read and discard until the client's FIN, close): a request racing in is
 *   read and discarded (never dispatched, never reset) and the client sees
 *   a clean FIN;
 * - in-flight requests finish; a response whose headers are not sent yet
 *   gets `Connection: close`, and its connection ends through the shutdown
 *   sequence when it finishes (node:http's destroySoon() is taken over); a
 *   request that arrives on a busy connection during the drain is answered
 *   the same way;
 * - HTTP/2 sessions: GOAWAY, their streams end, then the shutdown sequence;
 * - at `timeout` or on abort: what remains is reset (`timedOut` counts the
 *   resets at the deadline).
 * Resolves when every connection has closed.
 */
export function drainServer(server: DrainableServer, options?: DrainOptions): Promise<DrainResult> {
  try {
    return new Drain(server as net.Server, validate(server, options)).run();
  } catch (error) {
    return Promise.reject(error);
  }
}

function validate(server: unknown, options: unknown): { timeout: number; signal?: AbortSignal } {
  if (server instanceof http.Server || server instanceof https.Server) refuseUnreachableHttp('drainServer');
  if (!(server instanceof net.Server))
    throw invalidArgType('server', 'an instance of http.Server, https.Server, http2.Http2Server or http2.Http2SecureServer', server);
  if (options === undefined) return { timeout: DEFAULT_DRAIN_TIMEOUT_MS };
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
  const { timeout, signal } = options as DrainOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
  if (timeout !== undefined) validateTimeout(timeout, 'options.timeout');
  return { timeout: timeout ?? DEFAULT_DRAIN_TIMEOUT_MS, signal };
}

const noop = () => {};

class Drain {
  private readonly start = performance.now();
  private readonly deadline: number;
  private readonly signal: AbortSignal | undefined;
  private readonly ended: AbortController = new AbortController();
  /** Every connection of the drain and its result. */
  private readonly closes = new Map<net.Socket, Promise<CloseResult>>();
  /** Connections not handed to a close yet: reset at the deadline. */
  private readonly waiting = new Map<net.Socket, (result: CloseResult) => void>();
  private timer: NodeJS.Timeout | undefined;
  /** An https server's TCP sockets found with their TLS handshake still running. */
  private readonly handshaking = new Set<net.Socket>();

  constructor(private readonly server: net.Server, { timeout, signal }: { timeout: number; signal?: AbortSignal }) {
    this.deadline = this.start + timeout;
    this.signal = signal === undefined ? this.ended.signal : AbortSignal.any([signal, this.ended.signal]);
    // One listener per connection's close on this signal: thousands are expected.
    setMaxListeners(0, this.signal);
  }

  async run(): Promise<DrainResult> {
    const { server } = this;
    const sockets = this.existingConnections();
    const connections = sockets.length;
    const closed = new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      // Stryker disable next-line ArrowFunction: closed is only raced against a setImmediate below; resolving it only ends the drain a turn sooner
      else net.Server.prototype.close.call(server, () => resolve());
    });
    server.on('request', this.onRequest);
    server.on('session', this.onSession);
    server.on('connection', this.onConnection);
    server.on('secureConnection', this.onConnection);
    this.timer = setTimeout(() => this.expire(true), Math.max(0, this.deadline - performance.now()));
    this.timer.unref();
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: an AbortSignal dispatches 'abort' at most once; once only drops the listener sooner
    this.signal!.addEventListener('abort', this.onAbort, { once: true });
    const idle = this.idleHttpSockets();
    for (const socket of sockets) this.drain(socket, idle.has(socket));
    let results: CloseResult[] = [];
    try {
      // Connections may join while we wait (a late 'connection' or request).
      let seen = 0;
      while (seen < this.closes.size) {
        seen = this.closes.size;
        results = await Promise.all(this.closes.values());
      }
      await Promise.race([closed, new Promise<void>((resolve) => setImmediate(resolve))]);
    } finally {
      clearTimeout(this.timer);
      server.off('request', this.onRequest);
      server.off('session', this.onSession);
      server.off('connection', this.onConnection);
      server.off('secureConnection', this.onConnection);
      this.ended.abort();
    }
    const count = (test: (r: CloseResult) => boolean) => results.filter(test).length;
    return {
      connections,
      graceful: count((r) => r.type === 'graceful'),
      abortive: count((r) => r.type === 'abortive'),
      timedOut: count((r) => r.timedOut),
      delivered: count((r) => r.delivered === true),
      elapsedMs: elapsedSince(this.start),
      results,
    };
  }

  // ------------------------------------------------------------- finding them

  /** node:http's list of the server's connections (closeIdleConnections()'s), as the runtime keeps it. */
  private connections(): HttpConnections | undefined {
    const key = Object.getOwnPropertySymbols(this.server).find((s) => s.description === 'http.server.connections');
    return key === undefined ? undefined : runtime.httpConnections((this.server as unknown as Record<symbol, unknown>)[key]);
  }

  private existingConnections(): net.Socket[] {
    const found = new Set<net.Socket>();
    for (const socket of this.connections()?.all() ?? []) found.add(socket);
    // Sockets without a parser (an http2 server's, an upgraded one): the
    // process's live handles (undocumented, in every Node version since 0.x).
    const active = (process as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
    // A TLS server's live handles are the TCP sockets under its TLSSockets
    // (`tlsSocket._parent`): those are not connections of their own.
    const tlsServer = this.server instanceof tls.Server;
    const parents = new Set([...found].map((s) => (s as HttpSocket)._parent));
    for (const handle of active)
      if (handle instanceof net.Socket && (handle as HttpSocket).server === this.server) {
        if (!tlsServer || handle instanceof tls.TLSSocket) found.add(handle);
        // An https server's TCP socket whose TLSSocket is not in node:http's
        // list: its handshake is still running (or it was upgraded); its
        // 'secureConnection' (or its close, or the deadline) settles it.
        else if (this.connections() !== undefined && !parents.has(handle)) this.handshaking.add(handle);
      }
    return [...found, ...this.handshaking].filter((s) => !s.destroyed);
  }

  /** Node's own view: a parser between requests (closeIdleConnections()'s test). */
  private idleHttpSockets(): Set<net.Socket> {
    const idle = new Set<net.Socket>();
    for (const socket of this.connections()?.idle() ?? [])
      if (!(socket as HttpSocket)._httpMessage) idle.add(socket);
    return idle;
  }

  private readonly onConnection = (socket: net.Socket): void => {
    const raw = (socket as HttpSocket)._parent;
    const resolveRaw = raw ? this.waiting.get(raw) : undefined;
    if (!this.closes.has(socket)) this.drain(socket, false);
    if (raw && resolveRaw !== undefined && this.handshaking.has(raw)) {
      // Its handshake done: the TLSSocket's close is the connection's.
      this.waiting.delete(raw);
      this.closes.delete(raw);
      void (this.closes.get(socket) ?? Promise.resolve(closedAlready())).then(resolveRaw);
    }
  };

  private readonly onSession = (session: Http2SessionLike): void => {
    const parts = http2PartsOf(session);
    if (parts && !this.closes.has(parts.socket)) this.drain(parts.socket, false);
  };

  /** A request during the drain (racing in on a busy connection, or one still being read): answered with Connection: close. */
  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const socket = req.socket as HttpSocket | undefined;
    if (socket === undefined || http2PartsOf(socket) !== null || (req.httpVersionMajor ?? 1) >= 2) return;
    if (!this.closes.has(socket)) this.drain(socket, false);
    else this.closeAfter(socket, res);
  };

  // ------------------------------------------------------------- closing them

  private drain(socket: net.Socket, idle: boolean): void {
    if (socket.destroyed) return;
    const session = http2SessionOnSocket(socket);
    if (session !== null) {
      this.closes.set(socket, this.closeSession(socket, session));
      return;
    }
    const httpSocket = socket as HttpSocket;
    const result = new Promise<CloseResult>((resolve) => this.waiting.set(socket, resolve));
    if (this.handshaking.has(socket)) {
      // Waits for its 'secureConnection', its close or the deadline.
      this.closes.set(socket, result);
      socket.once('close', (hadError: boolean) => this.settleWaiting(socket, {
        type: closeType(socket, hadError), waited: false, timedOut: false, delivered: null, elapsedMs: 0,
      }));
      return;
    }
    this.closes.set(socket, result);
    // Closed by someone else before the drain reached it (the client hung up, the app destroyed it).
    const since = performance.now();
    socket.once('close', (hadError: boolean) => this.settleWaiting(socket, {
      type: closeType(socket, hadError), waited: false, timedOut: false, delivered: null,
      elapsedMs: elapsedSince(since),
    }));
    // node:http ends a `Connection: close` exchange with destroySoon()
    // (end, then destroy at 'finish', before the client's FIN): the shutdown
    // sequence does it instead.
    httpSocket.destroySoon = () => this.sequence(socket);
    const response = httpSocket._httpMessage;
    // A connection with no request started (idle keep-alive, or nothing sent yet).
    if (idle || (!response && socket.bytesRead === 0 && httpSocket.parser !== undefined)) this.sequence(socket);
    // not HTTP: an upgraded connection (node:http set its parser to null), a bare socket
    else if (!response && httpSocket.parser == null) this.sequence(socket);
    else if (response) this.closeAfter(socket, response);
    // else: a request is being read (headers or body): its 'request' or the deadline.
  }

  /** The response ends the connection: `Connection: close` if still possible, then the sequence. */
  private closeAfter(socket: net.Socket, res: http.ServerResponse): void {
    if (!res.headersSent) {
      res.shouldKeepAlive = false;
      res.setHeader('Connection', 'close');
    }
    // Headers sent with keep-alive: the connection goes idle after this response, and ends then.
    res.once('finish', () => setImmediate(() => {
      if (!(socket as HttpSocket)._httpMessage) this.sequence(socket);
    }));
  }

  /**
   * The shutdown sequence, the HTTP parser bypassed: what the client still
   * sends (a request racing in, a pipelined one) is read and discarded, so
   * nothing is dispatched to a connection that has sent its FIN, and nothing
   * is left unread to turn the close into an RST. The client's FIN passes.
   */
  private sequence(socket: net.Socket): void {
    const resolve = this.waiting.get(socket);
    if (resolve === undefined || socket.destroyed) return;
    this.waiting.delete(socket);
    socket.setTimeout(0); // keepAliveTimeout would destroy() it mid-sequence
    // node:http's parser reads straight from the handle (parser.consume());
    // adding a 'data' listener makes node:http unconsume it (its listener
    // wrapper), so reads pass through the read filters.
    socket.on('data', noop);
    filterReads(socket, (bytes) => bytes === null);
    let closed: Promise<CloseResult>;
    try {
      closed = shutdownSequence(socket, { timeoutMs: this.remaining(), signal: this.signal });
    } catch (error) {
      closed = Promise.reject(error);
    }
    closed.then(resolve, () => resolve(closedAlready()));
  }

  private closeSession(socket: net.Socket, session: Http2SessionLike): Promise<CloseResult> {
    try {
      const parts = http2PartsOf(session);
      if (parts === null) throw socketClosed();
      return closeHttp2(parts, { timeoutMs: this.remaining(), signal: this.signal }, shutdownSequence)
        .catch(() => closedAlready());
    } catch {
      return Promise.resolve(closedAlready());
    }
  }

  private settleWaiting(socket: net.Socket, result: CloseResult): void {
    const resolve = this.waiting.get(socket);
    if (resolve === undefined) return;
    this.waiting.delete(socket);
    resolve(result);
  }

  private remaining(): number {
    return Math.max(0, this.deadline - performance.now());
  }

  private readonly onAbort = (): void => {
    if (!this.ended.signal.aborted) this.expire(false);
  };

  /** The deadline or an abort: connections still waiting for their request or response are reset. */
  private expire(timedOut: boolean): void {
    for (const [socket, resolve] of [...this.waiting]) {
      this.waiting.delete(socket);
      let reset: Promise<CloseResult>;
      try {
        reset = closeOf(socket)?.resetNow() ?? startClose(socket, tcpHandleOf(socket), 'reset', {});
      } catch {
        reset = Promise.resolve(closedAlready());
      }
      reset.then((result) => resolve({ ...result, timedOut }), () => resolve(closedAlready()));
    }
  }
}

/**
 * How a connection closed by someone else ended. `hadError` alone is not it:
 * node:http answers a client's FIN in the middle of its headers with a 400
 * and destroy(parse error): the client's FIN was read, nothing is left
 * unread, so the kernel sends a FIN. A system error (ECONNRESET, EPIPE) is
 * the connection failing.
 */
function closeType(socket: net.Socket, hadError: boolean): CloseResult['type'] {
  if (!hadError) return 'graceful';
  const error = socket.errored as NodeJS.ErrnoException | null;
  return socket.readableEnded && error?.errno === undefined ? 'graceful' : 'abortive';
}

/** A connection that closed before its close could start: nothing known of it. */
function closedAlready(): CloseResult {
  return { type: 'abortive', waited: false, timedOut: false, delivered: false, elapsedMs: 0 };
}

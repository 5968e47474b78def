// lingeringClose(server): nginx's lingering close for node:http servers.
//
// node:http closes a connection in two places while the client may still be
// sending: after a response marked last (`Connection: close` from either side,
// the keep-alive limit, HTTP/1.0) it calls socket.destroySoon(); on a parse
// error without a 'clientError' listener it writes a 400/408/413/431 and
// calls socket.destroy(). Either way unread request bytes make the kernel
// answer with an RST, and the client loses the response it has not read yet.
//
// Per connection, destroySoon() is taken over, and a 'clientError' listener
// does Node's default answer; both then detach the HTTP parser (which reads
// the socket in C++) and run the shutdown sequence with read limits: the
// response is flushed, then our FIN; what the client still sends is read and
// discarded; the socket closes when the client's FIN comes (and everything
// is acknowledged), or at lingeringTime (RST), or after lingeringTimeout
// without data, or past maxBytes. Nothing else changes: a keep-alive
// connection is never touched, and the request path costs nothing.
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type * as net from 'node:net';
import { shutdownSequence } from '../close';
import { invalidArgType, outOfRange, unsupportedOnRuntime } from '../errors';
import { runtime } from '../runtime';
import { validateTimeout } from '../validate';

export interface LingeringCloseOptions {
  /** ms in all, default 30 000 (nginx lingering_time). */
  lingeringTime?: number;
  /** ms without data from the client, default 5 000 (nginx lingering_timeout). */
  lingeringTimeout?: number;
  /** Bytes read and discarded before giving up (a DoS bound), default 64 MiB. */
  maxBytes?: number;
}

export const DEFAULT_LINGERING_TIME_MS = 30_000;
export const DEFAULT_LINGERING_TIMEOUT_MS = 5_000;
export const DEFAULT_LINGERING_MAX_BYTES = 64 * 1024 * 1024;

interface Limits {
  lingeringTime: number;
  lingeringTimeout: number;
  maxBytes: number;
}

/** What node:http keeps on its sockets (lib/_http_server.js, Node 20 to 24). */
interface HttpParser {
  _consumed?: boolean;
  unconsume?: () => void;
  incoming?: unknown;
}
interface HttpSocket extends net.Socket {
  parser?: HttpParser | null;
  _httpMessage?: { _headerSent?: boolean } | null;
  _handle?: { _consumed?: boolean } | null;
}

const kInstalled = Symbol('socket-linger.lingeringClose');
// Per socket, kept off the socket itself: a new property on every socket
// would change the shape node:http's hot paths see.
const limitsOf = new WeakMap<net.Socket, Limits>();
const lingering = new WeakSet<net.Socket>();

type Server = http.Server | https.Server;

/**
 * Installs the lingering close on `server` for the connections it accepts
 * from now on; returns a function that uninstalls it (connections already
 * lingering finish their close). Installing twice on one server throws
 * ERR_INVALID_STATE: uninstall first to change the options.
 */
export function lingeringClose(server: Server, options?: LingeringCloseOptions): () => void {
  if (!((server as unknown) instanceof http.Server) && !((server as unknown) instanceof https.Server))
    throw invalidArgType('server', 'an instance of http.Server or https.Server', server);
  const limits = validateLimits(options);
  refuseUnreachableHttp('lingeringClose');
  const target = server as Server & { [kInstalled]?: true };
  if (target[kInstalled]) {
    const error = new Error('lingeringClose() is installed on this server already: uninstall it first');
    throw Object.assign(error, { code: 'ERR_INVALID_STATE' });
  }
  target[kInstalled] = true;

  const onConnection = (socket: net.Socket): void => takeOver(socket as HttpSocket, limits);
  const onClientError = (error: Error & { code?: string }, socket: net.Socket): void =>
    answerClientError(server, error, socket as HttpSocket, limits);
  // An https server hands node:http the TLS socket on 'secureConnection'.
  const event = server instanceof tls.Server ? 'secureConnection' : 'connection';
  server.on(event, onConnection);
  server.on('clientError', onClientError);
  // First, so that a response ended in the user's handler is seen.
  server.prependListener('request', onRequest);
  let installed = true;
  return () => {
    if (!installed) return;
    installed = false;
    delete target[kInstalled];
    server.removeListener(event, onConnection);
    server.removeListener('clientError', onClientError);
    server.removeListener('request', onRequest);
  };
}

function validateLimits(options: unknown): Limits {
  const limits: Limits = {
    lingeringTime: DEFAULT_LINGERING_TIME_MS,
    lingeringTimeout: DEFAULT_LINGERING_TIMEOUT_MS,
    maxBytes: DEFAULT_LINGERING_MAX_BYTES,
  };
  if (options === undefined) return limits;
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
  const { lingeringTime, lingeringTimeout, maxBytes } = options as LingeringCloseOptions;
  if (lingeringTime !== undefined) {
    validateTimeout(lingeringTime, 'options.lingeringTime');
    limits.lingeringTime = lingeringTime;
  }
  if (lingeringTimeout !== undefined) {
    validateTimeout(lingeringTimeout, 'options.lingeringTimeout');
    limits.lingeringTimeout = lingeringTimeout;
  }
  if (maxBytes !== undefined) {
    if (typeof maxBytes !== 'number') throw invalidArgType('options.maxBytes', 'of type number', maxBytes);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw outOfRange('options.maxBytes', `an integer >= 0 && <= ${Number.MAX_SAFE_INTEGER}`, maxBytes);
    limits.maxBytes = maxBytes;
  }
  return limits;
}

/**
 * node:http ends a connection whose last response is done with destroySoon()
 * (resOnFinish): that becomes the lingering close, unless the client has
 * finished sending already (its FIN is in: nothing left to wait for).
 */
function takeOver(socket: HttpSocket, limits: Limits): void {
  limitsOf.set(socket, limits);
  const destroySoon = socket.destroySoon;
  socket.destroySoon = function lingeringDestroySoon(this: HttpSocket) {
    if (lingering.has(this)) return; // the close is under way
    if (!startLingering(this, limits)) destroySoon.call(this);
  };
}

/**
 * A last response (`Connection: close`) ended while its request body is still
 * coming: the close starts now, not when the response is flushed. A client
 * that sends its whole body before it reads (Python's http.client) would
 * otherwise never read a response larger than the socket buffers: node:http
 * stops reading the unread body, the client stops sending, and both wait.
 */
function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  // Only a request with a body can leave one unread (a GET costs nothing more).
  const { headers } = req;
  if (headers['transfer-encoding'] === undefined && (headers['content-length'] ?? '0') === '0') return;
  res.on('prefinish', onPrefinish);
}

function onPrefinish(this: http.ServerResponse & { _last?: boolean }): void {
  if (!this._last || this.req.complete) return;
  const socket = this.socket as HttpSocket | null;
  const limits = socket ? limitsOf.get(socket) : undefined;
  if (!socket || !limits || lingering.has(socket)) return;
  startLingering(socket, limits);
}

// The answers Node writes when nobody listens for 'clientError'.
const statusLines: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * A 'clientError' (a parse error, a request timeout, or a socket error):
 * with no listener of the user's, Node writes an error response and destroys
 * the socket. Our listener does the same, but lingers instead of destroying
 * when the client may still be sending. A user's listener decides alone.
 */
function answerClientError(
  server: Server, error: Error & { code?: string }, socket: HttpSocket, limits: Limits,
): void {
  if (server.listenerCount('clientError') > 1) return;
  if (lingering.has(socket)) return; // a late parse error of a connection closing already
  // Stryker disable next-line StringLiteral: any stand-in for a missing code neither starts with HPE_ nor is the timeout's, so parseError is false as with ''
  const code = error.code ?? '';
  const parseError = code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (!parseError || socket.destroyed || !socket.writable) {
    socket.destroy(error);
    return;
  }
  if (!socket._httpMessage || !socket._httpMessage._headerSent) {
    const status = statusLines[code] ?? '400 Bad Request';
    socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
  }
  if (!startLingering(socket, limits)) socket.destroy(error);
}

/**
 * Detaches node:http from the socket's reads and runs the shutdown sequence
 * with the lingering limits. False if there is nothing to linger for (the
 * client's FIN is in) or the socket cannot be closed this way.
 */
function startLingering(socket: HttpSocket, limits: Limits): boolean {
  const readable = (socket as { _readableState?: { ended?: boolean } })._readableState;
  if (readable?.ended || socket.destroyed) return false;
  lingering.add(socket);
  detachParser(socket);
  // node:http's socket timeout (server.timeout, keepAliveTimeout) would
  // destroy the socket: the lingering close has its own bounds.
  socket.setTimeout(0);
  let closing;
  try {
    closing = shutdownSequence(socket, { timeoutMs: limits.lingeringTime }, {
      idleTimeoutMs: limits.lingeringTimeout, maxBytes: limits.maxBytes,
    });
  } catch {
    lingering.delete(socket);
    return false;
  }
  closing.then(() => lingering.delete(socket), () => lingering.delete(socket));
  return true;
}

/**
 * The parser consumes the socket in C++ (no JS read sees a byte) and feeds
 * the request through its 'data' / 'end' listeners otherwise; its 'pause'
 * listener stops libuv reading. All of that is handed back: what the client
 * sends now is the close's to discard. The parser itself stays on the socket,
 * so node:http's 'close' listener frees it as usual.
 */
function detachParser(socket: HttpSocket): void {
  const parser = socket.parser;
  if (parser?._consumed) {
    parser.unconsume?.();
    // Stryker disable next-line BooleanLiteral: true only makes node:http's freeParser() call parser.unconsume() once more, which returns at once for a parser that consumes no stream (node_http_parser.cc, Unconsume: stream_ == nullptr)
    parser._consumed = false;
  }
  removeNamed(socket, 'data', 'bound socketOnData');
  removeNamed(socket, 'end', 'bound socketOnEnd');
  removeNamed(socket, 'pause', 'onSocketPause');
  removeNamed(socket, 'resume', 'onSocketResume');
  // A stream paused by node:http (a full response queue, an unread body)
  // still reads: the sequence discards what nobody takes.
  socket.resume();
}

function removeNamed(socket: net.Socket, event: string, name: string): void {
  for (const listener of socket.rawListeners(event))
    if ((listener as { name?: string }).name === name) socket.removeListener(event, listener as () => void);
}

/** Where node:http does not run on node:net sockets (Bun), nothing here can reach its connections. */
export function refuseUnreachableHttp(what: string): void {
  if (runtime.httpServersUnreachable !== null) throw unsupportedOnRuntime(what, runtime.name, runtime.httpServersUnreachable);
}

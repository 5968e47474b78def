// From a socket or server to the OS socket behind it. Runtimes expose the
// descriptor only on their private native handle (`_handle`; how, src/runtime.ts
// knows), so every operation reads it afresh from the live handle: a
// destroyed socket has no handle and can never reach a reused fd number.
import * as net from 'node:net';
import { descriptorUnavailable, errnoOf, invalidArgType, invalidHandleType, socketClosed, systemError } from './errors';
import { native } from './native';
import { runtime, type NativeHandle } from './runtime';

/** What a runtime keeps in `socket._handle` (Node: a TCP or Pipe wrap, or a TLSWrap). */
export interface InternalHandle extends NativeHandle {
  getsockname?(out: AddressInfo): number;
  getpeername?(out: AddressInfo): number;
}

interface AddressInfo { address?: string; port?: number; family?: string }

export type LingerTarget = net.Socket | net.Server;

interface WithHandle { _handle?: InternalHandle | null }

const SOCKET_TYPES = 'an instance of net.Socket or tls.TLSSocket';
const TARGET_TYPES = 'an instance of net.Socket, tls.TLSSocket or net.Server';

// `instanceof` alone also admits Object.create(net.Socket.prototype): an
// object whose constructor never ran has none of the state Node relies on.
function isSocket(value: unknown): value is net.Socket {
  return value instanceof net.Socket && typeof (value as { _writableState?: unknown })._writableState === 'object';
}

function isServer(value: unknown): value is net.Server {
  return value instanceof net.Server && (value as { _handle?: unknown })._handle !== undefined;
}

export function validateSocket(value: unknown, name = 'socket'): asserts value is net.Socket {
  if (!isSocket(value)) throw invalidArgType(name, SOCKET_TYPES, value);
}

export function validateTarget(value: unknown, name = 'target'): asserts value is LingerTarget {
  if (!isSocket(value) && !isServer(value)) throw invalidArgType(name, TARGET_TYPES, value);
}

/**
 * Where a socket is in its life, for operations that need a connection:
 * - 'unconnected': connect() never called (`new net.Socket()`);
 * - 'connecting': connect() called, no 'connect' yet (the OS socket exists
 *   only from the tick after connect(), once any DNS lookup is done);
 * - 'connected': it has a handle (accepted, connected, or wrapping one);
 * - 'closed': destroyed. Node drops `_handle` only in destroy(), so a live
 *   socket without a handle has never connected.
 */
export type ConnectionPhase = 'unconnected' | 'connecting' | 'connected' | 'closed';

export function connectionPhase(socket: net.Socket): ConnectionPhase {
  if (socket.destroyed) return 'closed';
  if (socket.connecting) return 'connecting';
  return (socket as WithHandle)._handle ? 'connected' : 'unconnected';
}

/**
 * True while a socket has no OS socket to act on yet (not connected, DNS
 * lookup in progress) or a server has not listened yet: options wait for
 * 'connect' / 'listening', as Node's own setNoDelay() does.
 */
export function isPending(target: LingerTarget): boolean {
  if (target instanceof net.Server) return !target.listening && !wasListening(target);
  const phase = connectionPhase(target);
  return phase === 'unconnected' || phase === 'connecting';
}

/**
 * A closed server: Node nulls `_handle` on close() but keeps the
 * `_connectionKey` that setupListenHandle() set once listening succeeded
 * (a failed listen never sets it). So a server re-listening after close()
 * counts as closed until the new handle exists (a listen() that waits for
 * a host-name lookup, or a cluster worker's for the primary): Node keeps
 * nothing that tells the two apart.
 */
function wasListening(server: net.Server): boolean {
  return (server as { _connectionKey?: string })._connectionKey !== undefined;
}

/**
 * Throws what Node throws when this stream must not be driven from outside,
 * before any syscall, so that no operation half-runs: an http2 session's
 * `session.socket` is a Proxy that throws ERR_HTTP2_NO_SOCKET_MANIPULATION
 * on reading end, destroy, read... (lib/internal/http2/core.js). These are
 * the methods shutdown() calls.
 */
export function validateStreamControl(socket: net.Socket): void {
  for (const method of ['end', 'destroy', 'read'] as const)
    if (typeof socket[method] !== 'function') throw invalidArgType('socket', SOCKET_TYPES, socket);
}

/**
 * A cluster worker's listener under round-robin scheduling (SCHED_RR, the
 * default except on Windows): the primary owns the listening socket and
 * passes each accepted one over IPC; the worker's `_handle` is a plain
 * object with Node's `onconnection` (lib/internal/cluster/child.js rr()).
 * Returns it, or null when the server has a real handle (or none).
 */
export function roundRobinHandleOf(server: net.Server): RoundRobinHandle | null {
  const handle = (server as { _handle?: object | null })._handle;
  if (!handle || Object.getPrototypeOf(handle) !== Object.prototype) return null;
  // Only a TCP primary handle reports a sockname (a pipe's has none).
  if (typeof (handle as RoundRobinHandle).getsockname !== 'function') throw invalidHandleType('pipe');
  return handle as RoundRobinHandle;
}

export interface RoundRobinHandle {
  onconnection?: (err: number, client?: InternalHandle) => unknown;
  getsockname(out: AddressInfo): number;
  [key: symbol]: unknown;
}

/** The TCP handle of a socket or server; throws if closed or not TCP. */
export function tcpHandleOf(target: LingerTarget): InternalHandle {
  if (target instanceof net.Socket && target.destroyed) throw socketClosed();
  const own = (target as WithHandle)._handle;
  if (!own) throw socketClosed();
  // A TLS socket's handle wraps the TCP handle, unless it encrypts a
  // JavaScript stream (tls.connect({ socket: duplex })), which has no OS socket.
  const handle = runtime.socketHandle(own) as InternalHandle;
  switch (runtime.kindOf(handle)) {
    case 'tcp': return handle;
    case 'pipe': throw invalidHandleType('pipe');
    case 'unreachable': throw descriptorUnavailable(runtime.name);
    case 'other': throw invalidHandleType(String(handle.constructor?.name));
  }
}

/**
 * The OS socket behind a TCP handle, read now from the live handle, for use
 * within the current synchronous operation (on Deno it is a dup() closed
 * after it). On Windows libuv does not hand out the SOCKET (`fd` is -1): it
 * is found by walking this thread's loop for the handle with the same addresses.
 */
export function descriptorOf(handle: InternalHandle): number {
  const fd = runtime.descriptor(handle);
  if (fd >= 0) return fd;
  if (fd !== -1 || process.platform !== 'win32') throw socketClosed();
  return lookupSocket(handle);
}

/**
 * SOCKETs found on Windows, per live handle. A libuv handle keeps its SOCKET
 * until it closes, and descriptorOf() consults this only after the handle's
 * own getter said it is alive, so a closed handle's entry is never used (and
 * goes with the handle object). This turns a lingering close's polling from
 * a loop walk per socket per tick into a map lookup.
 */
const socketByHandle = new WeakMap<InternalHandle, number>();

/** findSocket's remotePort for sockets without a peer (native/socket_lookup.h). */
const LISTENER_ONLY = -2;
const NOT_LISTENING_NO_PEER = -3;

function lookupSocket(handle: InternalHandle): number {
  const local: AddressInfo = {};
  // getsockname fails once libuv closed the socket: between close() and its
  // callback Node still calls the handle alive, and the number may be reused.
  if (!handle.getsockname || handle.getsockname(local) !== 0) throw socketClosed();
  const known = socketByHandle.get(handle);
  if (known !== undefined) return known;
  const remote: AddressInfo = {};
  // Without a peer (a listener, or a socket that was reset) the local address
  // is shared with the listener: say which of the two is meant.
  const hasPeer = handle.getpeername !== undefined && handle.getpeername(remote) === 0;
  const isListener = typeof (handle as { onconnection?: unknown }).onconnection === 'function';
  const result = native.findSocket(
    // Stryker disable next-line StringLiteral,UnaryOperator: equivalent, a getsockname that returned 0 filled both
    local.address ?? '', local.port ?? -1,
    // Stryker disable next-line StringLiteral: equivalent, a getpeername that returned 0 filled the address
    hasPeer ? remote.address ?? ''
      : '',
    // Stryker disable next-line UnaryOperator: equivalent, a getpeername that returned 0 filled the port
    hasPeer ? remote.port ?? -1 : isListener ? LISTENER_ONLY : NOT_LISTENING_NO_PEER,
  );
  if (result === errnoOf('EBADF')) throw socketClosed();
  if (result < 0) throw systemError(result, 'lookup');
  socketByHandle.set(handle, result);
  return result;
}

/** The descriptor of a connected socket or listening server. */
export function descriptorOfTarget(target: LingerTarget): number {
  return descriptorOf(tcpHandleOf(target));
}

// ------------------------------------------------------------- HTTP/2

/**
 * An HTTP/2 session (server or client) as Node's http2 core keeps it. Node
 * does not export the Http2Session class: a session is recognised by its
 * own `Symbol(socket)` slot holding a net.Socket and by its methods.
 */
export interface Http2SessionLike {
  readonly closed: boolean;
  readonly destroyed: boolean;
  close(callback?: () => void): void;
  destroy(error?: Error, code?: number): void;
  goaway(...args: unknown[]): void;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
}

export interface Http2Parts {
  session: Http2SessionLike;
  /** The TCP (or TLS) socket Node hides behind `session.socket`. */
  socket: net.Socket;
}

/** A symbol of `target`'s own, by its description (Node's private symbols are not global). */
function ownSymbol(target: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(target).find((s) => s.description === description);
}

/** An own slot read without any get trap (a Proxy without getOwnPropertyDescriptor trap forwards to its target). */
function ownSlot(target: object, key: symbol | undefined): unknown {
  return key === undefined ? undefined : Reflect.getOwnPropertyDescriptor(target, key)?.value;
}

function isSession(value: unknown): value is Http2SessionLike {
  return isHttp2Session(value) && isSocket(ownSlot(value, ownSymbol(value, 'socket')));
}

/** An Http2Session, live or destroyed (a destroyed one has no socket any more). */
export function isHttp2Session(value: unknown): value is Http2SessionLike {
  return typeof value === 'object' && value !== null && !(value instanceof net.Socket)
    && typeof (value as Http2SessionLike).goaway === 'function'
    && typeof (value as Http2SessionLike).close === 'function'
    && ownSymbol(value, 'socket') !== undefined;
}

/**
 * The one place that sees through HTTP/2's socket hiding
 * (lib/internal/http2/core.js, Node 20-26):
 * - an Http2Session keeps its socket in `session[kSocket]` (`Symbol(socket)`);
 * - `session.socket` is `new Proxy(session, proxySocketHandler)`: its get
 *   trap forwards reads to the real socket and throws
 *   ERR_HTTP2_NO_SOCKET_MANIPULATION for end/destroy/read/write..., but it
 *   has no ownKeys/getOwnPropertyDescriptor trap, so the session's own
 *   slots show through: `kHandle` is the native session, whose
 *   `owner_symbol` is the session again.
 * Returns null for anything else (a plain socket), and also for a proxy
 * whose session is destroyed (its native handle is gone): closes of it then
 * fall through to the ordinary checks (closed socket / refused manipulation).
 */
export function http2PartsOf(value: unknown): Http2Parts | null {
  // A primitive or null is neither a session nor a socket: null below.
  if (isSession(value)) return { session: value, socket: ownSlot(value, ownSymbol(value, 'socket')) as net.Socket };
  if (!(value instanceof net.Socket) || ownSymbol(value, 'proxySocket') === undefined) return null;
  const native = ownSlot(value, ownSymbol(value, 'kHandle'));
  if (typeof native !== 'object' || native === null) return null;
  const session = ownSlot(native, ownSymbol(native, 'owner_symbol'));
  return isSession(session) ? http2PartsOf(session) : null;
}

/**
 * The session running on an accepted socket, if any. Node 20 stores it with
 * `socket[kSession] = this` where kSession is not defined in that module
 * (the key is the string 'undefined'); later versions may use a symbol: any
 * own slot holding a session whose socket is this one is accepted.
 */
export function http2SessionOnSocket(socket: net.Socket): Http2SessionLike | null {
  const keys: (string | symbol)[] = [...Object.keys(socket), ...Object.getOwnPropertySymbols(socket)];
  for (const key of keys) {
    const value = (socket as unknown as Record<string | symbol, unknown>)[key];
    // Stryker disable next-line ConditionalExpression: the whole test as true or false is a type error (value must be a session to be returned); the first operand as true is equivalent, a socket is no session
    if (value !== socket && isSession(value) &&
      http2PartsOf(value)?.socket === socket) return value; // a session kept on the socket for another connection is not its own
  }
  return null;
}

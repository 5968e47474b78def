// What differs between the JavaScript runtimes that run this package, behind
// one small interface, as native/ keeps one file per OS. Each runtime
// implements node:net over its own native socket object (`socket._handle`):
// - Node: libuv's TCP wrap (a TLSWrap's `_parent` for TLS): `fd`, `close`,
//   `reset`, `onconnection(err, client)`, `onread` per read + readStart();
// - Bun 1.x: a native usockets TCPSocket / TLSSocket / Listener with an `fd`
//   getter (-1 once closed: Bun closes natively after both FINs, before
//   'close'), `close` and `terminate` (linger 0 + close, resetAndDestroy);
//   reads reach the stream only through `socket.push()`, and accepted
//   sockets exist for JavaScript only from the server's 'connection' event;
// - Deno >= 2.8: a native TCPWrap without `fd`: `fdForIpc()` returns a dup()
//   of the socket, which this module closes itself (the addon; Deno's
//   fs.closeSync refuses it) once the current synchronous operation is over;
//   `onread` is captured at readStart(); its listen shim calls
//   `onconnection(0)` and then creates the client with `accept(client)`.
//   Deno < 2.8 has no way to the descriptor at all.
// The rest of the package asks this module and never tests the runtime.
import type * as net from 'node:net';
import { native } from './native';

/** A runtime's native socket object, as its node:net keeps it in `_handle`. */
export interface NativeHandle {
  readonly fd?: number;
  fdForIpc?(): number;
  onread?: (buffer?: ArrayBuffer, ...rest: unknown[]) => unknown;
  reading?: boolean;
  readStart?(): number;
  readStop?(): number;
  resume?(): void;
  close(...args: unknown[]): unknown;
  reset?(...args: unknown[]): unknown;
  terminate?(...args: unknown[]): unknown;
  accept?(client: NativeHandle): number;
  onconnection?: (err: number, client?: NativeHandle) => unknown;
  _parent?: NativeHandle;
  [key: symbol]: unknown;
}

/** A server's connections as node:http lists them: all, and those between requests. */
export interface HttpConnections {
  all(): net.Socket[];
  idle(): net.Socket[];
}

/** What a runtime's handle is, as far as this package cares. */
export type HandleKind = 'tcp' | 'pipe' | 'unreachable' | 'other';

/**
 * Sees one read before the stream does: `bytes` for data, null for EOF (or
 * a read error); returns false to swallow it.
 */
export type ReadHook = (bytes: number | null) => boolean;

export interface Runtime {
  /** 'Node 24.1.0', 'Bun 1.4.5', 'Deno 2.9.6': named in errors. */
  readonly name: string;
  /** The handle that owns the OS socket (a TLS socket's TCP handle on Node and Deno). */
  socketHandle(handle: NativeHandle): NativeHandle;
  kindOf(handle: NativeHandle): HandleKind;
  /**
   * The descriptor, usable until the current synchronous operation ends;
   * -1 once the runtime closed the socket.
   */
  descriptor(handle: NativeHandle): number;
  /** The method that closes with an RST (resetAndDestroy), if there is one. */
  readonly resetMethod: 'reset' | 'terminate';
  /**
   * The guard resets by linger 0 + close(): libuv refuses its own reset while
   * a shutdown is pending. Deno's reset must run itself: its stream ends
   * ('close') only through it.
   */
  readonly resetThroughClose: boolean;
  /**
   * The runtime closes the socket itself once both FINs have passed, before
   * JavaScript hears of the peer's (Bun): the descriptor is gone at that EOF.
   */
  readonly closesAfterBothFins: boolean;
  /**
   * Sockets are libuv handles on libuv's loop (Node): a handle's class tells
   * its kind (TCP, pipe), and the addon can watch descriptors on the loop.
   */
  readonly libuv: boolean;
  /**
   * Calls `seen` with each socket handle the listener accepts, as early as
   * the runtime lets JavaScript see it; false if it cannot be hooked.
   */
  hookAccept(server: net.Server, listener: NativeHandle, seen: (client: NativeHandle) => void): boolean;
  /**
   * Routes every read of `socket` through `hook` (installed once per
   * socket); false where reads cannot be seen.
   */
  hookReads(socket: net.Socket, hook: ReadHook): boolean;
  /** Makes the runtime read (a paused stream stops it) so that a hook sees late data and the FIN. */
  keepReading(socket: net.Socket): void;
  /**
   * Why node:http's servers have no socket this package can reach here, or
   * null where they run on node:net (Bun's run on its own native HTTP stack).
   */
  readonly httpServersUnreachable: string | null;
  /** node:http's ConnectionsList (`server[Symbol(http.server.connections)]`), read. */
  httpConnections(list: unknown): HttpConnections | undefined;
}

interface WithHandle { _handle?: NativeHandle | null }

const handleOf = (socket: net.Socket): NativeHandle | null => (socket as WithHandle)._handle ?? null;

// ------------------------------------------------------------------ Node

/** StreamBase's running count of bytes read, raised before onread is called. */
interface CountingHandle extends NativeHandle { readonly bytesRead?: number }

/** Hooks `onread`, the one callback a libuv-style stream handle reads through. */
function hookOnread(handle: CountingHandle, hook: ReadHook, afterData: (handle: NativeHandle) => void): void {
  const onread = handle.onread!;
  // The buffer's size is not the read's on every Node (TLS on Node 24 hands
  // over a 64 KiB buffer holding 16 KiB): the stream's own count is.
  let counted = handle.bytesRead ?? 0;
  handle.onread = function readThroughHook(this: CountingHandle, buffer?: ArrayBuffer, ...rest: unknown[]) {
    const hasData = buffer !== undefined;
    let bytes: number | null = null;
    if (hasData) {
      const total = this.bytesRead;
      bytes = typeof total === 'number' ? total - counted : buffer.byteLength;
      if (typeof total === 'number') counted = total;
    }
    if (!hook(bytes)) {
      if (hasData) afterData(this);
      return undefined;
    }
    const result = onread.call(this, buffer, ...rest);
    if (hasData) afterData(this);
    return result;
  };
}

/** libuv stops reading when Node's buffer is full (a paused app); a hook still has to see the FIN. */
function readStartIfStopped(handle: NativeHandle): void {
  if (handle.reading === false && handle.readStart) {
    handle.reading = true;
    handle.readStart();
  }
}

const node: Runtime = {
  name: `Node ${process.versions.node}`,
  socketHandle: (handle) => handle._parent ?? handle,
  kindOf(handle) {
    const kind = handle.constructor?.name;
    return kind === 'TCP' ? 'tcp' : kind === 'Pipe' ? 'pipe' : 'other';
  },
  descriptor: (handle) => handle.fd ?? -1,
  resetMethod: 'reset',
  resetThroughClose: true,
  closesAfterBothFins: false,
  libuv: true,
  hookAccept(_server, listener, seen) {
    const onconnection = listener.onconnection;
    if (typeof onconnection !== 'function') return false;
    listener.onconnection = function acceptedThroughHook(this: NativeHandle, err: number, client?: NativeHandle) {
      if (client) seen(client);
      return onconnection.call(this, err, client);
    };
    return true;
  },
  hookReads(socket, hook) {
    const handle = handleOf(socket);
    if (!handle?.onread) return false;
    hookOnread(handle, hook, readStartIfStopped);
    return true;
  },
  keepReading(socket) {
    const handle = handleOf(socket);
    if (handle) readStartIfStopped(handle);
  },
  httpServersUnreachable: null,
  // Node's native list: parsers, whose socket is the connection.
  httpConnections(list) {
    const parsers = list as { all?(): ParserLike[]; idle?(): ParserLike[] } | undefined;
    if (typeof parsers?.all !== 'function' || typeof parsers.idle !== 'function') return undefined;
    const sockets = (of: ParserLike[]) => of.flatMap((p) => (p.socket ? [p.socket] : []));
    return { all: () => sockets(parsers.all!()), idle: () => sockets(parsers.idle!()) };
  },
};

interface ParserLike { socket?: net.Socket | null }

// ------------------------------------------------------------------ Bun

const bun = (version: string): Runtime => ({
  name: `Bun ${version}`,
  socketHandle: (handle) => handle,
  kindOf(handle) {
    // The fd getter is not in bun-types: without it, nothing to reach.
    if (typeof handle.fd !== 'number') return 'unreachable';
    if (handle.fd < 0) return 'tcp'; // closed: descriptor() says so
    // A Listener names its socket file in `unix`; a connection has a local port only over TCP.
    const { unix, localPort } = handle as { unix?: unknown; localPort?: unknown };
    if ('unix' in handle) return unix ? 'pipe' : 'tcp';
    return typeof localPort === 'number' ? 'tcp' : 'pipe';
  },
  descriptor: (handle) => handle.fd ?? -1,
  resetMethod: 'terminate',
  resetThroughClose: true,
  closesAfterBothFins: true,
  libuv: false,
  // Bun's server makes the net.Socket and emits 'connection' in one go.
  hookAccept(server, _listener, seen) {
    server.prependListener('connection', (socket: net.Socket) => {
      const handle = handleOf(socket);
      if (handle) seen(handle);
    });
    return true;
  },
  // Bun hands each read to the stream with push(chunk), EOF as push(null).
  hookReads(socket, hook) {
    const stream = socket as net.Socket & { push(chunk: unknown, encoding?: BufferEncoding): boolean };
    const push = stream.push;
    stream.push = function pushThroughHook(this: typeof stream, chunk: unknown, encoding?: BufferEncoding) {
      const bytes = chunk === null ? null : (chunk as { length: number }).length;
      if (!hook(bytes)) {
        if (bytes !== null) resumeBun(this);
        return true;
      }
      return push.call(this, chunk, encoding);
    };
    return true;
  },
  keepReading: resumeBun,
  httpServersUnreachable: "Bun's node:http server runs on Bun's own native HTTP stack, whose connections expose no OS socket",
  httpConnections: () => undefined,
});

/** Bun pauses its native socket while the stream's buffer is full. */
function resumeBun(socket: net.Socket): void {
  handleOf(socket)?.resume?.();
}

// ------------------------------------------------------------------ Deno

/** dup()s from fdForIpc() in use by the current synchronous operation. */
const borrowed: number[] = [];

function closeBorrowed(): void {
  for (const fd of borrowed.splice(0)) native.closeDuplicate(fd);
}

const deno = (version: string): Runtime => ({
  name: `Deno ${version}`,
  socketHandle: (handle) => handle._parent ?? handle,
  kindOf(handle) {
    const kind = handle.constructor?.name;
    if (kind === 'Pipe') return 'pipe';
    if (kind !== 'TCPWrap') return 'other';
    return typeof handle.fdForIpc === 'function' ? 'tcp' : 'unreachable';
  },
  descriptor(handle) {
    let fd: number;
    try {
      fd = handle.fdForIpc!();
    } catch {
      return -1; // closed
    }
    if (typeof fd !== 'number' || fd < 0) return -1;
    if (borrowed.push(fd) === 1) queueMicrotask(closeBorrowed);
    return fd;
  },
  resetMethod: 'reset',
  resetThroughClose: false,
  closesAfterBothFins: false,
  libuv: false,
  hookAccept(_server, listener, seen) {
    const accept = listener.accept;
    if (typeof accept !== 'function') return false;
    listener.accept = function acceptThroughHook(this: NativeHandle, client: NativeHandle) {
      const err = accept.call(this, client);
      if (err === 0) seen(client);
      return err;
    };
    return true;
  },
  hookReads(socket, hook) {
    const handle = handleOf(socket);
    if (!handle?.onread) return false;
    hookOnread(handle, hook, readStartIfStopped);
    // Deno takes `onread` at readStart(): read again for the hook to count.
    if (handle.reading !== false && handle.readStop && handle.readStart) {
      handle.readStop();
      handle.readStart();
    }
    return true;
  },
  keepReading: (socket) => node.keepReading(socket),
  httpServersUnreachable: null,
  // Deno's JavaScript port of the list: the sockets themselves, the busy ones in `_active`.
  httpConnections(list) {
    const { _all: all, _active: active } = (list ?? {}) as { _all?: Iterable<net.Socket>; _active?: Map<net.Socket, unknown> };
    if (all === undefined || typeof all[Symbol.iterator] !== 'function') return undefined;
    return { all: () => [...all], idle: () => [...all].filter((socket) => !active?.has(socket)) };
  },
});

/**
 * Another runtime with a node:net of its own: where its handles are libuv's
 * (an embedder of Node) they work as on Node; any other handle has no
 * descriptor this package knows how to reach.
 */
const unknown = (name: string): Runtime => ({
  ...node,
  name,
  kindOf(handle) {
    const kind = node.kindOf(handle);
    return kind === 'other' || typeof handle.fd !== 'number' ? 'unreachable' : kind;
  },
});

function detect(): Runtime {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun !== undefined) return bun(versions.bun);
  if (versions.deno !== undefined) return deno(versions.deno);
  const release = (process as { release?: { name?: string } }).release?.name;
  if (release === 'node' && versions.node !== undefined) return node;
  return unknown(`${release ?? 'an unknown runtime'} ${process.version ?? ''}`.trim());
}

/** The runtime this process runs on. */
export const runtime: Runtime = detect();

/**
 * At an EOF whose descriptor is gone: Bun closed the socket because both
 * FINs have passed (ours was out; it reports a reset as an error, never as
 * an EOF), so this EOF is the peer's FIN, not a reset.
 */
export function closedAfterBothFins(socket: net.Socket): boolean {
  return runtime.closesAfterBothFins && socket.writableFinished;
}

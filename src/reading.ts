// Taking over what a socket reads. Node's handle calls `onread` for every
// read: with a buffer for data, without one for EOF or an error. Closing and
// read-shutdown need to see (and often swallow) those reads before the stream
// does, and need libuv to keep reading after Node itself would stop.
import type * as net from 'node:net';
import type { InternalHandle } from './handle';

/** Return true to let Node's stream see the read as usual. */
export type ReadFilter = (hasData: boolean) => boolean;

const kFilter = Symbol('socket-linger.readFilter');

interface Filtered extends InternalHandle { [kFilter]?: ReadFilter }

/** The handle whose onread carries this socket's data (TLSWrap for TLS). */
function streamHandleOf(socket: net.Socket): Filtered | null {
  return (socket as { _handle?: Filtered | null })._handle ?? null;
}

/**
 * Routes every later read of `socket` through `filter` (the newest filter
 * replaces an older one), and makes sure libuv is reading.
 */
export function filterReads(socket: net.Socket, filter: ReadFilter): boolean {
  const handle = streamHandleOf(socket);
  if (!handle?.onread) return false;
  if (handle[kFilter] === undefined) {
    const onread = handle.onread;
    handle.onread = function filteredRead(this: Filtered, buffer?: ArrayBuffer) {
      if (this[kFilter]?.(buffer !== undefined) === false) return;
      return onread.call(this, buffer);
    };
  }
  handle[kFilter] = filter;
  keepReading(handle);
  return true;
}

/** libuv must keep reading to see late data or the peer's FIN. */
function keepReading(handle: InternalHandle): void {
  if (handle.reading === false && handle.readStart) {
    handle.reading = true;
    handle.readStart();
  }
}

// Taking over what a socket reads. Node's handle calls `onread` for every
// read: with a buffer for data, without one for EOF or an error. Closing and
// read-shutdown need to see (and often swallow) those reads before the stream
// does, and need libuv to keep reading after Node itself would stop.
import type * as net from 'node:net';
import type { InternalHandle } from './handle';

/**
 * Sees a read before Node's stream: `data` is what arrived (Node sizes the
 * buffer to the bytes read), undefined for EOF or a read error. Return false
 * to swallow it: later filters and Node's stream never see it.
 */
export type ReadFilter = (data: ArrayBuffer | undefined) => boolean;

const kFilters = Symbol('socket-linger.readFilters');

interface Filtered extends InternalHandle { [kFilters]?: ReadFilter[] }

/** The handle whose onread carries this socket's data (TLSWrap for TLS). */
function streamHandleOf(socket: net.Socket): Filtered | null {
  return (socket as { _handle?: Filtered | null })._handle ?? null;
}

/**
 * Routes every later read of `socket` through `filter`, after the filters
 * already installed (so shutdown('read')'s rule survives a close), and makes
 * sure libuv is reading, and keeps reading while any filter is installed.
 * Filters stay for the socket's life (a close or a read shutdown is final).
 */
export function filterReads(socket: net.Socket, filter: ReadFilter): void {
  const handle = streamHandleOf(socket);
  if (!handle?.onread) return;
  let filters = handle[kFilters];
  if (filters === undefined) {
    const list: ReadFilter[] = filters = handle[kFilters] = [];
    const onread = handle.onread;
    handle.onread = function filteredRead(this: Filtered, buffer?: ArrayBuffer) {
      const hasData = buffer !== undefined;
      for (let i = 0; i < list.length; i++) if (!list[i](buffer)) return;
      const result = onread.call(this, buffer);
      // Node stops reading when its buffer is full (a paused app): a filter
      // still has to see the peer's FIN or reset. Never after EOF, which
      // libuv would only report again.
      if (hasData && list.length > 0) keepReading(this);
      return result;
    };
  }
  filters.push(filter);
  keepReading(handle);
}

/** libuv must keep reading to see late data or the peer's FIN. */
function keepReading(handle: InternalHandle): void {
  if (handle.reading === false && handle.readStart) {
    handle.reading = true;
    handle.readStart();
  }
}

// Taking over what a socket reads. Node's handle calls `onread` for every
// read: with a buffer for data, without one for EOF or an error. Closing and
// read-shutdown need to see (and often swallow) those reads before the stream
// does, and need libuv to keep reading after Node itself would stop.
import type * as net from 'node:net';
import type { InternalHandle } from './handle';

/**
 * Sees a read before Node's stream: `bytes` is how much arrived, null for
 * EOF or a read error. Return false to swallow it: later filters and Node's
 * stream never see it.
 */
export type ReadFilter = (bytes: number | null) => boolean;

const kFilters = Symbol('socket-linger.readFilters');

interface Filtered extends InternalHandle {
  [kFilters]?: ReadFilter[];
  /** StreamBase's count of bytes read, raised before onread is called. */
  readonly bytesRead?: number;
}

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
    // The buffer's size is not the read's on every Node (TLS on Node 24
    // hands over a 64 KiB buffer holding 16 KiB): the stream's own count is.
    let counted = handle.bytesRead ?? 0;
    handle.onread = function filteredRead(this: Filtered, buffer?: ArrayBuffer) {
      const hasData = buffer !== undefined;
      let bytes: number | null = null;
      if (hasData) {
        const total = this.bytesRead;
        bytes = typeof total === 'number' ? total - counted : buffer.byteLength;
        if (typeof total === 'number') counted = total;
      }
      for (let i = 0; i < list.length; i++) if (!list[i](bytes)) return;
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

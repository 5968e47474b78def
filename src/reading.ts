// Taking over what a socket reads. Closing and read-shutdown need to see (and
// often swallow) each read before the stream does, and need the runtime to
// keep reading after the stream itself would stop; how a read is seen is the
// runtime's (src/runtime.ts: Node's and Deno's `onread`, Bun's push()).
import type * as net from 'node:net';
import { runtime } from './runtime';

/**
 * Sees a read before the stream: `bytes` is how much arrived, null for EOF
 * or a read error. Return false to swallow it: later filters and the stream
 * never see it.
 */
export type ReadFilter = (bytes: number | null) => boolean;

const kFilters = Symbol('socket-linger.readFilters');

interface Filtered { [kFilters]?: ReadFilter[] }

/**
 * Routes every later read of `socket` through `filter`, after the filters
 * already installed (so shutdown('read')'s rule survives a close), and makes
 * sure the runtime is reading, and keeps reading while any filter is
 * installed. Filters stay for the socket's life (a close or a read shutdown
 * is final). False where this runtime lets no read be seen.
 */
export function filterReads(socket: net.Socket, filter: ReadFilter): boolean {
  const filtered = socket as net.Socket & Filtered;
  const filters = filtered[kFilters];
  if (filters === undefined) {
    const list: ReadFilter[] = [filter]; // sized for the one filter most sockets get
    const hooked = runtime.hookReads(socket, (bytes) => {
      for (let i = 0; i < list.length; i++) if (!list[i](bytes)) return false;
      return true;
    });
    if (!hooked) return false;
    filtered[kFilters] = list;
  } else filters.push(filter);
  runtime.keepReading(socket);
  // Stryker disable next-line BooleanLiteral: internal (not exported by the package), and no caller reads the result: every call is a statement
  return true;
}

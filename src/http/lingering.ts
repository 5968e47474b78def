// lingeringClose(server): nginx's lingering close for node:http servers.
// (Being built: see issue "HTTP servers".)
import type * as http from 'node:http';

export interface LingeringCloseOptions {
  /** ms in all, default 30 000 (nginx lingering_time). */
  lingeringTime?: number;
  /** ms without data from the client, default 5 000 (nginx lingering_timeout). */
  lingeringTimeout?: number;
  /** Bytes read and discarded before giving up (a DoS bound). */
  maxBytes?: number;
}

export const DEFAULT_LINGERING_MAX_BYTES = 64 * 1024 * 1024;

export function lingeringClose(server: http.Server, options?: LingeringCloseOptions): () => void {
  void server; void options;
  throw new Error('lingeringClose: not built yet');
}

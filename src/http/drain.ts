// drainServer(server): stop an HTTP/1.1 or HTTP/2 server without losing a response.
// (Being built: see issue "HTTP servers".)
import type * as http from 'node:http';
import type { CloseResult } from '../socket-close';

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

export function drainServer(server: http.Server, options?: DrainOptions): Promise<DrainResult> {
  void server; void options;
  return Promise.reject(new Error('drainServer: not built yet'));
}

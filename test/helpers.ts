// Real loopback connections and ways to watch what the peer observes.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getTcpInfo, type TcpState } from '../dist/index.js';
import { stallMonitor } from '../dist/stall.js';

export const fixtures = {
  key: readFileSync(join(__dirname, 'fixtures', 'key.pem')),
  cert: readFileSync(join(__dirname, 'fixtures', 'cert.pem')),
};

export interface Pair {
  client: net.Socket;
  /** The accepted end. */
  peer: net.Socket;
  server: net.Server;
  close(): Promise<void>;
}

/** A connected loopback pair; `peer` is half-open so it never answers a FIN by itself. */
export async function connectPair(
  options: { host?: string; serverSetup?: (server: net.Server) => void } = {},
): Promise<Pair> {
  const host = options.host ?? '127.0.0.1';
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  options.serverSetup?.(server);
  server.listen(0, host);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as net.AddressInfo).port, host);
  await once(client, 'connect');
  const [peer] = (await accepted) as [net.Socket];
  return closable(client, peer, server);
}

/** A pair with a close() that ends both sockets and the server. */
function closable<S extends net.Socket>(client: S, peer: S, server: net.Server) {
  return {
    client, peer, server,
    async close() {
      client.destroy();
      peer.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What a peer saw of the connection's end. */
export interface PeerView {
  bytes: number;
  /** 'end' fired (not proof of a FIN after a partial read: see SPEC). */
  ended: boolean;
  /** Error code seen ('ECONNRESET' for an RST), or null. */
  error: string | null;
  /** Kernel state at the moment the stream ended or errored. */
  stateAtEnd: TcpState | null;
  /**
   * How the connection ended, judged by the kernel: a FIN leaves the peer in
   * CLOSE_WAIT, an RST in CLOSED (Node may report a reset as 'end').
   */
  outcome: 'FIN' | 'RST' | 'open';
}

/** Reads everything until end/error; resolves with what the peer observed. */
export function watchPeer(peer: net.Socket, options: { startPaused?: boolean } = {}) {
  const view: PeerView = { bytes: 0, ended: false, error: null, stateAtEnd: null, outcome: 'open' };
  const done = new Promise<PeerView>((resolve) => {
    const snapshotState = () => {
      try {
        view.stateAtEnd = getTcpInfo(peer).state;
      } catch {
        view.stateAtEnd = null;
      }
      if (view.error === 'ECONNRESET' || view.stateAtEnd === 'CLOSED') view.outcome = 'RST';
      else if (view.ended && view.stateAtEnd === 'CLOSE_WAIT') view.outcome = 'FIN';
    };
    peer.on('data', (chunk: Buffer) => { view.bytes += chunk.length; });
    peer.on('end', () => { view.ended = true; snapshotState(); resolve(view); });
    peer.on('error', (error: NodeJS.ErrnoException) => {
      view.error = error.code ?? String(error);
      snapshotState();
      resolve(view);
    });
    peer.on('close', () => resolve(view));
  });
  if (options.startPaused) peer.pause();
  else peer.resume();
  return { view, done };
}

/**
 * Writes `chunk`-sized blocks, each fully handed to the kernel, until at
 * least `minQueued` bytes sit unsent or unacknowledged in the kernel's send
 * queue (the peer must not be reading). Returns the bytes written.
 */
export async function fillKernelSendQueue(socket: net.Socket, minQueued = 256 * 1024, chunk = 64 * 1024) {
  const block = Buffer.alloc(chunk, 0x61);
  let written = 0;
  for (let i = 0; i < 4096; i++) {
    const flushed = await Promise.race([
      new Promise<boolean>((resolve) => socket.write(block, () => resolve(true))),
      delay(500).then(() => false),
    ]);
    if (!flushed) throw new Error('kernel buffers filled before the send queue reached the target');
    written += chunk;
    const info = getTcpInfo(socket);
    // macOS cannot split a non-empty send queue (null): count what was written.
    const queued = info.unsentBytes === null ? written : info.unsentBytes + (info.unackedBytes ?? 0);
    if (queued >= minQueued) return written;
  }
  throw new Error('send queue never filled');
}

export function delay(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** Longest gap between timer ticks while `work` runs: how long the loop stalled. */
export async function measureStall<T>(work: () => Promise<T>): Promise<{ result: T; maxStallMs: number }> {
  const stall = stallMonitor(2);
  try {
    const result = await work();
    await delay(20);
    return { result, maxStallMs: stall.stop() };
  } finally {
    stall.stop(); // again after a throw: clears the timer
  }
}

export async function tlsPair() {
  const server = tls.createServer({ ...fixtures, allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection');
  const client = tls.connect({
    port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false,
  });
  await once(client, 'secureConnect');
  const [peer] = (await accepted) as [tls.TLSSocket];
  return closable(client, peer, server);
}

export async function expectError(promiseOrFn: (() => unknown) | Promise<unknown>, code: string) {
  try {
    if (typeof promiseOrFn === 'function') await promiseOrFn();
    else await promiseOrFn;
  } catch (error) {
    if ((error as { code?: string }).code !== code)
      throw new Error(`expected ${code}, got ${(error as { code?: string }).code}: ${(error as Error).message}`);
    return error as NodeJS.ErrnoException;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

/** Waits (loosely bounded) until the kernel reports `state` for a socket. */
export async function waitForState(socket: net.Socket, state: TcpState, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  let seen = getTcpInfo(socket).state;
  while (seen !== state) {
    if (Date.now() > deadline) throw new Error(`socket stayed ${seen}, expected ${state}`);
    await delay(5);
    seen = getTcpInfo(socket).state;
  }
}

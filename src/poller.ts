// One timer for every socket in a lingering close: kernels do not tell user
// space when an ACK arrives, so all waiting sockets are checked in one native
// call per 10 ms tick (one cheap syscall each) until their FIN, and with it
// every byte before it, has been acknowledged.
import type * as net from 'node:net';
import { descriptorOf, tcpHandleOf } from './handle';
import { native } from './native';

const POLL_INTERVAL_MS = 10;

const waiters = new Map<net.Socket, () => void>();
let timer: NodeJS.Timeout | undefined;
let socks = new Float64Array(64);
let acknowledged = new Int8Array(64);

function tick(): void {
  const entries = [...waiters];
  if (entries.length > socks.length) {
    socks = new Float64Array(entries.length * 2);
    acknowledged = new Int8Array(entries.length * 2);
  }
  for (let i = 0; i < entries.length; i++) socks[i] = liveDescriptor(entries[i][0]);
  native.sendAcknowledged(socks.subarray(0, entries.length), acknowledged);
  for (let i = 0; i < entries.length; i++) {
    if (acknowledged[i] !== 1) continue;
    const [socket, onDelivered] = entries[i];
    waiters.delete(socket);
    onDelivered();
  }
  if (waiters.size === 0) stop();
}

/** -1 for a socket closed meanwhile: its own 'close' listener settles it. */
function liveDescriptor(socket: net.Socket): number {
  try {
    return descriptorOf(tcpHandleOf(socket));
  } catch {
    return -1;
  }
}

function stop(): void {
  clearInterval(timer);
  timer = undefined;
}

/**
 * Calls `onDelivered` once the socket's FIN (and so all its data) has been
 * acknowledged by the peer. Returns a function that stops the watch.
 */
export function whenDelivered(socket: net.Socket, onDelivered: () => void): () => void {
  waiters.set(socket, onDelivered);
  timer ??= setInterval(tick, POLL_INTERVAL_MS);
  return () => {
    waiters.delete(socket);
    if (waiters.size === 0 && timer !== undefined) stop();
  };
}

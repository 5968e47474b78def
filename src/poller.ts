// One timer for every socket in a lingering close: kernels do not tell user
// space when an ACK arrives, so the states of all waiting sockets are read in
// one native call per 10 ms tick (one getsockopt each), until their FIN has
// been acknowledged.
import type * as net from 'node:net';
import { descriptorOf, tcpHandleOf } from './handle';
import { native } from './native';
import { TCP_STATES } from './tcp-info';

const POLL_INTERVAL_MS = 10;

/**
 * Our FIN is acknowledged, so is every byte before it (the FIN comes last in
 * the sequence space): FIN_WAIT_2, TIME_WAIT, or CLOSED after LAST_ACK.
 */
const DELIVERED = new Set(['FIN_WAIT_2', 'TIME_WAIT', 'CLOSED'].map((s) => TCP_STATES.indexOf(s as never)));

const waiters = new Map<net.Socket, () => void>();
let timer: NodeJS.Timeout | undefined;
let socks = new Float64Array(64);
let states = new Int8Array(64);

function tick(): void {
  const entries = [...waiters];
  if (entries.length > socks.length) {
    socks = new Float64Array(entries.length * 2);
    states = new Int8Array(entries.length * 2);
  }
  for (let i = 0; i < entries.length; i++) socks[i] = liveDescriptor(entries[i][0]);
  native.tcpStates(socks.subarray(0, entries.length), states);
  for (let i = 0; i < entries.length; i++) {
    if (!DELIVERED.has(states[i])) continue;
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

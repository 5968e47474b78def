// One timer for every socket in a lingering close: kernels do not tell user
// space when an ACK arrives, so waiting sockets are checked in one native
// call per 10 ms tick (one cheap syscall each) until their FIN, and with it
// every byte before it, has been acknowledged. A socket whose unacknowledged
// count has not moved for a while (a peer that does not read) is checked
// every 4th tick only: most of the cost of many waiting sockets, saved.
// A socket that stopped making progress is also asked whether it was reset
// (a peer's RST after its FIN comes to no read: libuv stopped at the EOF).
// The timer never keeps the process alive: each close's deadline timer does
// that, for as long as its socket would.
import type * as net from 'node:net';
import { descriptorOf, tcpHandleOf } from './handle';
import { native } from './native';

const POLL_INTERVAL_MS = 10;
/** Ticks without progress before a socket is checked less often. */
const IDLE_TICKS = 10;
const IDLE_EVERY = 4;

/** native.unacknowledged's markers. */
const UNCOUNTED = -1;
const UNREADABLE = -2;
const WAS_RESET = -3;

interface Waiter {
  onDelivered: () => void;
  onReset: () => void;
  /** The last unacknowledged count seen, and for how many ticks it held. */
  last: number;
  idleTicks: number;
}

const waiters = new Map<net.Socket, Waiter>();
let timer: NodeJS.Timeout | undefined;
let tickCount = 0;
let due: [net.Socket, Waiter][] = [];
let socks = new Float64Array(64);
let lastSeen = new Float64Array(64);
let pending = new Float64Array(64);

function tick(): void {
  tickCount++;
  due.length = 0;
  for (const entry of waiters) {
    if (entry[1].idleTicks < IDLE_TICKS || tickCount % IDLE_EVERY === 0) due.push(entry);
  }
  if (due.length > socks.length) {
    socks = new Float64Array(due.length * 2);
    lastSeen = new Float64Array(due.length * 2);
    pending = new Float64Array(due.length * 2);
  }
  for (let i = 0; i < due.length; i++) {
    socks[i] = liveDescriptor(due[i][0]);
    lastSeen[i] = due[i][1].last;
  }
  native.unacknowledged(socks.subarray(0, due.length), lastSeen, pending);
  for (let i = 0; i < due.length; i++) {
    const [socket, waiter] = due[i];
    const count = pending[i];
    if (count === 0 || count === WAS_RESET) {
      waiters.delete(socket);
      if (count === 0) waiter.onDelivered();
      else waiter.onReset();
    } else if (count !== UNREADABLE) {
      // Uncounted (macOS, Windows): no way to see progress, so never idle.
      const moved = count === UNCOUNTED || count !== waiter.last;
      waiter.idleTicks = moved ? 0 : waiter.idleTicks + 1;
      waiter.last = count;
    }
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
 * acknowledged by the peer, or `onReset` if the connection was reset first.
 * Returns a function that stops the watch.
 */
export function whenDelivered(socket: net.Socket, onDelivered: () => void, onReset: () => void): () => void {
  waiters.set(socket, { onDelivered, onReset, last: NaN, idleTicks: 0 });
  if (timer === undefined) {
    timer = setInterval(tick, POLL_INTERVAL_MS);
    timer.unref();
  }
  return () => {
    waiters.delete(socket);
    if (waiters.size === 0 && timer !== undefined) stop();
  };
}

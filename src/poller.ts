// How a lingering close (and gracefulShutdown's wait) learns that the peer
// has acknowledged everything, its FIN included, or that it reset the
// connection: whenDelivered(). Two ways behind it:
//
// - Wake-ups (Linux, on Node): Linux wakes a socket's waiters when its FIN
//   is acknowledged and when it is reset. Every waiting socket is registered
//   edge-triggered in one epoll instance that the loop watches (native/
//   wakeups_linux.cc); only the sockets that woke are checked, and nothing
//   runs while nothing happens.
// - The poll (macOS, Windows, other runtimes, or wherever the wake-up path
//   cannot be set up; SOCKET_LINGER_POLL=1 forces it): one timer for every
//   waiting socket, checked in one native call per 10 ms tick (one cheap
//   syscall each, at most 1,000 a tick, the rest in turn on the next ones)
//   until its FIN has been acknowledged. A socket whose unacknowledged count
//   has not moved for a while (a peer that does not read) is checked every
//   4th tick only.
//
// Either way a socket that stopped making progress is also asked whether it
// was reset (a peer's RST after its FIN comes to no read: libuv stopped at
// the EOF). Neither keeps the process alive: each close's deadline timer
// does that, for as long as its socket would.
import type * as net from 'node:net';
import { descriptorOf, tcpHandleOf } from './handle';
import { native } from './native';
import { runtime } from './runtime';
import { inSlices, type SliceTask } from './slices';

const POLL_INTERVAL_MS = 10;
/** Ticks without progress before a socket is checked less often. */
const IDLE_TICKS = 10;
const IDLE_EVERY = 4;

/** native.unacknowledged's markers. */
const UNCOUNTED = -1;
const UNREADABLE = -2;
const WAS_RESET = -3;
/** native.unacknowledged's `last` for a socket the kernel woke: always ask about a reset. */
const WOKEN = -Infinity;

export type DeliveryWatch = 'wakeups' | 'poll';

/** Shared by every copy of the library in the thread (a test's and the package's). */
// Stryker disable next-line StringLiteral: every copy that shares the switch is this same file, so any key (even '') is the same key for all of them
const kForcePoll = Symbol.for('socket-linger.forcePoll');
const switches = globalThis as { [kForcePoll]?: boolean };

/**
 * Internal (tests and bench/ compare both): makes closes that start from now
 * on poll (true) or use wake-ups where they can (false); undefined: as
 * SOCKET_LINGER_POLL says (1: poll).
 */
export function forcePolling(force: boolean | undefined): void {
  switches[kForcePoll] = force;
}

/** How the next close will watch: 'wakeups' where the kernel path is set up. */
export function deliveryWatch(): DeliveryWatch {
  const forced = switches[kForcePoll] ?? process.env.SOCKET_LINGER_POLL === '1';
  return !forced && wakeupsOpen() ? 'wakeups' : 'poll';
}

/** Told once, by whenDelivered(). */
export interface DeliveryListener {
  /** The socket's FIN (and so all its data) was acknowledged by the peer. */
  onDelivered(): void;
  /** The connection was reset first. */
  onReset(): void;
}

/** A watch under way: stop() ends it (once; later calls do nothing). */
export interface DeliveryWatching {
  stop(): void;
}

/**
 * Tells `listener` once the socket's FIN (and so all its data) has been
 * acknowledged by the peer, or that the connection was reset first. A
 * listener object rather than callbacks: a close waits with no closures of
 * its own, ten thousand of them at once.
 */
export function whenDelivered(socket: net.Socket, listener: DeliveryListener): DeliveryWatching {
  if (deliveryWatch() === 'wakeups') {
    const watching = wakeOn(socket, listener);
    if (watching !== undefined) return watching;
  }
  return pollOn(socket, listener);
}

/** -1 for a socket closed meanwhile: its own 'close' listener settles it. */
function liveDescriptor(socket: net.Socket): number {
  try {
    return descriptorOf(tcpHandleOf(socket));
  } catch {
    return -1;
  }
}

/** One socket's watch, either way (Woken for the wake-ups, Waiter for the poll). */
abstract class Watch implements DeliveryWatching, SliceTask {
  /** What the check found: 0 delivered, WAS_RESET reset. */
  private found = 0;

  constructor(readonly socket: net.Socket, private readonly listener: DeliveryListener) {}

  abstract stop(): void;

  /**
   * Delivered or reset (found): the watch ends, and the listener is told
   * within the per-iteration budget (thousands may be told together, and
   * each close that follows costs the kernel a FIN or an RST).
   */
  tell(found: number): void {
    this.stop();
    this.found = found;
    inSlices(this);
  }

  runSlice(): void {
    if (this.found === 0) this.listener.onDelivered();
    else this.listener.onReset();
  }
}

// ------------------------------------------------------------- wake-ups

class Woken extends Watch {
  constructor(socket: net.Socket, readonly token: number, listener: DeliveryListener) {
    super(socket, listener);
  }

  stop(): void {
    unwatch(this);
  }
}

/** Tokens of the sockets that woke, filled by the addon before each onWake. */
const TOKENS = new Uint32Array(4096);
const watched = new Map<number, Woken>();
let nextToken = 1;
/** This copy's wake-ups (native.openWakeups' id), -1 where they cannot be set up. */
let wakeups: number | undefined;
const wokenDue: Woken[] = [];
let wokenSocks = new Float64Array(64);
let wokenLast = new Float64Array(64).fill(WOKEN);
let wokenOut = new Float64Array(64);

/**
 * Whether this thread's wake-ups are set up (once, on first use). They need
 * a libuv loop: other runtimes that load Node-API addons (Bun, Deno) poll.
 */
function wakeupsOpen(): boolean {
  if (wakeups === undefined) {
    wakeups = runtime.libuv && typeof native.openWakeups === 'function'
      ? Math.max(-1, native.openWakeups(TOKENS, onWake)) : -1;
  }
  return wakeups >= 0;
}

/** undefined where the socket cannot be registered: it is polled instead. */
function wakeOn(socket: net.Socket, listener: DeliveryListener): Woken | undefined {
  const fd = liveDescriptor(socket);
  const token = nextToken;
  nextToken = nextToken === 0xffffffff ? 1 : nextToken + 1;
  // The registration reports at once: what happened before it is checked too.
  if (fd < 0 || native.watchSocket(wakeups!, fd, token) !== 0) return undefined;
  const waiter = new Woken(socket, token, listener);
  watched.set(token, waiter);
  return waiter;
}

/** Stops watching (once); the registration goes while the descriptor is still the socket's. */
function unwatch(waiter: Woken): void {
  if (watched.get(waiter.token) !== waiter) return;
  watched.delete(waiter.token);
  const fd = liveDescriptor(waiter.socket);
  if (fd >= 0) native.unwatchSocket(wakeups!, fd);
}

/** `count` sockets woke (their tokens in TOKENS): one native call checks them all. */
function onWake(count: number): void {
  wokenDue.length = 0;
  for (let i = 0; i < count; i++) {
    const waiter = watched.get(TOKENS[i]);
    if (waiter !== undefined) wokenDue.push(waiter); // else: stale, its watch ended
  }
  const due = wokenDue.length;
  if (due === 0) return;
  if (due > wokenSocks.length) {
    wokenSocks = new Float64Array(due * 2);
    wokenLast = new Float64Array(due * 2).fill(WOKEN);
    wokenOut = new Float64Array(due * 2);
  }
  for (let i = 0; i < due; i++) wokenSocks[i] = liveDescriptor(wokenDue[i].socket);
  native.unacknowledged(wokenSocks.subarray(0, due), wokenLast, wokenOut);
  for (let i = 0; i < due; i++) {
    const waiter = wokenDue[i];
    const result = wokenOut[i];
    // Delivered or reset: the watch ends (once, even if a socket woke twice).
    if (result !== 0 && result !== WAS_RESET) continue;
    if (watched.get(waiter.token) === waiter) waiter.tell(result);
  }
}

// ------------------------------------------------------------- the poll

class Waiter extends Watch {
  /** The last unacknowledged count seen, and for how many ticks it held. */
  last = NaN;
  idleTicks = 0;
  /** Its place in `waiting`, -1 once the watch ended. */
  slot: number;

  constructor(socket: net.Socket, listener: DeliveryListener) {
    super(socket, listener);
    this.slot = waiting.push(this) - 1;
  }

  stop(): void {
    if (this.slot < 0) return;
    const last = waiting.pop()!;
    if (last !== this) {
      waiting[this.slot] = last;
      last.slot = this.slot;
    }
    this.slot = -1;
    if (waiting.length === 0) stop();
  }
}

/** Sockets checked per tick at most (~1 us each): ten thousand waiting cost 10 ms ticks otherwise. */
const CHECKS_PER_TICK = 1000;

const waiting: Waiter[] = [];
/** Where the next tick starts looking: past the cap, every socket gets its turn. */
let cursor = 0;
let timer: NodeJS.Timeout | undefined;
let tickCount = 0;
const due: Waiter[] = [];
let socks = new Float64Array(64);
let lastSeen = new Float64Array(64);
let pending = new Float64Array(64);

function pollOn(socket: net.Socket, listener: DeliveryListener): Waiter {
  const waiter = new Waiter(socket, listener);
  if (timer === undefined) {
    timer = setInterval(tick, POLL_INTERVAL_MS);
    timer.unref();
  }
  return waiter;
}

function tick(): void {
  // Stryker disable next-line UpdateOperator: tickCount is used only as tickCount % IDLE_EVERY === 0, which holds for -n exactly when it holds for n
  tickCount++;
  due.length = 0;
  const count = waiting.length;
  let looked = 0;
  for (; looked < count && due.length < CHECKS_PER_TICK; looked++) {
    const waiter = waiting[(cursor + looked) % count];
    if (waiter.idleTicks < IDLE_TICKS || tickCount % IDLE_EVERY === 0) due.push(waiter);
  }
  cursor = count === 0 ? 0 : (cursor + looked) % count;
  if (due.length > socks.length) {
    socks = new Float64Array(due.length * 2);
    lastSeen = new Float64Array(due.length * 2);
    pending = new Float64Array(due.length * 2);
  }
  for (let i = 0; i < due.length; i++) {
    socks[i] = liveDescriptor(due[i].socket);
    lastSeen[i] = due[i].last;
  }
  native.unacknowledged(socks.subarray(0, due.length), lastSeen, pending);
  for (let i = 0; i < due.length; i++) {
    const waiter = due[i];
    const result = pending[i];
    if (result === 0 || result === WAS_RESET) {
      waiter.tell(result);
    } else if (result !== UNREADABLE) {
      // Uncounted (macOS, Windows): no way to see progress, so never idle.
      const moved = result === UNCOUNTED || result !== waiter.last;
      waiter.idleTicks = moved ? 0 : waiter.idleTicks + 1;
      waiter.last = result;
    }
  }
}

function stop(): void {
  clearInterval(timer);
  timer = undefined;
}

/** Watches under way on this thread, both kinds: 0 once every close has ended its own. For tests. */
export function watchesUnderWay(): number {
  return watched.size + waiting.length;
}

// setLinger()/getLinger(): the real SO_LINGER option, plus the guard that
// keeps a nonzero linger from ever being in force when a handle closes.
import * as net from 'node:net';
import { systemError } from './errors';
import {
  descriptorOf, descriptorOfTarget, isPending, roundRobinHandleOf, tcpHandleOf, validateTarget,
  type InternalHandle, type LingerTarget, type RoundRobinHandle,
} from './handle';
import { guardClose } from './close-guard';
import { native } from './native';
import { runtime } from './runtime';
import { LINGER_MAX_SECONDS, validateBoolean, validateLingerSeconds } from './validate';

export interface LingerOption {
  enabled: boolean;
  /** Timeout in seconds; 0 when linger is off. */
  seconds: number;
}

const kPendingLinger = Symbol('socket-linger.pendingLinger');
const kServerGuard = Symbol('socket-linger.serverGuard');
const kAcceptedLinger = Symbol('socket-linger.acceptedLinger');

interface Pending { [kPendingLinger]?: LingerOption }

const lingerOut = new Int32Array(2);

/**
 * Sets SO_LINGER on the OS socket behind `target`. On a server it is set on
 * the listening socket, and every socket it accepts inherits it. A socket
 * that is not connected yet (or a server not yet listening) gets the setting
 * on 'connect' ('listening'). A cluster worker's round-robin server has no
 * listening socket (the primary has it): the setting is kept for it and
 * set on each socket it receives.
 */
export function setLinger(target: LingerTarget, enabled: boolean, seconds: number = 0): void {
  if (setConnectedSocket(target, enabled, seconds)) return;
  validateTarget(target);
  validateBoolean(enabled, 'enabled');
  if (enabled) validateLingerSeconds(seconds);
  else seconds = 0;
  if (isPending(target)) {
    deferLinger(target, { enabled, seconds });
    return;
  }
  // A later setting replaces one still waiting for 'connect'.
  if ((target as Pending)[kPendingLinger] !== undefined) (target as Pending)[kPendingLinger] = undefined;
  applyLinger(target, enabled, seconds);
}

/** A TCP handle's class, learned from the first one tcpHandleOf() accepted. */
let tcpHandleClass: unknown;

interface SocketFields {
  _handle?: InternalHandle | null;
  _writableState?: unknown;
  connecting?: boolean;
}

/**
 * The common case in one pass: a connected TCP socket (no TLS, not Windows)
 * and valid arguments, each field read once, one native call. Anything else
 * returns false before any effect, and the full path validates, reports and
 * acts as always. Nothing is cached: the descriptor is the live handle's.
 */
function setConnectedSocket(target: LingerTarget, enabled: boolean, seconds: number): boolean {
  if (!(target instanceof net.Socket) || typeof enabled !== 'boolean') return false;
  const socket = target as SocketFields & Pending;
  const handle = socket._handle;
  if (handle == null || tcpHandleClass === undefined || handle.constructor !== tcpHandleClass || socket.connecting !== false ||
      typeof socket._writableState !== 'object' || socket[kPendingLinger] !== undefined) return false;
  if (!enabled) seconds = 0;
  else if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > LINGER_MAX_SECONDS) return false;
  const fd = handle.fd;
  // Closed underneath, Windows, or a runtime whose handle has no fd (Deno):
  // the full path says which, or reaches the descriptor its own way.
  if (typeof fd !== 'number' || fd < 0) return false;
  const err = native.setLinger(fd, enabled, seconds);
  if (err !== 0) throw systemError(err, 'setsockopt');
  if (seconds > 0) guardClose(handle);
  // Stryker disable next-line BooleanLiteral: false only sends the call on down the full path, which sets the same option again and guards idempotently
  return true;
}

/** Reads SO_LINGER from the kernel (`seconds` is 0 whenever it is off). */
export function getLinger(target: LingerTarget): LingerOption {
  validateTarget(target);
  if (isPending(target))
    return { ...((target as Pending)[kPendingLinger] ?? { enabled: false, seconds: 0 }) };
  const roundRobin = target instanceof net.Server ? roundRobinHandleOf(target) : null;
  if (roundRobin) return { ...(acceptedLinger(roundRobin) ?? { enabled: false, seconds: 0 }) };
  return readLinger(descriptorOfTarget(target));
}

export function readLinger(fd: number): LingerOption {
  const err = native.getLinger(fd, lingerOut);
  if (err !== 0) throw systemError(err, 'getsockopt');
  return { enabled: lingerOut[0] === 1, seconds: lingerOut[1] };
}

export function writeLinger(fd: number, enabled: boolean, seconds: number): void {
  const err = native.setLinger(fd, enabled, seconds);
  if (err !== 0) throw systemError(err, 'setsockopt');
}

function applyLinger(target: LingerTarget, enabled: boolean, seconds: number): void {
  const roundRobin = target instanceof net.Server ? roundRobinHandleOf(target) : null;
  if (roundRobin) {
    roundRobin[kAcceptedLinger] = { enabled, seconds };
    hookAccepted(target as net.Server, roundRobin);
    return;
  }
  const handle = tcpHandleOf(target);
  // Only a libuv TCP handle's class says TCP (Bun's pipes share their class).
  // Stryker disable next-line AssignmentOperator: &&= never learns the class, so setConnectedSocket() always declines and the full path does the same
  if (target instanceof net.Socket && runtime.libuv) tcpHandleClass ??= handle.constructor;
  writeLinger(descriptorOf(handle), enabled, seconds);
  if (!enabled || seconds === 0) return;
  if (target instanceof net.Server) hookAccepted(target, handle);
  else guardClose(handle);
}

function acceptedLinger(handle: RoundRobinHandle): LingerOption | undefined {
  return handle[kAcceptedLinger] as LingerOption | undefined;
}

function deferLinger(target: LingerTarget, option: LingerOption): void {
  const pending = target as Pending;
  const alreadyWaiting = pending[kPendingLinger] !== undefined;
  pending[kPendingLinger] = option;
  if (alreadyWaiting) return;
  const event = target instanceof net.Server ? 'listening' : 'connect';
  target.once(event, () => {
    const latest = pending[kPendingLinger];
    pending[kPendingLinger] = undefined;
    if (latest === undefined) return;
    try {
      applyLinger(target, latest.enabled, latest.seconds);
    } catch (error) {
      // Nobody is left to throw to: report it the way Node reports socket errors.
      if (target instanceof net.Socket) target.destroy(error as Error);
      else target.emit('error', error);
    }
  });
}

type Listener = (InternalHandle | RoundRobinHandle) & { [kServerGuard]?: true };

/**
 * Sees each accepted socket as the runtime (or, in a round-robin cluster
 * worker, the IPC channel) hands it over, before Node does, since Node
 * itself closes some at once (over maxConnections) before any 'connection'
 * event.
 */
function hookAccepted(server: net.Server, listener: Listener): void {
  if (listener[kServerGuard]) return;
  const hooked = runtime.hookAccept(server, listener as InternalHandle, (client) => {
    try {
      onAccepted(listener, client as InternalHandle);
    } catch {
      // Already gone: Node sees that on its first read; nothing to set or guard.
    }
  });
  if (hooked) listener[kServerGuard] = true;
}

/**
 * A real listener's socket inherited its linger, n > 0 when this hook went
 * in: guard it (harmless if it is off by now). One a round-robin worker
 * received gets the stored setting, and the guard if that is n > 0.
 */
function onAccepted(listener: Listener, client: InternalHandle): void {
  const option = acceptedLinger(listener as RoundRobinHandle);
  if (option === undefined) {
    guardClose(client);
    return;
  }
  writeLinger(descriptorOf(client), option.enabled, option.seconds);
  if (option.enabled && option.seconds > 0) guardClose(client);
}

// setLinger()/getLinger(): the real SO_LINGER option, plus the guard that
// keeps a nonzero linger from ever being in force when a handle closes.
import * as net from 'node:net';
import { systemError } from './errors';
import {
  descriptorOf, descriptorOfTarget, isPending, tcpHandleOf, validateTarget,
  type InternalHandle, type LingerTarget,
} from './handle';
import { guardClose } from './close-guard';
import { native } from './native';
import { validateBoolean, validateLingerSeconds } from './validate';

export interface LingerOption {
  enabled: boolean;
  /** Timeout in seconds; 0 when linger is off. */
  seconds: number;
}

const kPendingLinger = Symbol('socket-linger.pendingLinger');
const kServerGuard = Symbol('socket-linger.serverGuard');

interface Pending { [kPendingLinger]?: LingerOption }

const lingerOut = new Int32Array(2);

/**
 * Sets SO_LINGER on the OS socket behind `target`. On a server it is set on
 * the listening socket, and every socket it accepts inherits it. A socket
 * that is not connected yet (or a server not yet listening) gets the setting
 * on 'connect' ('listening').
 */
export function setLinger(target: LingerTarget, enabled: boolean, seconds: number = 0): void {
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

/** Reads SO_LINGER from the kernel (`seconds` is 0 whenever it is off). */
export function getLinger(target: LingerTarget): LingerOption {
  validateTarget(target);
  if (isPending(target))
    return { ...((target as Pending)[kPendingLinger] ?? { enabled: false, seconds: 0 }) };
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
  const handle = tcpHandleOf(target);
  writeLinger(descriptorOf(handle), enabled, seconds);
  if (!enabled || seconds === 0) return;
  if (target instanceof net.Server) guardAcceptedSockets(target);
  else guardClose(handle);
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

/**
 * Accepted sockets inherit the listening socket's linger: guard each one as
 * libuv hands it over, before Node sees it, since Node itself closes some
 * at once (over maxConnections) before any 'connection' event.
 */
function guardAcceptedSockets(server: net.Server): void {
  const handle = (server as { _handle?: InternalHandle & { onconnection?: Function } })._handle;
  if (!handle || handle[kServerGuard] || typeof handle.onconnection !== 'function') return;
  handle[kServerGuard] = true;
  const onconnection = handle.onconnection;
  handle.onconnection = function guardAccepted(this: unknown, err: number, client?: InternalHandle) {
    if (client) {
      try {
        guardClose(client);
      } catch {
        // Already gone: no close of ours to guard.
      }
    }
    return onconnection.call(this, err, client);
  };
}

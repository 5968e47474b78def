// The close guard: every close of a guarded TCP handle (destroy(), Node's
// auto-destroy, an http server, a worker's teardown, this library) first
// switches a nonzero kernel linger off, so no close can block the loop.
import { descriptorOf, type InternalHandle } from './handle';
import { native } from './native';

const kGuarded = Symbol('socket-linger.closeGuard');
const kClosedWithReset = Symbol('socket-linger.closedWithReset');

const lingerOut = new Int32Array(2);

/**
 * Makes every close of this handle (destroy(), auto-destroy after end(), an
 * http server closing it, this library) first switch a nonzero linger off:
 * Linux's close() would otherwise block the whole event loop for up to the
 * linger time. Linger 0 is left alone, so a plain destroy() still resets.
 *
 * Closes that run no JavaScript (a worker's teardown) cannot be intercepted,
 * so on POSIX the addon also holds a second reference to the socket: the
 * handle's own close then cannot end the connection, and the reference is
 * dropped right after a close seen here, or by the addon, linger off, when
 * the thread's environment goes away.
 */
export function guardClose(handle: InternalHandle): void {
  if (handle[kGuarded]) return;
  handle[kGuarded] = true;
  let held = native.holdSocket(descriptorOf(handle));
  // Once only: the same fd number may be held for another socket later.
  const releaseHeld = () => {
    if (held >= 0) native.releaseHeld(held);
    held = -1;
  };
  const { close, reset } = handle;
  handle.close = function closeWithoutBlocking(this: InternalHandle, callback?: () => void) {
    openGuardedHandles.delete(this);
    this[kClosedWithReset] = releaseBlockingLinger(this);
    try {
      return close.call(this, callback);
    } finally {
      releaseHeld();
    }
  };
  // resetAndDestroy(): libuv sets linger {on, 0} and closes; the RST goes
  // out when the last reference does. When libuv refuses (EINVAL, a shutdown
  // pending) the handle stays open, and so must the reference.
  if (reset !== undefined) {
    handle.reset = function resetHeld(this: InternalHandle, callback?: () => void) {
      const err = reset.call(this, callback);
      if (err === 0) {
        openGuardedHandles.delete(this);
        this[kClosedWithReset] = true;
        releaseHeld();
      }
      return err;
    };
  }
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', releaseAtExit);
  }
  openGuardedHandles.add(handle);
}

/** Whether a guarded handle was closed with linger {on, 0} or reset(): an RST. */
export function closedWithReset(handle: InternalHandle): boolean {
  return handle[kClosedWithReset] === true;
}

/**
 * process.exit() in a worker thread: Node then closes the thread's handles
 * natively; switching their linger off on 'exit' spares Windows and macOS
 * a lingering close there too (Linux is covered by the held reference).
 */
const openGuardedHandles = new Set<InternalHandle>();
let exitHooked = false;

function releaseAtExit(): void {
  for (const handle of openGuardedHandles) releaseBlockingLinger(handle);
}

/** Switches a nonzero linger off; returns true when linger {on, 0} is in force (an RST). */
function releaseBlockingLinger(handle: InternalHandle): boolean {
  try {
    const fd = descriptorOf(handle);
    if (native.getLinger(fd, lingerOut) !== 0 || lingerOut[0] !== 1) return false;
    if (lingerOut[1] === 0) return true;
    native.setLinger(fd, false, 0);
  } catch {
    // Already closed underneath: nothing can block.
  }
  return false;
}


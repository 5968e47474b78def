// The close guard: every close of a guarded TCP handle (destroy(), Node's
// auto-destroy, an http server, a worker's teardown, this library) first
// switches a nonzero kernel linger off, so no close can block the loop, and
// tells the close under way (socket-close.ts) what is about to happen, so
// that its result is computed from the socket as it was at the close.
import { isMainThread } from 'node:worker_threads';
import { descriptorOf, type InternalHandle } from './handle';
import { native } from './native';
import { runtime } from './runtime';

/** What a close under way hears from the guard. */
export interface CloseWatcher {
  /** Just before the OS socket closes: `reset` for resetAndDestroy(). */
  onHandleClosing(how: 'close' | 'reset'): void;
  /** Just after: the FIN or RST is out ('close' follows a loop turn later). */
  onHandleClosed(): void;
  /** The socket was ref()'d or unref()'d. */
  onRefChange(): void;
}

interface Guard {
  /** The second reference held on POSIX in a worker thread (holdSocket), or -1. */
  held: number;
  watcher: CloseWatcher | undefined;
  /** Drops the held reference, if any (once: the fd number may be held for another socket later). */
  release(): void;
}

const kGuard = Symbol('socket-linger.closeGuard');

interface Guarded extends InternalHandle {
  [kGuard]?: Guard;
  ref?(): void;
  unref?(): void;
}

const lingerOut = new Int32Array(2);

/**
 * Makes every close of this handle (destroy(), auto-destroy after end(), an
 * http server closing it, this library) first switch a nonzero linger off:
 * Linux's close() would otherwise block the whole event loop for up to the
 * linger time. Linger 0 is left alone, so a plain destroy() still resets.
 *
 * With `hold` (a linger n > 0 set on the socket) in a worker thread: closes
 * that run no JavaScript (the worker's teardown) cannot be intercepted, so on
 * POSIX the addon also holds a second reference to the socket: the handle's
 * own close then cannot end the connection, and the reference is dropped
 * right after a close seen here, or by the addon, linger off, when the
 * thread's environment goes away. The main thread needs none (one
 * descriptor per socket, not two): nothing closes its sockets without
 * JavaScript but the process's exit, where 'exit' switches the lingers off
 * first and Linux skips the linger wait of an exiting process anyway. Bun
 * is the exception: it closes a socket itself once both FINs have passed,
 * with no JavaScript, so there the reference is held on every thread.
 *
 * `hold: false` (a close under way switched the kernel linger off, nothing
 * can block now): a reference held is dropped.
 */
export function guardClose(handle: InternalHandle, options?: { hold?: boolean }): void {
  const guarded = handle as Guarded;
  const guard = guarded[kGuard] ?? install(guarded);
  if (options?.hold === false) guard.release();
  else if (guard.held === -1 && (!isMainThread || runtime.closesAfterBothFins)) {
    const held = native.holdSocket(descriptorOf(handle));
    if (held >= 0) guard.held = held;
  }
}

/** Routes the guard's news about this handle to `watcher` (undefined: nobody). */
export function watchClose(handle: InternalHandle, watcher: CloseWatcher | undefined): void {
  const guard = (handle as Guarded)[kGuard];
  if (guard !== undefined) guard.watcher = watcher;
}

function install(handle: Guarded): Guard {
  const guard: Guard = {
    held: -1,
    watcher: undefined,
    release() {
      if (this.held >= 0) native.releaseHeld(this.held);
      this.held = -1;
    },
  };
  handle[kGuard] = guard;
  const releaseHeld = () => guard.release();
  const { close, ref, unref } = handle;
  const resetMethod = runtime.resetMethod;
  const reset = handle[resetMethod];
  handle.close = function closeWithoutBlocking(this: Guarded, callback?: () => void) {
    openGuardedHandles.delete(this);
    guard.watcher?.onHandleClosing('close');
    releaseBlockingLinger(this);
    try {
      return close.call(this, callback);
    } finally {
      releaseHeld();
      guard.watcher?.onHandleClosed();
    }
  };
  // resetAndDestroy(): linger {on, 0} and close, as libuv's own reset (and
  // Bun's terminate()) does, but through close: libuv refuses its reset
  // (EINVAL) while a shutdown is pending (after end()) and Node then leaks
  // the handle. Only where the option cannot be set does the runtime's own
  // reset get its turn.
  if (reset !== undefined) {
    handle[resetMethod] = function resetWithClose(this: Guarded, callback?: () => void) {
      let armed = false;
      try {
        armed = native.setLinger(descriptorOf(this), true, 0) === 0;
      } catch {
        // Closed underneath: libuv's reset reports that.
      }
      if (!armed) return reset.call(this, callback);
      openGuardedHandles.delete(this);
      guard.watcher?.onHandleClosing('reset');
      try {
        if (!runtime.resetThroughClose) return reset.call(this, callback);
        close.call(this, callback);
      } finally {
        releaseHeld();
        guard.watcher?.onHandleClosed();
      }
      return 0;
    };
  }
  // A close waiting on this socket keeps the process alive only while the
  // socket itself does (Node's own end() lets an unref'd socket's process exit).
  if (ref !== undefined && unref !== undefined) {
    handle.ref = function refWatched(this: Guarded) {
      ref.call(this);
      guard.watcher?.onRefChange();
    };
    handle.unref = function unrefWatched(this: Guarded) {
      unref.call(this);
      guard.watcher?.onRefChange();
    };
  }
  hookProcessExits();
  openGuardedHandles.add(handle);
  return guard;
}

/**
 * process.exit() in a worker thread: Node then closes the thread's handles
 * natively; switching their linger off on 'exit' spares Windows and macOS
 * a lingering close there too (Linux is covered by the held reference).
 * process.execve() (Node >= 22.15, 23.11) closes every close-on-exec descriptor
 * inside the exec, where a kernel linger n would block it for n s.
 */
const openGuardedHandles = new Set<Guarded>();
let exitsHooked = false;

function hookProcessExits(): void {
  if (exitsHooked) return;
  exitsHooked = true;
  process.once('exit', () => releaseBlockingLingers());
  const execve = (process as { execve?: (...args: unknown[]) => never }).execve;
  if (typeof execve === 'function') {
    (process as { execve?: unknown }).execve = function execveWithoutLinger(this: unknown, ...args: unknown[]) {
      const released = releaseBlockingLingers();
      try {
        return execve.apply(this, args);
      } catch (error) {
        // Refused (bad arguments): no exec, so no effect either.
        for (const [fd, seconds] of released) native.setLinger(fd, true, seconds);
        throw error;
      }
    };
  }
}

/** Switches every open guarded socket's nonzero linger off: [fd, seconds] of those it changed. */
function releaseBlockingLingers(): [number, number][] {
  const released: [number, number][] = [];
  for (const handle of openGuardedHandles) releaseBlockingLinger(handle, released);
  return released;
}

/** Switches a nonzero linger off (linger 0 stays: an RST, as asked); records what it changed. */
function releaseBlockingLinger(handle: InternalHandle, released?: [number, number][]): void {
  try {
    const fd = descriptorOf(handle);
    if (native.getLinger(fd, lingerOut) !== 0 ||
        // Stryker disable next-line ConditionalExpression: the addon reports seconds 0 whenever linger is off, so lingerOut[1] === 0 already returns wherever this would
        lingerOut[0] !== 1 ||
        lingerOut[1] === 0) return;
    released?.push([fd, lingerOut[1]]);
    native.setLinger(fd, false, 0);
  } catch {
    // Already closed underneath: nothing can block.
  }
}

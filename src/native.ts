// The compiled addon (native/), found by node-gyp-build: a prebuild for this
// platform if the package carries one, else the local build/ output.
import { join } from 'node:path';
import nodeGypBuild = require('node-gyp-build');

export interface NativeBinding {
  /** Each returns 0 or a negative libuv error number. */
  setLinger(sock: number, enabled: boolean, seconds: number): number;
  getLinger(sock: number, out: Int32Array): number;
  /** shutdown(SHUT_WR / SD_SEND): the read side is the library's own (src/shutdown.ts). */
  shutdownWrite(sock: number): number;
  tcpInfo(sock: number, out: Float64Array): number;
  /**
   * out[i] = what socks[i] sent that the peer has not acknowledged (0: all of
   * it, FIN included; -1: not yet, uncounted on this platform; -2: unreadable;
   * -3: reset). last[i], the count seen last time, says which to ask about a
   * reset (-Infinity: ask whenever something is outstanding).
   */
  unacknowledged(socks: Float64Array, last: Float64Array, out: Float64Array): void;
  /** Bytes in the kernel's receive queue, or a negative error number. */
  readableBytes(sock: number): number;
  /** The pending socket error (SO_ERROR, cleared by reading it) or 0. */
  pendingError(sock: number): number;
  /** A second reference to the socket (POSIX), released by releaseHeld; else a negative error. */
  holdSocket(sock: number): number;
  releaseHeld(held: number): number;
  /** Closes a duplicate a runtime handed out for one operation (Deno's fdForIpc()). */
  closeDuplicate(dup: number): number;
  /**
   * Kernel wake-ups (native/wakeups.h), one set per call: onWake(count) runs
   * on the loop when watched sockets woke, their tokens in tokens[0..count).
   * An id (>= 0), or a negative error (ENOSYS where there is no wake-up path).
   */
  openWakeups(tokens: Uint32Array, onWake: (count: number) => void): number;
  /** Registers a socket (edge-triggered) under `token`; 0 or a negative error. */
  watchSocket(wakeups: number, sock: number, token: number): number;
  /** Drops the registration; before the socket's descriptor closes. */
  unwatchSocket(wakeups: number, sock: number): number;
  /**
   * Windows only: the SOCKET behind a libuv TCP handle of this thread's loop,
   * by its addresses. remotePort -1: no peer, any kind; -2: a listener only;
   * -3: a non-listening socket without a peer.
   */
  findSocket(localAddress: string, localPort: number, remoteAddress: string, remotePort: number): number;
  readonly maxLingerSeconds: number;
}

export const native: NativeBinding = nodeGypBuild(join(__dirname, '..'));

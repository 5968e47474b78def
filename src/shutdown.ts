// shutdown(): the real shutdown(2) / Winsock shutdown(), with Node's stream
// state kept consistent, and Winsock's read-side semantics on every platform.
import * as net from 'node:net';
import { errnoOf, invalidArgValue, systemError } from './errors';
import { descriptorOf, isPending, tcpHandleOf, validateSocket, validateStreamControl } from './handle';
import { native } from './native';
import { filterReads } from './reading';

export type ShutdownHow = 'read' | 'write' | 'both';

const kReadShutdown = Symbol('socket-linger.readShutdown');

/**
 * Shuts down one or both directions of a connected socket.
 *
 * - `'write'`: FIN after every byte already written (Node's own buffer
 *   included); later `write()`s fail with ERR_STREAM_WRITE_AFTER_END, reading
 *   goes on.
 * - `'read'`: the socket emits 'end' now and its write side stays usable;
 *   data still queued, or arriving later, resets the connection (Winsock's
 *   SD_RECEIVE; enforced by this library where the kernel does not).
 * - `'both'`: both of the above.
 */
export function shutdown(socket: net.Socket, how: ShutdownHow): void {
  validateSocket(socket);
  if (how !== 'read' && how !== 'write' && how !== 'both')
    throw invalidArgValue('how', how, "must be one of: 'read', 'write', 'both'");
  validateStreamControl(socket);
  if (isPending(socket)) throw systemError(errnoOf('ENOTCONN'), 'shutdown');
  const fd = descriptorOf(tcpHandleOf(socket));
  if (how !== 'write') shutdownRead(socket, fd);
  if (how !== 'read' && !socket.destroyed) shutdownWrite(socket, fd);
}

function shutdownWrite(socket: net.Socket, fd: number): void {
  if (socket.writableEnded) return;
  // With nothing left in Node's buffer the FIN can go now, and a failure is
  // thrown here. Otherwise (and for TLS, which owes a close_notify first)
  // end() sends it after the flush, through libuv's own shutdown(2).
  const isTls = (socket as { encrypted?: boolean }).encrypted === true;
  if (!isTls && socket.writableLength === 0) {
    const err = native.shutdownWrite(fd);
    if (err !== 0) throw systemError(err, 'shutdown');
  }
  socket.end();
}

/**
 * The read side is enforced here on every platform, not by the kernel's
 * SHUT_RD: Linux accepts and queues later data anyway; macOS resets only
 * since 11.3, without telling the local socket, and refuses SHUT_RD after
 * the peer's FIN; on Windows, SD_RECEIVE makes libuv's pending read fail
 * with WSAESHUTDOWN, an EPIPE 'error' even for the peer's ordinary FIN.
 */
function shutdownRead(socket: net.Socket, fd: number): void {
  const marked = socket as net.Socket & { [kReadShutdown]?: true };
  if (marked[kReadShutdown]) return;
  const queued = native.readableBytes(fd);
  if (queued < 0) throw systemError(queued, 'ioctl');
  if (queued > 0 || socket.readableLength > 0) {
    // Data is waiting that can now never be delivered: Winsock resets.
    resetAfterReadShutdown(socket, fd);
    return;
  }
  marked[kReadShutdown] = true;
  watchLateData(socket);
  // 'end' now, but keep the write side open: Node would end() it on 'end'.
  socket.allowHalfOpen = true;
  socket.push(null);
  socket.read(0);
}

/** Any byte that arrives after shutdown(read) resets the connection. */
function watchLateData(socket: net.Socket): void {
  filterReads(socket, (bytes) => {
    if (bytes === null) return true; // the peer's FIN or an error: Node handles it
    try {
      resetAfterReadShutdown(socket, descriptorOf(tcpHandleOf(socket)));
    } catch {
      socket.destroy();
    }
    return false;
  });
}

function resetAfterReadShutdown(socket: net.Socket, fd: number): void {
  native.setLinger(fd, true, 0);
  const error = systemError(errnoOf('ECONNRESET'), 'shutdown');
  error.message = 'Connection reset: data arrived after shutdown(read)';
  socket.destroy(error);
}

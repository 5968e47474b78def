// getTcpInfo(): the kernel's view of a connection, the same shape everywhere.
import * as net from 'node:net';
import { systemError } from './errors';
import {
  connectionPhase, descriptorOf, roundRobinHandleOf, tcpHandleOf, validateTarget,
  type InternalHandle,
} from './handle';
import { native } from './native';

export type TcpState =
  | 'CLOSED' | 'LISTEN' | 'SYN_SENT' | 'SYN_RECEIVED' | 'ESTABLISHED' | 'FIN_WAIT_1'
  | 'FIN_WAIT_2' | 'CLOSE_WAIT' | 'CLOSING' | 'LAST_ACK' | 'TIME_WAIT';

/** Same order as sl::TcpState in native/socket_ops.h. */
export const TCP_STATES: readonly TcpState[] = [
  'CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1',
  'FIN_WAIT_2', 'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT',
];

export interface TcpInfo {
  state: TcpState;
  /** Bytes in the kernel's send queue not sent yet; null where unknown. */
  unsentBytes: number | null;
  /** Bytes sent and not yet acknowledged; null where unknown. */
  unackedBytes: number | null;
}

const infoOut = new Float64Array(3);

/**
 * Reads the kernel's TCP state and send-queue figures for a socket or server.
 * Before there is a kernel connection to ask, the answer says where the
 * socket is: a socket whose connect() has not made its OS socket yet (that
 * happens on the next tick) is SYN_SENT with unknown counts; one never
 * connected is CLOSED with nothing queued. A destroyed socket or closed
 * server throws ERR_SOCKET_CLOSED. A cluster worker's round-robin listener
 * has no socket of its own (the primary listens): LISTEN, counts unknown.
 */
export function getTcpInfo(target: net.Socket | net.Server): TcpInfo {
  validateTarget(target);
  if (target instanceof net.Server) {
    if (roundRobinHandleOf(target)) return { state: 'LISTEN', unsentBytes: null, unackedBytes: null };
    return readTcpInfo(descriptorOf(tcpHandleOf(target)));
  }
  const phase = connectionPhase(target);
  if (phase === 'unconnected') return { state: 'CLOSED', unsentBytes: 0, unackedBytes: 0 };
  const handle = tcpHandleOf(target);
  if (phase === 'connecting' && !hasOsSocket(handle))
    return { state: 'SYN_SENT', unsentBytes: null, unackedBytes: null };
  return readTcpInfo(descriptorOf(handle));
}

/**
 * libuv creates (and binds) the OS socket in uv_tcp_connect(); until then
 * getsockname fails. `fd` cannot tell: it is -1 on Windows either way.
 */
function hasOsSocket(handle: InternalHandle): boolean {
  return handle.getsockname !== undefined && handle.getsockname({}) === 0;
}

export function readTcpInfo(fd: number): TcpInfo {
  const err = native.tcpInfo(fd, infoOut);
  if (err !== 0) throw systemError(err, 'getsockopt');
  return {
    state: TCP_STATES[infoOut[0]] ?? 'CLOSED',
    unsentBytes: infoOut[1] < 0 ? null : infoOut[1],
    unackedBytes: infoOut[2] < 0 ? null : infoOut[2],
  };
}

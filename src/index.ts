// socket-linger: real SO_LINGER and shutdown() for Node sockets, and the
// Winsock close matrix as promises that never block the event loop.
export { setLinger, getLinger, type LingerOption } from './linger';
export { shutdown, type ShutdownHow } from './shutdown';
export { getTcpInfo, type TcpInfo, type TcpState } from './tcp-info';
export { LINGER_MAX_SECONDS } from './validate';
export type { LingerTarget } from './handle';
export type { SystemError } from './errors';
export {
  closeSocket, abortiveClose, gracefulShutdown, DEFAULT_SHUTDOWN_TIMEOUT_MS,
  type CloseResult, type CloseOptions, type GracefulShutdownOptions,
} from './close';
export {
  relay, DEFAULT_RELAY_FLUSH_TIMEOUT_MS,
  type RelayResult, type RelayOptions, type RelayDirection, type RelayEnding, type RelayReason,
} from './relay';

// ES module entry: the same functions as the CommonJS build (one copy of the
// addon and of the module state, whichever way the package is loaded).
import cjs from './index.js';

export const {
  setLinger, getLinger, shutdown, getTcpInfo, LINGER_MAX_SECONDS,
  closeSocket, abortiveClose, gracefulShutdown, DEFAULT_SHUTDOWN_TIMEOUT_MS,
  relay, DEFAULT_RELAY_FLUSH_TIMEOUT_MS,
} = cjs;
export type {
  LingerOption, ShutdownHow, TcpInfo, TcpState, LingerTarget, SystemError,
  CloseResult, CloseOptions, GracefulShutdownOptions,
  RelayResult, RelayOptions, RelayDirection, RelayEnding, RelayReason,
} from './index.js';
// `import sl from 'socket-linger'`: the same object `require()` gives.
export default cjs;

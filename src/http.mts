// ES module entry of socket-linger/http: the same functions as the CommonJS
// build (one copy of the module state, whichever way the package is loaded).
import cjs from './http.js';

export const { lingeringClose, drainServer, DEFAULT_LINGERING_MAX_BYTES, DEFAULT_DRAIN_TIMEOUT_MS } = cjs;
export type { LingeringCloseOptions, DrainOptions, DrainResult } from './http.js';
// `import slHttp from 'socket-linger/http'`: the same object `require()` gives.
export default cjs;

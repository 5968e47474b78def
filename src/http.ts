// socket-linger/http: closes for HTTP servers that keep early responses
// (lingeringClose, nginx's lingering close) and a drain that stops a server
// without losing a response (drainServer), for HTTP/1.1 and HTTP/2.
export { lingeringClose, DEFAULT_LINGERING_MAX_BYTES, type LingeringCloseOptions } from './http/lingering';
export { drainServer, DEFAULT_DRAIN_TIMEOUT_MS, type DrainOptions, type DrainResult } from './http/drain';

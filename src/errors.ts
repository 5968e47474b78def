// Errors in Node's own conventions: a `code` property callers can switch on,
// and system errors that carry `errno` and `syscall` like Node's do.
import { constants } from 'node:os';
import * as util from 'node:util';

const { inspect } = util;

/**
 * libuv's error numbers: [name, description] by number. Deno < 2.8 has no
 * getSystemErrorMap; the package must still load there to refuse with
 * ERR_UNSUPPORTED_RUNTIME, so POSIX's numbers stand in (libuv's are their
 * negatives on POSIX).
 */
const errorMap: Map<number, [string, string]> = typeof util.getSystemErrorMap === 'function'
  ? util.getSystemErrorMap()
  : new Map(Object.entries(constants.errno).map(([name, n]) => [-n, [name, name]]));

export type SystemCall = 'setsockopt' | 'getsockopt' | 'shutdown' | 'ioctl' | 'lookup';

export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: SystemCall;
}

function withCode<E extends Error>(error: E, code: string): E & { code: string } {
  Object.defineProperty(error, 'code', {
    value: code, enumerable: true, configurable: true, writable: true,
  });
  return error as E & { code: string };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name ? `an instance of ${name}` : inspect(value, { depth: -1 });
  }
  let shown = inspect(value); // never coloured: inspect() colours only when asked
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof value} (${shown})`;
}

export function invalidArgType(name: string, expected: string, actual: unknown) {
  return withCode(
    new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

export function invalidArgValue(name: string, value: unknown, reason: string) {
  return withCode(
    new TypeError(`The argument '${name}' ${reason}. Received ${inspect(value)}`),
    'ERR_INVALID_ARG_VALUE',
  );
}

export function outOfRange(name: string, range: string, value: unknown) {
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`),
    'ERR_OUT_OF_RANGE',
  );
}

export function socketClosed() {
  return withCode(new Error('Socket is closed'), 'ERR_SOCKET_CLOSED');
}

export function invalidHandleType(kind: string) {
  return withCode(
    new TypeError(`This handle type cannot be used: ${kind} (a TCP socket is required)`),
    'ERR_INVALID_HANDLE_TYPE',
  );
}

/** This runtime gives JavaScript no way to the OS socket (Deno < 2.8, an unknown runtime). */
export function descriptorUnavailable(runtime: string) {
  return withCode(
    new Error(`The OS socket cannot be reached on ${runtime} (socket-linger supports Node, Bun 1.x and Deno >= 2.8)`),
    'ERR_UNSUPPORTED_RUNTIME',
  );
}

/** An operation this runtime cannot carry out as documented: refused before any effect. */
export function unsupportedOnRuntime(what: string, runtime: string, why: string) {
  return withCode(
    new Error(`${what} is not supported on ${runtime}: ${why}`),
    'ERR_FEATURE_UNAVAILABLE_ON_RUNTIME',
  );
}

/** A failed syscall, from a negative libuv-style error number. */
export function systemError(errno: number, syscall: SystemCall): SystemError {
  const [code, description] = errorMap.get(errno) ?? [`Unknown system error ${errno}`, 'unknown error'];
  const error = new Error(`${syscall} ${code}: ${description}`) as SystemError;
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  return error;
}

/** libuv's (negative) number for an error name, the same on every platform. */
export function errnoOf(name: string): number {
  for (const [errno, [code]] of errorMap) if (code === name) return errno;
  throw new Error(`unknown system error ${name}`);
}

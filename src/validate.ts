// Argument checks shared by the public functions, in Node's error style.
import { invalidArgType, outOfRange } from './errors';
import { native } from './native';

/** The largest linger timeout, in seconds, this platform stores exactly. */
export const LINGER_MAX_SECONDS: number = native.maxLingerSeconds;

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
}

export function validateLingerSeconds(value: unknown, name = 'seconds'): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < 0 || value > LINGER_MAX_SECONDS)
    throw outOfRange(name, `an integer >= 0 && <= ${LINGER_MAX_SECONDS}`, value);
}

/** A timeout in milliseconds: a non-negative finite number. */
export function validateTimeout(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isFinite(value) || value < 0 || value > 2 ** 31 - 1)
    throw outOfRange(name, `>= 0 && <= ${2 ** 31 - 1}`, value);
}

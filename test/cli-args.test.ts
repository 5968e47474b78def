// The command-line parsing both commands share (src/cli-args.ts), called
// directly: every rule the CLI's own tests reach only through a child.
import { describe, expect, it } from 'vitest';
import { integerArg, parseArgs, UsageError } from '../dist/cli-args.js';

const SPEC = { '--json': { value: false }, '--bytes': { value: true }, '--host': { value: true } } as const;
const parse = (...argv: string[]) => {
  const { options, positionals, help } = parseArgs(argv, SPEC);
  return { options: Object.fromEntries(options), positionals, help };
};
const usageError = (fn: () => unknown) => {
  try { fn(); } catch (error) { return error; }
  throw new Error('no error thrown');
};

describe('parseArgs', () => {
  it('takes --name value and --name=value alike; the last one wins; a value may hold "="', () => {
    expect(parse('--bytes', '10', '--host=::1', '--json')).toEqual(
      { options: { '--bytes': '10', '--host': '::1', '--json': true }, positionals: [], help: false });
    expect(parse('--bytes=1', '--bytes', '2').options).toEqual({ '--bytes': '2' });
    expect(parse('--host=a=b').options).toEqual({ '--host': 'a=b' });
  });

  it('"--" ends the options: what follows is positional, even when it looks like an option', () => {
    expect(parse('--json', '--', '--bytes', 'x', '-h')).toEqual(
      { options: { '--json': true }, positionals: ['--bytes', 'x', '-h'], help: false });
    expect(parse('a', '--').positionals).toEqual(['a']);
  });

  it('"-" and words are positionals; --help and -h anywhere ask for help', () => {
    expect(parse('-', 'word')).toMatchObject({ positionals: ['-', 'word'], help: false });
    expect(parse('--bytes', '5', '-h')).toMatchObject({ options: { '--bytes': '5' }, help: true });
    expect(parse('--help').help).toBe(true);
  });

  it('a value may be a negative number or contain a dash; an option after a value option is a missing value', () => {
    expect(parse('--bytes', '-5').options).toEqual({ '--bytes': '-5' });
    expect(parse('--host', 'a-b').options).toEqual({ '--host': 'a-b' });
    expect(parse('--host', 'fe80::1-x').options).toEqual({ '--host': 'fe80::1-x' });
    for (const argv of [['--bytes', '--json'], ['--bytes', '-x'], ['--bytes'], ['--bytes='], ['--bytes', '']]) {
      const error = usageError(() => parse(...argv));
      expect(error, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((error as Error).message, argv.join(' ')).toBe('--bytes needs a value');
    }
  });

  it('refuses an unknown option, a value for a switch, and names neither inherited from Object', () => {
    expect((usageError(() => parse('--frob=1')) as Error).message).toBe('Unknown option: --frob');
    expect((usageError(() => parse('-x')) as Error).message).toBe('Unknown option: -x');
    expect((usageError(() => parse('--json=yes')) as Error).message).toBe('--json takes no value');
    expect((usageError(() => parse('--constructor')) as Error).message).toBe('Unknown option: --constructor');
  });
});

describe('integerArg', () => {
  it('reads an integer with a sign or spaces around it, anywhere in [min, max] inclusive', () => {
    expect(integerArg(' 5 ', '--n', 1, 10)).toBe(5);
    expect(integerArg('+7', '--n', 1, 10)).toBe(7);
    expect(integerArg('-5', '--n', -10, 10)).toBe(-5);
    expect(integerArg('1', '--n', 1, 10)).toBe(1);
    expect(integerArg('10', '--n', 1, 10)).toBe(10);
  });

  it('anything else is a UsageError naming the option, the range and what it got', () => {
    for (const raw of ['0', '11', '5x', 'x5', '1.5', '1e1', '0x5', '', ' ', '5 5', '9007199254740993']) {
      const error = usageError(() => integerArg(raw, '--n', 1, 10)) as Error;
      expect(error, raw).toBeInstanceOf(UsageError);
      expect(error.name).toBe('UsageError');
      expect(error.message, raw).toBe(`--n must be an integer from 1 to 10 (got ${JSON.stringify(raw)})`);
    }
    expect(new UsageError('m')).toBeInstanceOf(Error);
    expect(String(new UsageError('m'))).toBe('UsageError: m');
  });
});

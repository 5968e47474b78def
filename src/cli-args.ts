// Command-line parsing shared by the `socket-linger` commands: `--name value`
// and `--name=value` alike, `--` ends the options, and every mistake is a
// UsageError (the CLI prints it with the command's usage and exits 2).

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Whether an option takes a value (`--bytes 10`, `--bytes=10`) or is a switch (`--json`). */
export type OptionSpec = { value: true } | { value: false };

export interface ParsedArgs {
  /** The raw value of each option given (`true` for a switch); the last one wins. */
  options: Map<string, string | true>;
  positionals: string[];
  /** `--help` or `-h` was given. */
  help: boolean;
}

/** Parses `argv` (without the command name) against the options in `spec` (keys with the leading `--`). */
export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, OptionSpec>>): ParsedArgs {
  const parsed: ParsedArgs = { options: new Map(), positionals: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      parsed.help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const option = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (option === undefined) throw new UsageError(`Unknown option: ${name}`);
    if (!option.value) {
      if (eq !== -1) throw new UsageError(`${name} takes no value`);
      parsed.options.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !isOptionLike(argv[i + 1])) value = argv[++i];
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    parsed.options.set(name, value);
  }
  return parsed;
}

// A following `--json` is a forgotten value, not one; a negative number is a value.
function isOptionLike(arg: string) {
  return arg.startsWith('--') || /^-[a-zA-Z]/.test(arg);
}

/** An integer in [min, max], or a UsageError naming the option and the range. */
export function integerArg(raw: string, name: string, min: number, max: number): number {
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

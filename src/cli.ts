#!/usr/bin/env node
// `socket-linger <command>`: the dispatch. Each command is a module with a
// one-line summary, its usage text and run(argv) → exit code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './cli-args';
import * as matrix from './cli-matrix';
import { PROXY_USAGE, proxyCommand } from './proxy';

interface Command {
  summary: string;
  usage: string;
  run(argv: readonly string[]): Promise<number>;
}

// The proxy parses its own options and reports its own usage errors (exit 2).
const proxy: Command = {
  summary: 'a TCP proxy passing FIN, half-close and RST on, with faults on demand',
  usage: PROXY_USAGE,
  async run(argv) {
    await proxyCommand([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  },
};

const COMMANDS: Record<string, Command> = {
  matrix,
  proxy,
};

function version(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

function usage() {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return `Usage: socket-linger <command> [options]
       socket-linger <command> --help
       socket-linger --version

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n')}

${Object.values(COMMANDS).map((c) => c.usage).join('\n\n')}`;
}

function fail(message: string, usageText: string): never {
  process.stderr.write(`socket-linger: ${message}\n\n${usageText}\n`);
  process.exit(2);
}

async function main(argv: string[]) {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === undefined) fail('missing command', usage());
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) fail(name.startsWith('-') ? `Unknown option: ${name}` : `Unknown command: ${name}`, usage());
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) fail(error.message, command.usage);
    throw error;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(2);
});

// The `socket-linger matrix` command, run as users run it: a child process.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { MATRIX_LINGER_MAX_SECONDS, MIN_PAYLOAD_BYTES } from '../dist/matrix.js';
import { runProcess } from './helpers';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const version = (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
// Small but valid: more than the kernel buffers hold, so the reset rows still lose data.
const BYTES = String(Math.max(MIN_PAYLOAD_BYTES, 1024 * 1024));

// Asynchronous: a synchronous 15 s child would starve vitest's worker RPC.
async function cliRun(args: string[], timeout = 60_000) {
  const { code, stdout, stderr } = await runProcess(process.execPath, [cli, ...args], timeout);
  return { status: code, stdout, stderr };
}

/** 14 rows: 7 scenarios, a reading and a non-reading peer each. */
const ROW_COUNT = 14;

/** The table's body lines (after the dashes, up to the blank line). */
function tableRows(stdout: string) {
  const lines = stdout.split('\n');
  const dashes = lines.findIndex((l) => /^-+  -+/.test(l));
  expect(dashes, stdout).toBeGreaterThan(0);
  const end = lines.indexOf('', dashes);
  return lines.slice(dashes + 1, end);
}

function hasIpv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

function hasScript() {
  return process.platform === 'linux' && spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
}

describe('socket-linger matrix', () => {
  it('runs every row live and reports each as documented (--json)', async () => {
    const run = await cliRun(['matrix', '--json', '--bytes', '2097152'], 120_000);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.ok).toBe(true);
    expect(report.rows).toHaveLength(14);
    const lingering = report.rows.filter((r: { setting: string }) => r.setting === 'SO_LINGER {on, n}');
    expect(lingering.map((r: { result: { type: string } }) => r.result.type)).toEqual(['graceful', 'abortive']);
    for (const row of report.rows.filter((r: { ok: boolean | null }) => r.ok !== null))
      expect(row.maxStallMs).toBeLessThan(report.stallLimitMs);
    if (process.platform === 'linux') {
      const trap = report.rows.filter((r: { close: string }) => r.close === 'destroy() (no library)');
      for (const row of trap) expect(row.maxStallMs).toBeGreaterThan(800); // the blocking close, shown
    }
  }, 120_000);

  it('prints the table: every row, its verdict, no progress lines when stdout is not a TTY (--linger=1 style)', async () => {
    const run = await cliRun(['matrix', `--bytes=${BYTES}`, '--linger=1'], 120_000);
    expect(run.status, run.stderr + run.stdout).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^socket-linger close matrix: .*n = 1 s, \d+\.\d MiB written per connection\n\n/);
    expect(run.stdout).not.toMatch(/\d+\/14 {2}/); // progress is for terminals only
    const rows = tableRows(run.stdout);
    expect(rows).toHaveLength(ROW_COUNT);
    const verdicts = rows.map((r) => r.trimEnd().split(/\s+/).pop());
    expect(verdicts.filter((v) => v === 'info')).toHaveLength(2); // the raw destroy() trap
    expect(verdicts.filter((v) => v === 'ok')).toHaveLength(ROW_COUNT - 2);
    const row = (close: string, setting: string, peer: string) =>
      rows.find((r) => r.startsWith(close) && r.includes(setting) && r.includes(peer)) ?? '';
    expect(row('closeSocket()', 'SO_LINGER {on, 0}', 'reads')).toMatch(/abortive, no wait, not delivered .*RST .*ok$/);
    expect(row('closeSocket()', 'SO_LINGER {on, n}', 'does not read')).toMatch(/abortive, waited, timed out, not delivered .*RST .*abortive at 1 s; RST +ok$/);
    expect(row('gracefulShutdown()', 'timeout n s', 'reads')).toMatch(/graceful, waited, delivered .*FIN .*ok$/);
    expect(run.stdout).toMatch(/All 12 checked rows behave as documented/);
  }, 120_000);

  it('shows each row as it finishes on a TTY (under script(1))', { skip: !hasScript(), timeout: 120_000 }, async () => {
    // script(1) runs without the sanitizer runtime (a peer's environment);
    // the Node inside loads the addon and gets it back, where it is set.
    const sanitizer = ['LD_PRELOAD', 'ASAN_OPTIONS'].filter((name) => process.env[name]).map((name) => `${name}=${process.env[name]}`);
    const command = [...(sanitizer.length ? ['env', ...sanitizer] : []), process.execPath, cli, 'matrix', '--bytes', BYTES, '--linger', '1']
      .map((a) => `'${a}'`).join(' ');
    const run = await runProcess('script', ['-qfec', command, '/dev/null'], 120_000);
    expect(run.code, run.stdout).toBe(0);
    const progress = run.stdout.split(/\r?\n/).filter((l) => /^\s*\d+\/14 {2}/.test(l.replace(/^.*\r\x1b\[K/, '')));
    expect(progress).toHaveLength(ROW_COUNT);
    progress.forEach((line, i) => {
      const shown = line.replace(/^.*\r\x1b\[K/, ''); // the "..." line, overwritten by the verdict
      expect(line).toContain(' ...'); // announced as it started
      expect(shown).toMatch(new RegExp(`^\\s*${i + 1}/14  .*, peer (reads|does not read): (ok|info) \\(`));
    });
    expect(tableRows(run.stdout.replace(/\r/g, ''))).toHaveLength(ROW_COUNT); // then the table
  });

  it('runs on IPv6 loopback with --host ::1', async (ctx) => {
    if (!(await hasIpv6Loopback())) ctx.skip();
    const run = await cliRun(['matrix', '--json', '--host', '::1', '--bytes', BYTES], 120_000);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ host: '::1', ok: true });
    expect(report.rows).toHaveLength(ROW_COUNT);
  }, 120_000);

  it('--version prints the package version; --help documents every option', async () => {
    for (const flag of ['--version', '-v']) {
      const run = await cliRun([flag]);
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(`${version}\n`);
    }
    for (const args of [['--help'], ['matrix', '--help'], ['matrix', '-h']]) {
      const help = await cliRun(args);
      expect(help.status, args.join(' ')).toBe(0);
      expect(help.stdout).toMatch(/Usage: socket-linger matrix/);
      for (const option of ['--json', '--linger <s>', '--bytes <n>', '--host <address>', '--help'])
        expect(help.stdout, option).toContain(option);
      expect(help.stdout).toContain(`1 to ${MATRIX_LINGER_MAX_SECONDS}`);
      expect(help.stdout).toContain(`${MIN_PAYLOAD_BYTES} to`);
    }
    for (const flag of ['--help', '-h']) {
      const help = await cliRun([flag]);
      expect(help.status, flag).toBe(0);
      // The commands, their summaries in one column; then each command's usage after a blank line.
      expect(help.stdout, flag).toContain('\nCommands:\n' +
        '  matrix  run the Winsock close matrix live on loopback\n' +
        '  proxy   a TCP proxy passing FIN, half-close and RST on, with faults on demand\n\n' +
        'Usage: socket-linger matrix ');
      expect(help.stdout, flag).toMatch(/\n {2}-h, --help +show this help\n\nUsage: socket-linger proxy /);
    }
  });

  it('an error it did not expect is shown with its stack, exit 2', async () => {
    const fixture = join(__dirname, 'fixtures', 'throwing-close.cjs');
    const { code, stdout, stderr } = await runProcess(process.execPath, ['-r', fixture, cli, 'matrix', '--bytes', BYTES], 60_000);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^Error: the close broke \(test\/fixtures\/throwing-close\.cjs\)\n {4}at /);
    expect(stderr).not.toContain('Usage:');
    expect(stdout).toMatch(/^socket-linger close matrix: .*\n\n$/); // the heading, no table
  });

  it('refuses unknown commands and options, and bad values, with exit code 2 and a message', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing command/],
      [['nonsense'], /Unknown command: nonsense/],
      [['--frob'], /Unknown option: --frob/],
      [['matrix', '--frob'], /Unknown option: --frob/],
      [['matrix', '--frob=1'], /Unknown option: --frob/],
      [['matrix', 'extra'], /Unexpected argument: extra/],
      [['matrix', '--json=yes'], /--json takes no value/],
      [['matrix', '--linger'], /--linger needs a value/],
      [['matrix', '--linger', '--json'], /--linger needs a value/],
      [['matrix', '--linger', 'x'], /--linger must be an integer from 1 to \d+ \(got "x"\)/],
      [['matrix', '--linger=0'], /--linger must be an integer from 1 to/],
      [['matrix', '--linger', '1.5'], /--linger must be an integer/],
      [['matrix', '--linger', '2147483648'],
        new RegExp(`--linger must be at most ${MATRIX_LINGER_MAX_SECONDS} s .*linger limit here is \\d+ s.*Node timer \\(2147483647 ms\\)`)],
      [['matrix', `--linger=${MATRIX_LINGER_MAX_SECONDS + 1}`], /--linger must be at most/],
      [['matrix', '--bytes', '100'], new RegExp(`--bytes must be at least ${MIN_PAYLOAD_BYTES} \\(got 100\\)`)],
      [['matrix', `--bytes=${MIN_PAYLOAD_BYTES - 1}`], /--bytes must be at least/],
      [['matrix', '--bytes', '-5'], /--bytes must be an integer from 1/],
      [['matrix', '--host', 'localhost'], /--host must be an IP address/],
      // Spaces around a number are still that number (as integerArg reads it).
      [['matrix', '--linger', ' 2147483648'], /--linger must be at most/],
      [['matrix', '--linger', '2147483648 '], /--linger must be at most/],
      // The largest n passes the limit (the bad host stops the run).
      [['matrix', `--linger=${MATRIX_LINGER_MAX_SECONDS}`, '--host', 'localhost'], /--host must be an IP address/],
      [['matrix', '--linger=1', '--host', 'localhost'], /--host must be an IP address/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cliRun(args, 20_000)));
    for (const [i, [args, message]] of cases.entries()) {
      const run = runs[i];
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.stderr, args.join(' ')).toMatch(/Usage: socket-linger/);
      expect(run.stderr, args.join(' ')).not.toMatch(/Warning|RangeError|\n {4}at /); // no warnings, no stack
      expect(run.stdout, args.join(' ')).toBe('');
    }
  }, 60_000);

  it('a --host that is no local address is a usage error, not a stack', async () => {
    // 192.0.2.1 (TEST-NET-1) is assigned to no interface here.
    const run = await cliRun(['matrix', '--host', '192.0.2.1', '--bytes', BYTES], 20_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--host 192\.0\.2\.1: not a local address here \(EADDRNOTAVAIL\)/);
  });
});

#!/usr/bin/env node
// `socket-linger matrix`: runs the Winsock close matrix live on this machine.
import { arch, platform, release } from 'node:os';
import { runMatrix, STALL_LIMIT_MS, type MatrixRow } from './matrix';
import { proxyCommand } from './proxy';

const USAGE = `Usage: socket-linger matrix [--json] [--linger <seconds>] [--bytes <n>]

Runs every row of the Winsock close matrix (closeSocket with each linger
setting, abortiveClose, gracefulShutdown, and a raw destroy() with a kernel
linger) on loopback, with a peer that reads and one that does not, and shows
what the peer saw. Exits 1 if anything differs from the Winsock documentation.

  --json             print the rows as JSON
  --linger <s>       n for the lingering rows, in seconds (default 1)
  --bytes <n>        bytes written before each close (default 8388608)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]) {
  const options = { json: false, lingerSeconds: 1, payloadBytes: 8 * 1024 * 1024 };
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (argv[0] !== 'matrix') fail(argv[0] ? `Unknown command: ${argv[0]}` : 'Missing command.');
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) fail(`${arg} needs a positive integer`);
      return n;
    };
    if (arg === '--json') options.json = true;
    else if (arg === '--linger') options.lingerSeconds = value();
    else if (arg === '--bytes') options.payloadBytes = value();
    else fail(`Unknown option: ${arg}`);
  }
  return options;
}

function mib(bytes: number) {
  return (bytes / 1024 / 1024).toFixed(1);
}

function describeResult(row: MatrixRow) {
  const r = row.result;
  if (!r) return 'returned';
  const delivered = r.delivered === null ? '' : r.delivered ? 'delivered' : 'not delivered';
  return [r.type, r.waited ? 'waited' : 'no wait', r.timedOut ? 'timed out' : '', delivered].filter(Boolean).join(', ');
}

function table(rows: MatrixRow[]) {
  const header = ['Close', 'Setting', 'Peer', 'Returned', 'Took', 'Peer saw', 'Loop stall', 'Documented behaviour', 'Verdict'];
  const body = rows.map((row) => [
    row.close,
    row.setting,
    row.peer,
    describeResult(row),
    `${row.tookMs} ms`,
    `${mib(row.peerBytes)}/${mib(row.totalBytes)} MiB, ${row.peerSaw}`,
    `${row.maxStallMs} ms`,
    row.expected,
    row.ok === null ? 'info' : row.ok ? 'ok' : 'MISMATCH',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function main() {
  if (process.argv[2] === 'proxy') return proxyCommand(process.argv.slice(3));
  const options = parseArgs(process.argv.slice(2));
  const rows = await runMatrix(options);
  const mismatches = rows.filter((r) => r.ok === false);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({
      platform: process.platform, arch: process.arch, node: process.version,
      lingerSeconds: options.lingerSeconds, payloadBytes: options.payloadBytes,
      stallLimitMs: STALL_LIMIT_MS, ok: mismatches.length === 0, rows,
    }, null, 2)}\n`);
  } else {
    process.stdout.write(`socket-linger close matrix: ${platform()} ${release()} ${arch()}, Node ${process.version}, ` +
      `n = ${options.lingerSeconds} s, ${mib(options.payloadBytes)} MiB written per connection\n\n`);
    process.stdout.write(`${table(rows)}\n\n`);
    for (const row of mismatches)
      process.stdout.write(`MISMATCH ${row.close} ${row.setting}, peer ${row.peer}: ${row.mismatches.join('; ')}\n`);
    process.stdout.write(mismatches.length === 0
      ? `All ${rows.filter((r) => r.ok !== null).length} checked rows behave as documented; none stalled the loop over ${STALL_LIMIT_MS} ms ('info' rows show the raw kernel trap).\n`
      : `${mismatches.length} row(s) differ from the Winsock documentation.\n`);
  }
  process.exitCode = mismatches.length === 0 ? 0 : 1;
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(2);
});

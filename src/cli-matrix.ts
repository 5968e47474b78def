// `socket-linger matrix`: runs the Winsock close matrix live on this machine.
import { isIP } from 'node:net';
import { arch, platform, release } from 'node:os';
import { integerArg, parseArgs, UsageError } from './cli-args';
import {
  DEFAULT_PAYLOAD_BYTES, MATRIX_LINGER_MAX_SECONDS, MIN_PAYLOAD_BYTES, runMatrix, STALL_LIMIT_MS, TIMER_MAX_MS,
  type MatrixRow,
} from './matrix';
import { LINGER_MAX_SECONDS } from './validate';

export const summary = 'run the Winsock close matrix live on loopback';

export const usage = `Usage: socket-linger matrix [--json] [--linger <seconds>] [--bytes <n>] [--host <address>]

Runs every row of the Winsock close matrix (closeSocket with each linger
setting, abortiveClose, gracefulShutdown, and a raw destroy() with a kernel
linger) on loopback, with a peer that reads and one that does not, and shows
what the peer saw. On a terminal each row is shown as it finishes; the table
follows. Exits 0 if every row behaves as the Winsock documentation says, 1 if
any differs, 2 on a usage error.

Options (--name value and --name=value alike):
  --json             print one JSON report instead of the table (no progress)
  --linger <s>       n for the lingering rows, in seconds: 1 to ${MATRIX_LINGER_MAX_SECONDS}
                     (default 1; each lingering row takes about n s)
  --bytes <n>        bytes written before each close: ${MIN_PAYLOAD_BYTES} to ${2 ** 30}
                     (default ${DEFAULT_PAYLOAD_BYTES}); fewer fit in the kernel buffers,
                     and the rows that must lose unsent data could not
  --host <address>   the loopback address both ends use: 127.0.0.1 (default),
                     ::1 for IPv6, or another local IP address
  -h, --help         show this help`;

const OPTIONS = {
  '--json': { value: false },
  '--linger': { value: true },
  '--bytes': { value: true },
  '--host': { value: true },
} as const;

interface Options { json: boolean; lingerSeconds: number; payloadBytes: number; host: string }

function parseOptions(argv: readonly string[]): Options | 'help' {
  const { options, positionals, help } = parseArgs(argv, OPTIONS);
  if (help) return 'help';
  if (positionals.length > 0) throw new UsageError(`Unexpected argument: ${positionals[0]}`);
  const linger = options.get('--linger') as string | undefined;
  const bytes = options.get('--bytes') as string | undefined;
  const host = (options.get('--host') as string | undefined) ?? '127.0.0.1';
  if (linger !== undefined && /^\s*\d+\s*$/.test(linger) && Number(linger) > MATRIX_LINGER_MAX_SECONDS)
    throw new UsageError(`--linger must be at most ${MATRIX_LINGER_MAX_SECONDS} s (got ${linger}): ` +
      `the linger limit here is ${LINGER_MAX_SECONDS} s, and n s plus 5 s must fit one Node timer (${TIMER_MAX_MS} ms)`);
  if (isIP(host) === 0) throw new UsageError(`--host must be an IP address such as 127.0.0.1 or ::1 (got ${JSON.stringify(host)})`);
  return {
    json: options.has('--json'),
    lingerSeconds: linger === undefined ? 1 : integerArg(linger, '--linger', 1, MATRIX_LINGER_MAX_SECONDS),
    payloadBytes: bytes === undefined ? DEFAULT_PAYLOAD_BYTES : bytesArg(bytes),
    host,
  };
}

function bytesArg(raw: string) {
  const n = integerArg(raw, '--bytes', 1, 2 ** 30);
  if (n < MIN_PAYLOAD_BYTES)
    throw new UsageError(`--bytes must be at least ${MIN_PAYLOAD_BYTES} (got ${n}): the kernel buffers hold ` +
      'smaller payloads whole, so the rows that reset could not show unsent data lost');
  return n;
}

function mib(bytes: number) {
  return (bytes / 1024 / 1024).toFixed(1);
}

function verdict(row: MatrixRow) {
  return row.ok === null ? 'info' : row.ok ? 'ok' : 'MISMATCH';
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
    verdict(row),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Row-by-row lines for a terminal: `running…` while a row runs, its verdict when done. */
function progress(out: NodeJS.WriteStream) {
  const label = (row: Pick<MatrixRow, 'close' | 'setting' | 'peer'>, index: number, total: number) =>
    `${String(index + 1).padStart(String(total).length)}/${total}  ${row.close} ${row.setting}, peer ${row.peer}`;
  return {
    onRowStart: (row: Pick<MatrixRow, 'close' | 'setting' | 'peer'>, index: number, total: number) => {
      out.write(`${label(row, index, total)} ...`);
    },
    onRow: (row: MatrixRow, index: number, total: number) => {
      out.write(`\r\x1b[K${label(row, index, total)}: ${verdict(row)} (${row.tookMs} ms, peer saw ${row.peerSaw})\n`);
    },
  };
}

/** Runs the command; resolves with the exit code. Throws UsageError for a usage mistake. */
export async function run(argv: readonly string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const live = !options.json && process.stdout.isTTY === true;
  if (!options.json)
    process.stdout.write(`socket-linger close matrix: ${platform()} ${release()} ${arch()}, Node ${process.version}, ` +
      `n = ${options.lingerSeconds} s, ${mib(options.payloadBytes)} MiB written per connection` +
      `${options.host === '127.0.0.1' ? '' : `, on ${options.host}`}\n\n`);
  let rows: MatrixRow[];
  try {
    rows = await runMatrix({ ...options, ...(live ? progress(process.stdout) : {}) });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code;
    if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')
      throw new UsageError(`--host ${options.host}: not a local address here (${code})`);
    throw error;
  }
  const mismatches = rows.filter((r) => r.ok === false);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({
      platform: process.platform, arch: process.arch, node: process.version,
      lingerSeconds: options.lingerSeconds, payloadBytes: options.payloadBytes, host: options.host,
      stallLimitMs: STALL_LIMIT_MS, ok: mismatches.length === 0, rows,
    }, null, 2)}\n`);
  } else {
    if (live) process.stdout.write('\n');
    process.stdout.write(`${table(rows)}\n\n`);
    for (const row of mismatches)
      process.stdout.write(`MISMATCH ${row.close} ${row.setting}, peer ${row.peer}: ${row.mismatches.join('; ')}\n`);
    process.stdout.write(mismatches.length === 0
      ? `All ${rows.filter((r) => r.ok !== null).length} checked rows behave as documented; none stalled the loop over ${STALL_LIMIT_MS} ms ('info' rows show the raw kernel trap).\n`
      : `${mismatches.length} row(s) differ from the Winsock documentation.\n`);
  }
  return mismatches.length === 0 ? 0 : 1;
}

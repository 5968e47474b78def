// src/matrix.ts, the engine of `socket-linger matrix`: every row run live in
// this process; then its verdicts checked against rows that went wrong (a
// matrix that cannot say MISMATCH proves nothing); then the CLI run with an
// abortiveClose() that lies, judged by what its peers saw.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_PAYLOAD_BYTES, initialReceiveBuffer, MATRIX_LINGER_MAX_SECONDS, MIN_PAYLOAD_BYTES, mismatchesOf,
  runMatrix, STALL_LIMIT_MS, TIMER_MAX_MS, type MatrixRow,
} from '../dist/matrix.js';
import { LINGER_MAX_SECONDS } from '../dist/validate.js';
import { runProcess } from './helpers';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const lyingClose = join(__dirname, 'fixtures', 'lying-abortive-close.cjs');

/** What the Winsock documentation says, row by row (n = 1 s), in table order. */
const DOCUMENTED: [close: string, setting: string, reads: string, doesNotRead: string][] = [
  ['closeSocket()', 'SO_DONTLINGER (off)', 'graceful, no wait (delivered unknown); every byte + FIN', 'same'],
  ['closeSocket()', 'SO_LINGER {on, 0}', 'abortive, no wait; RST, unsent data lost', 'same'],
  ['closeSocket()', 'SO_LINGER {on, n}', 'graceful, waits < 1 s, delivered; every byte + FIN', 'abortive at 1 s; RST'],
  ['abortiveClose()', 'any', 'abortive, no wait; RST', 'same'],
  ['gracefulShutdown()', 'timeout n s', "graceful after the peer's FIN, delivered; every byte + FIN", 'abortive at 1 s; RST'],
  ['destroy() (no library)', 'kernel SO_LINGER {on, n}',
    process.platform === 'linux' ? 'Linux: blocks the event loop up to 1 s' : 'returns at once (the kernel does not wait)', 'same'],
  ['destroy()', 'setLinger(s, true, n)', 'no stall; kernel-queued bytes + FIN', 'same'],
];

describe('runMatrix, live on loopback', () => {
  it('runs the 14 rows in table order, each as documented, announcing each as it starts and ends', async () => {
    const events: string[] = [];
    const rows = await runMatrix({
      payloadBytes: MIN_PAYLOAD_BYTES,
      lingerSeconds: 1,
      onRowStart: (row, index, total) => events.push(`start ${index}/${total} ${row.close} ${row.setting} ${row.peer}`),
      onRow: (row, index, total) => events.push(`end ${index}/${total} ${row.close} ${row.setting} ${row.peer}`),
    });
    expect(rows).toHaveLength(14);
    const plan = DOCUMENTED.flatMap(([close, setting, reads, doesNotRead]) => [
      { close, setting, peer: 'reads', expected: reads },
      { close, setting, peer: 'does not read', expected: doesNotRead === 'same' ? reads : doesNotRead },
    ]);
    expect(events).toEqual(plan.flatMap((p, i) => [
      `start ${i}/14 ${p.close} ${p.setting} ${p.peer}`, `end ${i}/14 ${p.close} ${p.setting} ${p.peer}`]));
    for (const [i, row] of rows.entries()) {
      const informational = row.close === 'destroy() (no library)';
      expect(row, `${row.close} ${row.setting} ${row.peer}: ${row.mismatches.join('; ')}`).toMatchObject({
        ...plan[i], totalBytes: MIN_PAYLOAD_BYTES, ok: informational ? null : true, mismatches: [],
      });
      expect(row.peerSaw, `${row.close} ${row.peer}`).toMatch(/^(FIN|RST)$/);
    }
    const row = (close: string, setting: string, peer: string) =>
      rows.find((r) => r.close === close && r.setting === setting && r.peer === peer)!;
    // By the peer: the rows that reset lost data, the graceful ones did not.
    expect(row('closeSocket()', 'SO_LINGER {on, 0}', 'reads').peerBytes).toBeLessThan(MIN_PAYLOAD_BYTES);
    expect(row('gracefulShutdown()', 'timeout n s', 'reads')).toMatchObject({ peerSaw: 'FIN', peerBytes: MIN_PAYLOAD_BYTES });
    const timedOut = row('closeSocket()', 'SO_LINGER {on, n}', 'does not read');
    expect(timedOut.result).toMatchObject({ type: 'abortive', timedOut: true });
    expect(Math.abs(timedOut.tookMs - 1000)).toBeLessThanOrEqual(100);
    if (process.platform === 'linux') // the raw kernel linger, in this very loop: shown, not judged
      expect(row('destroy() (no library)', 'kernel SO_LINGER {on, n}', 'does not read').maxStallMs).toBeGreaterThan(800);
  }, 120_000);

  it('sizes its payloads from the kernel: twice the initial receive buffer (tcp_rmem), 8 MiB by default', () => {
    const expected = process.platform === 'linux'
      ? Number(readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').split(/[ \t]+/)[1])
      : 128 * 1024;
    expect(initialReceiveBuffer()).toBe(expected);
    expect(MIN_PAYLOAD_BYTES).toBe(2 * expected);
    expect(DEFAULT_PAYLOAD_BYTES).toBe(8 * 1024 * 1024);
    // n s plus the 5 s verdict grace fit one Node timer; and the platform's linger limit.
    expect(MATRIX_LINGER_MAX_SECONDS).toBe(Math.min(LINGER_MAX_SECONDS, Math.floor((TIMER_MAX_MS - 5000) / 1000)));
    expect(TIMER_MAX_MS).toBe(2 ** 31 - 1);
  });
});

/** A row as the documentation says it should end (n = 1 s, 1,000 bytes written). */
function goodRow(close: string, setting: string, peer: MatrixRow['peer']): MatrixRow {
  const total = 1000;
  const graceful = { peerSaw: 'FIN' as const, peerBytes: total };
  const reset = { peerSaw: 'RST' as const, peerBytes: 10 };
  const result = (type: 'graceful' | 'abortive', waited: boolean, timedOut: boolean, delivered: boolean | null) =>
    ({ result: { type, waited, timedOut, delivered, elapsedMs: 1 } });
  const reads = peer === 'reads';
  const byRow: Record<string, Partial<MatrixRow>> = {
    'SO_DONTLINGER (off)': { ...result('graceful', false, false, null), ...graceful },
    'SO_LINGER {on, 0}': { ...result('abortive', false, false, false), ...reset },
    'SO_LINGER {on, n}': reads
      ? { ...result('graceful', true, false, true), ...graceful }
      : { ...result('abortive', true, true, false), ...reset, tookMs: 1000 },
    any: { ...result('abortive', false, false, false), ...reset },
    'timeout n s': reads
      ? { ...result('graceful', true, false, true), ...graceful }
      : { ...result('abortive', true, true, false), ...reset, tookMs: 1000 },
    'kernel SO_LINGER {on, n}': { result: null, ...reset, maxStallMs: 1000 },
    'setLinger(s, true, n)': { result: null, ...graceful },
  };
  return {
    close, setting, peer, result: null, tookMs: 1, totalBytes: total, maxStallMs: 0, expected: '', ok: null,
    mismatches: [], peerBytes: 0, peerSaw: 'nothing', ...byRow[setting],
  };
}

describe('mismatchesOf: the verdicts say MISMATCH when a row went wrong', () => {
  const ALL = DOCUMENTED.flatMap(([close, setting]) =>
    (['reads', 'does not read'] as const).map((peer) => goodRow(close, setting, peer)));
  const judge = (row: MatrixRow, changes: Partial<MatrixRow> = {}, n = 1) => mismatchesOf({ ...row, ...changes }, n);
  const find = (setting: string, peer: MatrixRow['peer'] = 'reads') => ALL.find((r) => r.setting === setting && r.peer === peer)!;
  const withResult = (row: MatrixRow, changes: object) => ({ result: { ...row.result!, ...changes } });

  it('a row as documented has no mismatch; the raw trap rows are never judged', () => {
    for (const row of ALL) {
      const trap = row.close === 'destroy() (no library)';
      expect(judge(row), `${row.setting} ${row.peer}`).toEqual(trap ? null : []);
    }
    const trap = find('kernel SO_LINGER {on, n}');
    expect(judge(trap, { peerSaw: 'nothing', maxStallMs: 5000, result: null })).toBeNull();
  });

  it('names each part of the close result that differs', () => {
    const off = find('SO_DONTLINGER (off)');
    expect(judge(off, withResult(off, { type: 'abortive' }))).toEqual(['type abortive, expected graceful']);
    expect(judge(off, withResult(off, { waited: true }))).toEqual(['waited true, expected false']);
    expect(judge(off, withResult(off, { timedOut: true }))).toEqual(['timedOut true, expected false']);
    expect(judge(off, withResult(off, { delivered: true }))).toEqual(['delivered true, expected null']);
    expect(judge(off, { result: null })).toEqual(['no result']);
    const abortive = find('any', 'does not read');
    expect(judge(abortive, withResult(abortive, { type: 'graceful', delivered: true }))).toEqual(
      ['type graceful, expected abortive', 'delivered true, expected false']);
    for (const setting of ['SO_LINGER {on, n}', 'timeout n s']) {
      const reads = find(setting, 'reads');
      expect(judge(reads, withResult(reads, { waited: false, delivered: false }))).toEqual(
        ['waited false, expected true', 'delivered false, expected true']);
      const late = find(setting, 'does not read');
      expect(judge(late, withResult(late, { type: 'graceful', timedOut: false }))).toEqual(
        ['type graceful, expected abortive', 'timedOut false, expected true']);
    }
    expect(judge(find('SO_LINGER {on, 0}'), withResult(find('SO_LINGER {on, 0}'), { waited: true })))
      .toEqual(['waited true, expected false']);
  });

  it('judges by the peer: an RST where a FIN was due, bytes missing, every byte despite a reset', () => {
    for (const row of ALL.filter((r) => r.peerSaw === 'FIN')) {
      expect(judge(row, { peerSaw: 'RST' }), row.setting).toEqual(['peer saw RST, expected FIN']);
      if (row.setting !== 'setLinger(s, true, n)') // a destroy() delivers what the kernel held: no byte count
        expect(judge(row, { peerBytes: 999 }), row.setting).toEqual(['peer got 999 of 1000 bytes']);
    }
    expect(judge(find('setLinger(s, true, n)'), { peerSaw: 'nothing' })).toEqual(['peer saw nothing, expected FIN']);
    for (const row of ALL.filter((r) => r.peerSaw === 'RST' && r.close !== 'destroy() (no library)')) {
      expect(judge(row, { peerSaw: 'FIN' }), row.setting).toEqual(['peer saw FIN, expected RST']);
      expect(judge(row, { peerBytes: 1000 }), row.setting).toEqual(['peer got every byte despite the reset']);
      expect(judge(row, { peerBytes: 999 }), row.setting).toEqual([]);
    }
  });

  it('the closes that must not wait settle under 100 ms; the lingering reset at n s, within 100 ms', () => {
    for (const setting of ['SO_DONTLINGER (off)', 'SO_LINGER {on, 0}']) {
      expect(judge(find(setting), { tookMs: 99 }), setting).toEqual([]);
      expect(judge(find(setting), { tookMs: 100 }), setting).toEqual(['did not settle at once']);
    }
    const late = find('SO_LINGER {on, n}', 'does not read');
    for (const tookMs of [900, 1000, 1100]) expect(judge(late, { tookMs }), String(tookMs)).toEqual([]);
    expect(judge(late, { tookMs: 1101 })).toEqual(['settled at 1101 ms, not 1000']);
    expect(judge(late, { tookMs: 899 })).toEqual(['settled at 899 ms, not 1000']);
    expect(judge(late, { tookMs: 1000 }, 2)).toEqual(['settled at 1000 ms, not 2000']);
    expect(judge(late, { tookMs: 2050 }, 2)).toEqual([]);
  });

  it(`a stall of ${STALL_LIMIT_MS} ms or more is a mismatch on every judged row`, () => {
    for (const row of ALL.filter((r) => r.close !== 'destroy() (no library)')) {
      expect(judge(row, { maxStallMs: STALL_LIMIT_MS - 1 }), row.setting).toEqual([]);
      expect(judge(row, { maxStallMs: STALL_LIMIT_MS }), row.setting).toEqual([`event loop stalled ${STALL_LIMIT_MS} ms`]);
    }
  });

  it('refuses a row that is not in the matrix', () => {
    expect(() => judge(find('any'), { setting: 'SO_LINGER {on, 7}' }))
      .toThrow(new RangeError('Not a row of the matrix: abortiveClose(), SO_LINGER {on, 7}'));
  });
});

describe('socket-linger matrix with an abortiveClose() that sends a FIN and says abortive', () => {
  const BYTES = String(Math.max(MIN_PAYLOAD_BYTES, 1024 * 1024));
  const runLying = (args: string[]) => runProcess(process.execPath, ['-r', lyingClose, cli, 'matrix', '--bytes', BYTES, ...args], 120_000);

  it('exits 1 and names both rows and what their peers saw, in the table and in --json', async () => {
    const [table, json] = await Promise.all([runLying([]), runLying(['--json'])]);
    expect(table.code, table.stderr + table.stdout).toBe(1);
    const lines = table.stdout.split('\n');
    const header = lines.find((l) => l.startsWith('Close'))!;
    expect(header.split(/ {2,}/)).toEqual(
      ['Close', 'Setting', 'Peer', 'Returned', 'Took', 'Peer saw', 'Loop stall', 'Documented behaviour', 'Verdict']);
    const body = lines.slice(lines.indexOf(header) + 2, lines.indexOf('', lines.indexOf(header)));
    expect(body).toHaveLength(14);
    // Columns line up: each row's verdict starts under the header's.
    for (const line of body) expect(line.search(/(ok|info|MISMATCH)$/), line).toBe(header.indexOf('Verdict'));
    const lied = body.filter((l) => l.startsWith('abortiveClose()'));
    expect(lied).toHaveLength(2);
    for (const line of lied) {
      expect(line).toMatch(/^abortiveClose\(\) +any +(reads|does not read) +abortive, no wait, not delivered +\d+(\.\d+)? ms +1\.0\/1\.0 MiB, FIN +\d+(\.\d+)? ms +abortive, no wait; RST +MISMATCH$/);
    }
    expect(body.filter((l) => l.endsWith(' ok'))).toHaveLength(10);
    expect(body.filter((l) => /destroy\(\).*returned/.test(l))).toHaveLength(4); // no result: "returned"
    expect(body.find((l) => l.includes('SO_DONTLINGER') && l.includes('reads'))).toMatch(/ graceful, no wait +\d/);
    expect(table.stdout).toContain('MISMATCH abortiveClose() any, peer reads: peer saw FIN, expected RST; peer got every byte despite the reset\n');
    expect(table.stdout).toContain('MISMATCH abortiveClose() any, peer does not read: peer saw FIN, expected RST; peer got every byte despite the reset\n');
    expect(table.stdout).toMatch(/\n2 row\(s\) differ from the Winsock documentation\.\n$/);
    expect(table.stdout).not.toContain('behave as documented');

    expect(json.code, json.stderr).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; rows: MatrixRow[] };
    expect(report.ok).toBe(false);
    const failed = report.rows.filter((r) => r.ok === false);
    expect(failed.map((r) => [r.close, r.peer, r.peerSaw, r.peerBytes])).toEqual([
      ['abortiveClose()', 'reads', 'FIN', Number(BYTES)], ['abortiveClose()', 'does not read', 'FIN', Number(BYTES)]]);
    expect(report.rows.filter((r) => r.ok === true)).toHaveLength(10);
  }, 120_000);
});

// The `socket-linger matrix` command, run as users run it: a child process.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const cli = join(__dirname, '..', 'dist', 'cli.js');

describe('socket-linger matrix', () => {
  it('runs every row live and reports each as documented (--json)', () => {
    const run = spawnSync(process.execPath, [cli, 'matrix', '--json', '--bytes', '2097152'], { encoding: 'utf8', timeout: 120_000 });
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

  it('prints a table, and refuses unknown commands with exit code 2', () => {
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: socket-linger matrix/);
    const bad = spawnSync(process.execPath, [cli, 'nonsense'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/Unknown command: nonsense/);
    const badOption = spawnSync(process.execPath, [cli, 'matrix', '--linger', 'x'], { encoding: 'utf8' });
    expect(badOption.status).toBe(2);
  });
});

// Setup file for the mutation run only (test/mutation/vitest.mutation.config.ts).
// Stryker's vitest runner sets the active mutant and gathers coverage inside
// the test's own thread; the suite also runs the package in child processes
// (the CLI, cluster workers, python-judged Node peers) and worker threads.
// So that a mutant there counts too:
// - mutant runs: the active mutant goes into the environment, which children
//   and worker threads inherit (Stryker's instrumented code reads it there);
// - the dry run: each Node child and worker thread preloads child-report.cjs,
//   which writes what it covered to a file tagged with the test that started
//   it; afterAll adds those to that test's coverage before Stryker collects it.
import { afterAll, beforeEach, inject } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire, syncBuiltinESMExports } from 'node:module';

type Coverage = Record<string, number>;
interface MutantCoverage { static: Coverage; perTest: Record<string, Coverage> }

const namespace = (inject as (key: string) => unknown)('globalNamespace') as string | undefined;
const mode = (inject as (key: string) => unknown)('mode') as string | undefined;
const ns = namespace ? ((globalThis as any)[namespace] ??= {}) : undefined;
const ACTIVE_ENV = '__STRYKER_ACTIVE_MUTANT__';

if (ns && mode === 'mutant') {
  // Active before the test file imports dist/, not from Stryker's beforeAll:
  // module-level code (constants such as poller.ts's sentinels) runs once, at
  // that import, and would otherwise never see its mutant. Each test file
  // runs in a fresh process (vitest.config's forks pool), so nothing carries
  // over from one mutant to the next.
  const active = (inject as (key: string) => unknown)('activeMutant');
  if (active !== undefined) {
    ns.activeMutant = active;
    process.env[ACTIVE_ENV] = String(active);
  }
} else if (ns && mode === 'dry-run') {
  const dir = mkdtempSync(join(tmpdir(), 'stryker-children-'));
  const preload = join(__dirname, 'child-report.cjs');
  process.env.STRYKER_CHILD_COVERAGE_DIR = dir;
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`.trim();
  // NODE_OPTIONS reaches new processes only: worker threads get the preload
  // in their execArgv (Worker is patched before the test file imports it).
  const threads = createRequire(__filename)('node:worker_threads') as typeof import('node:worker_threads');
  const { Worker } = threads;
  (threads as { Worker: unknown }).Worker = class WorkerWithCoverage extends Worker {
    constructor(file: string | URL, options: import('node:worker_threads').WorkerOptions = {}) {
      super(file, { ...options, execArgv: [...(options.execArgv ?? process.execArgv), '--require', preload] });
    }
  };
  syncBuiltinESMExports();
  beforeEach(({ task }) => {
    process.env.STRYKER_CHILD_TEST_ID = rawTestId(task);
  });
  afterAll(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300)); // children killed at the end write once more
    ns.mutantCoverage ??= { static: {}, perTest: {} };
    const coverage = ns.mutantCoverage as MutantCoverage;
    for (const name of readdirSync(dir)) {
      let report: { testId: string | null; coverage: MutantCoverage | null };
      try { report = JSON.parse(readFileSync(join(dir, name), 'utf8')); } catch { continue; }
      if (!report.coverage) continue;
      const hits: Coverage = { ...report.coverage.static };
      for (const perTest of Object.values(report.coverage.perTest ?? {})) Object.assign(hits, perTest);
      const target = report.testId ? (coverage.perTest[report.testId] ??= {}) : coverage.static;
      for (const [id, n] of Object.entries(hits)) target[id] = (target[id] ?? 0) + n;
    }
    rmSync(dir, { recursive: true, force: true });
  });
}

// Stryker's own test id (its stryker-setup.js): the file, then the names.
function rawTestId(task: { name: string; file?: { filepath: string }; suite?: { name: string; suite?: unknown } }) {
  const parts = [task.name];
  for (let suite = task.suite as { name: string; suite?: unknown } | undefined; suite; suite = suite.suite as typeof suite) parts.unshift(suite.name);
  return `${task.file?.filepath ?? 'unknown.js'}#${parts.join(' ').trim()}`;
}

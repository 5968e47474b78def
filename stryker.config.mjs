// Mutation testing (npm run test:mutation, scripts/test-mutation.sh): Stryker
// instruments src/, the sandbox compiles it to dist/ (the tests import dist/),
// and each mutant runs against only the tests that reach it.
// @ts-check
// MUTATION_REPORTS (default reports/) separates the output of two runs at once.
const reports = process.env.MUTATION_REPORTS ?? 'reports';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: ['src/**/*.ts', '!src/types/**', '!src/**/*.d.ts'],
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  buildCommand: 'npm run build:ts',
  coverageAnalysis: 'perTest',
  // Sandboxes hold the built addon (build/), not the cached tools or old output.
  ignorePatterns: ['dist', '.tools', '.ci/out', 'reports*', '.stryker-tmp*', 'prebuilds', '*.tgz'],
  // With a checker, Stryker gives half of `concurrency` to type checkers and
  // half to test runners: 6 is three of each. The suite waits on sockets and
  // kernel timers (a third of a core per runner), so three runners fit two cores.
  concurrency: 6,
  // The suite talks to real sockets with kernel timers: under two workers on a
  // shared machine a run can take several times the dry run's length.
  timeoutFactor: 3,
  timeoutMS: 20_000,
  // The dry run (the whole suite, instrumented) takes ~3 min alone; alongside
  // other work it passed Stryker's 5 min default once.
  dryRunTimeoutMinutes: 20,
  // Static mutants (module-level code, or reached only outside a test: hooks,
  // work a test leaves behind) would each need the whole suite; mutants also
  // reached inside a test run against those tests only.
  ignoreStatic: true,
  incremental: true,
  incrementalFile: `${reports}/stryker-incremental.json`,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `${reports}/mutation/index.html` },
  jsonReporter: { fileName: `${reports}/mutation/mutation.json` },
  thresholds: { high: 85, low: 70, break: null },
  tempDirName: `.stryker-tmp${reports === 'reports' ? '' : `-${reports.replace(/\W/g, '_')}`}`,
  cleanTempDir: true,
};

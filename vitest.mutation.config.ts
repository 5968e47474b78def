import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config';

// The default suite as Stryker runs it (npm run test:mutation): the same
// tests, plus a setup file that lets child processes and worker threads run
// the active mutant and report what they covered (test/mutation/child-coverage.ts).
export default mergeConfig(base, defineConfig({
  test: {
    setupFiles: ['test/mutation/child-coverage.ts'],
    // Instrumented code under Stryker's load runs slower: a timing bound
    // (a loop-stall limit) missed once is tried again, so a mutant counts as
    // killed only by a test that fails twice, and the dry run is not lost to
    // one slow moment.
    retry: 1,
    // Added to the default suite (mergeConfig appends include lists): the
    // stress suite's worker teardown (4 s), the only test of a close
    // in flight when a worker goes away (a mutant that leaves the kernel's
    // linger on during the wait blocks it for the linger; close.ts:69).
    // Stryker records no coverage from the worker thread, though, so it
    // runs this test only for what the test's main thread reaches
    // (docs/mutation-testing.md).
    include: ['test/stress/worker-teardown.test.ts'],
    // MUTATION_SKIP_TESTS=test/cli.test.ts,...: leave test files out of a run.
    // The CLI's 7 tests take 65 s and reach nearly all of the close logic
    // (the matrix runs every close in a child), so each surviving close-logic
    // mutant paid for them; a run without them gives a lower bound on the score.
    exclude: (process.env.MUTATION_SKIP_TESTS ?? '').split(',').filter(Boolean),
  },
}));

import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config';

// The default suite as Stryker runs it (npm run test:mutation): the same
// tests, plus a setup file that lets child processes and worker threads run
// the active mutant and report what they covered (test/mutation/child-coverage.ts).
export default mergeConfig(base, defineConfig({
  test: { setupFiles: ['test/mutation/child-coverage.ts'] },
}));

import { defineConfig } from 'vitest/config';

// The stress suite (npm run test:stress): many connections, worker threads,
// long property runs. Sized by env: STRESS_CONNECTIONS, STRESS_BATCH,
// STRESS_LINGER_S, PROPERTY_RUNS (see test/stress/*.test.ts).
export default defineConfig({
  test: {
    include: ['test/stress/*.test.ts'],
    pool: 'forks',
    // One file at a time: the figures (time, loop stalls) must be its own.
    fileParallelism: false,
    testTimeout: 60 * 60_000,
    hookTimeout: 60_000,
    // test/stress/property.test.ts runs the default suite's property test longer.
    env: { PROPERTY_RUNS: process.env.PROPERTY_RUNS ?? '2000' },
  },
});

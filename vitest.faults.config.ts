import { defineConfig } from 'vitest/config';

// npm run test:faults: real network faults between this namespace and a peer
// process in its own network namespace (nftables drops). Needs root.
export default defineConfig({
  test: {
    include: ['test/faults/*.test.ts'],
    globalSetup: ['test/faults/setup.ts'],
    pool: 'forks',
    // One file at a time: timing assertions on 2 shared cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});

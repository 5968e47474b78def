import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The default suite; stress, fault and platform suites have their own configs.
    include: ['test/*.test.ts'],
    // Each file in its own process: the addon and the sockets stay apart.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

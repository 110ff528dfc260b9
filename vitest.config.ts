import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql ships both ESM and CJS builds; Vite would load one for our code and Node the other
    // for dependencies, and graphql refuses schemas from "another realm". Pin everyone to one.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The JSON report lets .ci/run print a one-line tally that any CI can read.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    globalSetup: ['test/support/global-setup.ts'],
    // Each file gets its own database; two workers keep both cores busy without starving Postgres.
    pool: 'forks',
    maxWorkers: 2,
    // Generous: tests that start the server or a browser take several times longer while the other
    // worker runs a heavy file; a timeout is for a hang, not a budget.
    testTimeout: 90_000,
    hookTimeout: 120_000,
  },
});

import { defineConfig } from 'vitest/config';

// Three tiers: unit tests beside the code, integration tests against real PostgreSQL,
// PGlite and Redis, end-to-end tests against running processes, real MCP servers and a
// real browser. `npm test` runs all of them.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    // UI and protocol assertions poll for what a user would eventually see; on a loaded
    // 2-core CI machine one second is not enough.
    expect: { poll: { timeout: 10_000, interval: 50 } },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['shared/src/**/*.test.ts', 'server/src/**/*.test.ts', 'workers/src/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/architecture.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/build-client.ts'],
        },
      },
    ],
  },
});

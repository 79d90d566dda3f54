import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS and ESM builds; Vite would give source files the ESM one while
    // CommonJS dependencies (type-graphql) get the other, and graphql-js refuses schemas
    // from "another realm". Pin every import to the build Node itself resolves.
    alias: [{ find: /^graphql$/, replacement: path.resolve('node_modules/graphql/index.js') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // type-graphql's decorators need the Reflect metadata API, as main.ts provides it.
    setupFiles: ['reflect-metadata'],
    // Each file gets its own database; two workers fit the 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});

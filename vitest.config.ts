// Root vitest entry: one project per workspace package (each package's vitest.config.ts). Under CI
// the results are also written as JSON, from which .ci/run prints a one-line count.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.vitest-results.json' }]] : ['default'],
  },
});

// Shared vitest settings: every package's tests run against the TypeScript sources of the
// workspace packages they import, through the `@gx3/source` export condition (no build needed).
import { defineConfig } from 'vitest/config';

const conditions = ['@gx3/source', 'module', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2-core CI machines: files run in parallel forks, two at a time.
    pool: 'forks',
    maxWorkers: 2,
  },
})

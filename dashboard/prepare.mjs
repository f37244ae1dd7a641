// Runs on `npm install` / `npm ci` (the root `prepare` script): builds the
// dashboard so a fresh clone serves it after `npm install && npm start`.
// An install without dev dependencies (no Vite) skips the build and says so;
// the collector then serves a page explaining how to build it.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
try {
  require.resolve('vite/package.json')
} catch {
  console.warn('tollgate: dashboard not built (Vite is not installed; install dev dependencies, then run npm run build:dashboard)')
  process.exit(0)
}
const result = spawnSync('npm', ['run', '--silent', 'build:dashboard'], { stdio: 'inherit', shell: process.platform === 'win32' })
process.exit(result.status ?? 1)

/**
 * Prototype fixes of the ingest path, measured against the product in the
 * same run (BENCH_PROTOTYPES=1). Each patch in bench/collector/prototypes/
 * is applied to a temporary copy of the repo (tracked and untracked files,
 * node_modules linked), never to the working tree:
 *
 * None are pending: the last ones (a hand-written fast path before zod,
 * chDB's raw insert) were measured here and are now in the product.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ROOT, log, makeTempDir } from './common.ts'

export interface Prototype {
  name: string
  root: string
}

const PATCH_DIR = join(ROOT, 'bench', 'collector', 'prototypes')

/** One patched copy per patch; a patch that no longer applies is skipped with a note. */
export function buildPrototypes(): Prototype[] {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && !f.startsWith('bench/results/'))
  const out: Prototype[] = []
  for (const patch of readdirSync(PATCH_DIR).filter((f) => f.endsWith('.patch')).sort()) {
    const root = makeTempDir(`tollgate-proto-${patch.replace(/\.patch$/, '').slice(0, 20)}-`)
    for (const f of files) {
      mkdirSync(dirname(join(root, f)), { recursive: true })
      try {
        copyFileSync(join(ROOT, f), join(root, f))
      } catch {
        // deleted in the working tree but still in the index
      }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'))
    try {
      execFileSync('patch', ['-p1', '--forward', '--batch', '-i', join(PATCH_DIR, patch)], { cwd: root, stdio: 'pipe' })
      out.push({ name: patch.replace(/\.patch$/, ''), root })
    } catch (err) {
      log(`prototype ${patch} no longer applies to this tree; skipped (${(err as Error).message.split('\n')[0]})`)
    }
  }
  return out
}

/**
 * Prototype fixes of the ingest path, measured against the product in the
 * same run (BENCH_PROTOTYPES=1). Each patch in bench/collector/prototypes/
 * is applied to a temporary copy of the repo (tracked and untracked files,
 * node_modules linked), never to the working tree:
 *
 * 1-fast-validate: a hand-written check of the common, already-normalised
 *   span shape in validateSpanBatch; anything else still goes through zod, so
 *   messages and edge cases are zod's (checked equal on fuzzed batches).
 * 2-…+raw-insert: also chDB's raw insert (`connection.chdb.rawInsert`, the
 *   payload handed over as bytes) instead of an inline `INSERT … FORMAT
 *   JSONEachRow` statement through @clickhouse/client.
 * 3-…+row-template: also spanToRow as one template string (same bytes) and
 *   the timestamp check without a Date round trip.
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

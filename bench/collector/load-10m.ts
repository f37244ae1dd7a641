/**
 * The query benchmark's data set: N synthetic spans (10 million; 200k with
 * BENCH_QUICK) spread evenly over the 30 days before the load, in time order,
 * stored in a chDB data dir that later runs reuse
 * (/tmp/tollgate-bench-10m, or /tmp/tollgate-bench-200k; BENCH_FRESH=1 reloads).
 *
 * Two ways in:
 * - `direct` (default): this script, as its own process, opens the store with
 *   the collector's own `openStore` (same migrations) and calls
 *   `store.insertRows` with `spanToRow` text in batches of 100,000 rows. The
 *   rollups fill exactly as in production: they are materialized views on
 *   INSERT into spans, which is what insertRows does. Skipped: HTTP, zod
 *   validation and the spool, which do not change what is stored.
 * - `http` (BENCH_LOAD_VIA=http): a standalone collector and POST /v1/spans
 *   in batches of 1,000 with 8 senders: the real ingest path end to end.
 *
 * Run directly: `node bin/run-ts.mjs bench/collector/load-10m.ts --child <dir> <count> <method>`
 * (that is how ensureDataset starts it); the meta file records what was loaded.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { log, makeAgent, request, round, sleep, spawnNodeToCompletion, startCollectorProcess, stopAll, storedSpans, QUICK } from './common.ts'
import { BatchPool, SpanGenerator } from './spans.ts'

export const DAY_MS = 86_400_000
const META = 'bench-meta.json'
/** Bump when the generator or the loader changes what is stored: a cached data set of another version is reloaded. */
const DATASET_VERSION = 1

export interface DatasetMeta {
  version: number
  count: number
  method: 'direct' | 'http'
  /** Epoch ms: the data covers [fromMs, toMs). */
  fromMs: number
  toMs: number
  loadedAt: string
  loadSeconds: number
  rowsPerS: number
  /** After the load (and the wait for merges): rows and active parts per table, bytes on disk. */
  tables: { table: string; rows: number; parts: number; bytesOnDisk: number }[]
  /** Seconds waited after the load for background merges to settle. */
  mergeWaitS: number
  /** Checked after load: spans counted by the 30-day summary. */
  summaryCount: number
}

export function defaultDatasetDir(count: number): string {
  return count >= 1_000_000 ? `/tmp/tollgate-bench-${Math.round(count / 1_000_000)}m` : `/tmp/tollgate-bench-${Math.round(count / 1000)}k`
}

export function readMeta(dir: string): DatasetMeta | null {
  try {
    const meta = JSON.parse(readFileSync(join(dir, META), 'utf8')) as DatasetMeta
    return meta.version === DATASET_VERSION ? meta : null
  } catch {
    return null
  }
}

/**
 * The data set in `dir`, loading it unless a complete one of the same size and
 * version is there (and BENCH_FRESH is not set).
 */
export async function ensureDataset(options: { dir: string; count: number; method: 'direct' | 'http'; fresh: boolean }): Promise<{ meta: DatasetMeta; reused: boolean }> {
  const existing = readMeta(options.dir)
  if (!options.fresh && existing && existing.count === options.count) {
    log(`data set: reusing ${options.dir} (${existing.count.toLocaleString('en-US')} spans, loaded ${existing.loadedAt} via ${existing.method} in ${existing.loadSeconds} s; BENCH_FRESH=1 reloads)`)
    return { meta: existing, reused: true }
  }
  rmSync(options.dir, { recursive: true, force: true })
  mkdirSync(options.dir, { recursive: true })
  log(`data set: loading ${options.count.toLocaleString('en-US')} spans into ${options.dir} via ${options.method}`)
  await spawnNodeToCompletion({
    name: 'loader',
    args: ['bin/run-ts.mjs', 'bench/collector/load-10m.ts', '--child', options.dir, String(options.count), options.method],
    env: { TOLLGATE_LOG_LEVEL: 'warn' },
    timeoutMs: 3 * 3600_000,
  })
  const meta = readMeta(options.dir)
  if (!meta) throw new Error(`loader finished without writing ${join(options.dir, META)}`)
  return { meta, reused: false }
}

// ---------------------------------------------------------------- the loader process

async function loadDirect(dir: string, count: number, fromMs: number, toMs: number): Promise<void> {
  const { openStore, spanToRow } = await import('../../collector/store.ts')
  const { silentLogger } = await import('../../lib/log.ts')
  const { store } = await openStore({ dataDir: dir, log: silentLogger })
  try {
    const gen = new SpanGenerator({ seed: 11 })
    const batchRows = Number(process.env.BENCH_LOAD_BATCH ?? 100_000)
    const stepMs = (toMs - fromMs) / count
    const runId = randomUUID()
    let pending: Promise<void> | null = null
    let done = 0
    let lastLog = performance.now()
    const started = performance.now()
    for (let b = 0; done < count && b < count; b++) {
      const n = Math.min(batchRows, count - done)
      const spans = gen.spans(n, fromMs + done * stepMs, stepMs)
      let text = ''
      for (const s of spans) text += spanToRow(s)
      // Serialise the next batch while ClickHouse inserts this one (one insert in flight, like the batcher).
      if (pending) await pending
      pending = store.insertRows(text, n, { dedupToken: `bench-load:${runId}:${b}` })
      done += n
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now()
        const s = (performance.now() - started) / 1000
        log(`loaded ${done.toLocaleString('en-US')} / ${count.toLocaleString('en-US')} (${Math.round(done / s).toLocaleString('en-US')} rows/s)`)
      }
    }
    if (pending) await pending
  } finally {
    await store.close()
  }
}

async function loadHttp(dir: string, count: number, fromMs: number, toMs: number): Promise<void> {
  const collector = await startCollectorProcess({ dataDir: dir, launcher: 'cli', name: 'collector (load)' })
  try {
    const postBatch = 1000
    const concurrency = 8
    const gen = new SpanGenerator({ seed: 11 })
    const pool = new BatchPool(gen, postBatch, concurrency + 2)
    const agent = makeAgent(concurrency)
    const stepMs = (toMs - fromMs) / count
    let next = 0
    let acked = 0
    const started = performance.now()
    let lastLog = started
    const sender = async (): Promise<void> => {
      for (let i = 0; next < count && i < count; i++) {
        const first = next
        next += postBatch
        const batch = pool.take(fromMs + first * stepMs, stepMs)
        if (!batch) throw new Error('no free batch buffer')
        try {
          // Retried until acknowledged (bounded); the batch id makes a retry safe.
          const id = randomUUID()
          for (let attempt = 0; attempt < 50; attempt++) {
            const res = await request(agent, 'POST', `${collector.url}/v1/spans`, batch.buf, { 'x-tollgate-batch-id': id }, 120_000).catch(() => null)
            if (res?.status === 200) {
              acked += postBatch
              break
            }
            await sleep(500)
          }
        } finally {
          pool.release(batch)
        }
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now()
          log(`acknowledged ${acked.toLocaleString('en-US')} / ${count.toLocaleString('en-US')} (${Math.round(acked / ((performance.now() - started) / 1000)).toLocaleString('en-US')} spans/s)`)
        }
      }
    }
    if (count % postBatch !== 0) throw new Error(`BENCH_LOAD_VIA=http needs a count that is a multiple of ${postBatch}`)
    await Promise.all(Array.from({ length: concurrency }, () => sender()))
    agent.destroy()
    for (let i = 0; i < 3600; i++) {
      if ((await storedSpans(collector.url, fromMs, toMs + DAY_MS)) >= acked) break
      await sleep(1000)
    }
  } finally {
    await collector.stop(300_000)
    await stopAll()
  }
}

async function tableStats(dir: string): Promise<{ tables: DatasetMeta['tables']; merges: number }> {
  const { openStore } = await import('../../collector/store.ts')
  const { silentLogger } = await import('../../lib/log.ts')
  const { store } = await openStore({ dataDir: dir, log: silentLogger })
  try {
    const parts = await (
      await store.client.query({
        query: `SELECT table, sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes FROM system.parts
                WHERE database = 'tollgate' AND active AND table IN ('spans', 'spans_1m', 'spans_1h') GROUP BY table ORDER BY table`,
        format: 'JSONEachRow',
      })
    ).json<{ table: string; rows: string; parts: string; bytes: string }>()
    const merges = await (await store.client.query({ query: `SELECT count() AS n FROM system.merges WHERE database = 'tollgate'`, format: 'JSONEachRow' })).json<{ n: string }>()
    return { tables: parts.map((p) => ({ table: p.table, rows: Number(p.rows), parts: Number(p.parts), bytesOnDisk: Number(p.bytes) })), merges: Number(merges[0]?.n ?? 0) }
  } finally {
    await store.close()
  }
}

async function child(dir: string, count: number, method: 'direct' | 'http'): Promise<void> {
  // Ends on a ragged minute, like "now" would.
  const toMs = Date.now()
  const fromMs = toMs - 30 * DAY_MS
  const started = performance.now()
  if (method === 'direct') await loadDirect(dir, count, fromMs, toMs)
  else await loadHttp(dir, count, fromMs, toMs)
  const loadSeconds = (performance.now() - started) / 1000
  log(`load done in ${round(loadSeconds, 1)} s (${Math.round(count / loadSeconds).toLocaleString('en-US')} spans/s)`)

  // Background merges run only while the store is open: keep it open until
  // they settle (bounded), so queries see the part layout a running collector would have.
  const mergeStart = performance.now()
  const { openStore } = await import('../../collector/store.ts')
  const { silentLogger } = await import('../../lib/log.ts')
  {
    const { store } = await openStore({ dataDir: dir, log: silentLogger })
    let lastParts = -1
    for (let i = 0; i < 60; i++) {
      const r = await (
        await store.client.query({
          query: `SELECT (SELECT count() FROM system.merges WHERE database = 'tollgate') AS merges, (SELECT count() FROM system.parts WHERE database = 'tollgate' AND active) AS parts`,
          format: 'JSONEachRow',
        })
      ).json<{ merges: string; parts: string }>()
      const merges = Number(r[0]?.merges ?? 0)
      const parts = Number(r[0]?.parts ?? 0)
      if (merges === 0 && parts === lastParts) break
      lastParts = parts
      await sleep(5000)
    }
    await store.close()
  }
  const mergeWaitS = round((performance.now() - mergeStart) / 1000, 1)
  const stats = await tableStats(dir)
  let summaryCount = 0
  {
    const { openStore: open } = await import('../../collector/store.ts')
    const { summary } = await import('../../collector/queries.ts')
    const { store } = await open({ dataDir: dir, log: silentLogger })
    try {
      const rows = await summary({ client: store.client, tables: store.tables, settings: store.querySettings }, { from: fromMs, to: toMs + 1 }, undefined)
      summaryCount = rows[0]?.requests ?? 0
    } finally {
      await store.close()
    }
  }
  if (summaryCount !== count) log(`WARNING: the 30-day summary counts ${summaryCount}, expected ${count}`)
  const meta: DatasetMeta = {
    version: DATASET_VERSION,
    count,
    method,
    fromMs,
    toMs,
    loadedAt: new Date().toISOString(),
    loadSeconds: round(loadSeconds, 1),
    rowsPerS: Math.round(count / loadSeconds),
    tables: stats.tables,
    mergeWaitS,
    summaryCount,
  }
  writeFileSync(join(dir, META), `${JSON.stringify(meta, null, 2)}\n`)
  log(`data set ready: ${JSON.stringify(meta.tables)}`)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  let dir: string
  let count: number
  let method: 'direct' | 'http'
  if (args[0] === '--child') {
    dir = args[1] ?? ''
    count = Number(args[2])
    method = args[3] === 'http' ? 'http' : 'direct'
    if (!dir || !Number.isSafeInteger(count) || count <= 0) {
      console.error('usage: load-10m.ts --child <dir> <count> <direct|http>')
      process.exit(2)
    }
    child(dir, count, method).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  } else {
    // Standalone: make sure the cached data set exists.
    count = Number(process.env.BENCH_SPANS ?? (QUICK ? 200_000 : 10_000_000))
    method = process.env.BENCH_LOAD_VIA === 'http' ? 'http' : 'direct'
    dir = process.env.BENCH_DATA_DIR ?? defaultDatasetDir(count)
    if (existsSync(dir) && !readMeta(dir)) log(`${dir} exists without a complete data set: reloading`)
    ensureDataset({ dir, count, method, fresh: process.env.BENCH_FRESH === '1' }).then(
      ({ meta }) => {
        console.log(JSON.stringify(meta, null, 2))
        process.exit(0)
      },
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
}

/**
 * Bench launcher: the standalone collector exactly as `tollgate collector`
 * starts it (loadConfig → collectorOptions → startCollector), plus the knobs
 * the product has no env setting for, so the benchmark can try them without
 * editing product code:
 * - BENCH_MAX_BATCH_ROWS, BENCH_FLUSH_INTERVAL_MS → CollectorOptions.batch
 * - BENCH_QUERY_MAX_THREADS → max_threads of every read query (StoreOptions.queryMaxThreads
 *   is not reachable from startCollector, so the store's querySettings object,
 *   which the query context shares, is changed after start).
 * Prints the same ready line as the CLI.
 */
import { collectorOptions } from '../../cli/start.ts'
import { startCollector } from '../../collector/server.ts'
import { loadConfig } from '../../lib/config.ts'
import { createLogger } from '../../lib/log.ts'

function intEnv(name: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`)
  return n
}

const config = loadConfig()
const logger = createLogger({ level: config.logLevel })
const maxBatchRows = intEnv('BENCH_MAX_BATCH_ROWS')
const flushIntervalMs = intEnv('BENCH_FLUSH_INTERVAL_MS')
const queryMaxThreads = intEnv('BENCH_QUERY_MAX_THREADS')
const batch: { maxBatchRows?: number; flushIntervalMs?: number; maxQueueRows?: number } = {}
if (maxBatchRows !== undefined) {
  batch.maxBatchRows = maxBatchRows
  // maxBatchRows is clamped to maxQueueRows (default 100k): keep room for two batches.
  batch.maxQueueRows = Math.max(100_000, maxBatchRows * 2)
}
if (flushIntervalMs !== undefined) batch.flushIntervalMs = flushIntervalMs

const collector = await startCollector({ ...collectorOptions(config, logger), batch })
if (queryMaxThreads !== undefined) {
  // Readonly in the type only: the same object is every query's clickhouse_settings.
  ;(collector.store.querySettings as Record<string, unknown>).max_threads = queryMaxThreads
}
console.log(`Tollgate collector: ${collector.url} (store: ${collector.store.kind}; bench launcher ${JSON.stringify({ batch, queryMaxThreads: queryMaxThreads ?? null })})`)

await new Promise<void>((resolveSignal) => {
  process.once('SIGINT', () => resolveSignal())
  process.once('SIGTERM', () => resolveSignal())
})
await collector.close()
process.exit(0)

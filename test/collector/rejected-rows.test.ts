/**
 * Rows ClickHouse can never accept must not block the rows behind them: the
 * batch is set aside in a file, counted, and the batcher moves on. Real chDB,
 * real spool.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createBatcher } from '../../collector/batcher.ts'
import { openSpool } from '../../collector/spool.ts'
import { openStore, spanToRow, type SpanStore } from '../../collector/store.ts'
import type { Span } from '../../collector/schema.ts'
import { silentLogger } from '../../lib/log.ts'
import { PROCESS_CHDB_PATH } from '../helpers/tollgate.ts'

const dir = mkdtempSync(join(tmpdir(), 'tollgate-rejected-'))
let store: SpanStore
afterAll(async () => {
  await store?.close()
  rmSync(dir, { recursive: true, force: true })
})

function span(i: number): Span {
  const at = new Date(Date.now() - 1000).toISOString()
  return {
    span_id: crypto.randomUUID(), started_at: at, ended_at: at, mode: 'reverse', provider: 'openai', endpoint: 'chat',
    request_model: 'gpt-4o', response_model: 'gpt-4o', stream: false, status_code: 200, error_type: 'none', duration_ms: 10 + i,
    ttft_ms: 5, input_tokens: 100, output_tokens: 10, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null,
    cost_usd: 0.001, cost_status: 'priced', finish_reason: 'stop', user: null, session: null, app: null, properties: {},
    request_bytes: 1, response_bytes: 1, client_addr: null,
  }
}

describe('a batch the store rejects as malformed', () => {
  it('is written aside and counted, and later rows still land', async () => {
    store = (await openStore({ dataDir: dir, chdbPath: PROCESS_CHDB_PATH, database: `rej_${process.pid}`, log: silentLogger })).store
    const spool = await openSpool({ dir: join(dir, 'spool') })
    const aside: { text: string; rows: number }[] = []
    const dropped: [string, number][] = []
    const batcher = createBatcher({
      spool,
      sink: store,
      log: silentLogger,
      flushIntervalMs: 10,
      retryInitialMs: 10,
      metrics: { rowsDropped: (reason, n) => dropped.push([reason, n]) },
      onRejected: async (text, rows) => void aside.push({ text, rows }),
    })
    await batcher.start()
    // Valid JSON, but not a UUID and not a date: ClickHouse refuses it on parse.
    await batcher.accept('{"span_id":"not-a-uuid","started_at":"yesterday-ish","ended_at":"x"}\n', 1)
    await batcher.forceFlush()
    const good = [span(1), span(2), span(3)]
    await batcher.accept(good.map(spanToRow).join(''), good.length)
    await batcher.forceFlush()

    expect(aside).toHaveLength(1)
    expect(aside[0]!.text).toContain('not-a-uuid')
    expect(dropped).toEqual([['store_rejected', 1]])
    const stored = await store.existingSpanIds(good.map((s) => s.span_id))
    expect(stored.size).toBe(3)
    expect(batcher.stats()).toMatchObject({ droppedRows: 1, insertedRows: 3 })
    await batcher.shutdown()
  })

  it('the collector writes such batches under <data dir>/rejected/', async () => {
    const { startCollector } = await import('../../collector/server.ts')
    const dataDir = join(dir, 'collector')
    const collector = await startCollector({ host: '127.0.0.1', port: 0, dataDir, chdbPath: PROCESS_CHDB_PATH, database: `rej2_${process.pid}`, log: silentLogger })
    try {
      await collector.batcher.accept('{"span_id":"still-not-a-uuid"}\n', 1)
      await collector.batcher.forceFlush()
      const files = readdirSync(join(dataDir, 'rejected'))
      expect(files).toHaveLength(1)
      expect(readFileSync(join(dataDir, 'rejected', files[0]!), 'utf8')).toContain('still-not-a-uuid')
      const metrics = await (await fetch(`${collector.url}/metrics`)).text()
      expect(metrics).toMatch(/tollgate_collector_spans_dropped_total\{reason="store_rejected"\} 1/)
    } finally {
      await collector.close()
    }
  })
})

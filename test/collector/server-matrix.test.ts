/**
 * The same migrations, ingest and queries against a real ClickHouse server.
 * Runs when TOLLGATE_TEST_CLICKHOUSE_URL names a reachable server (for
 * example the one `docker compose up clickhouse` starts:
 * TOLLGATE_TEST_CLICKHOUSE_URL=http://default:tollgate@127.0.0.1:8123);
 * otherwise the suite is skipped and says why in its name.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startCollector } from '../../collector/server.ts'
import type { Span } from '../../collector/schema.ts'
import { silentLogger } from '../../lib/log.ts'

const url = process.env.TOLLGATE_TEST_CLICKHOUSE_URL
const reachable = url
  ? await fetch(new URL('/ping', url), { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)
  : false
const reason = !url
  ? 'skipped: TOLLGATE_TEST_CLICKHOUSE_URL is not set (no ClickHouse server on this machine; chDB suites cover the same SQL)'
  : `skipped: ${url} is not reachable`

// A skipped file prints no test names: say it here, where the run's output shows it.
if (!reachable) console.warn(`[server-matrix] ${reason}`)

describe.skipIf(!reachable)(`ClickHouse server matrix${reachable ? '' : ` (${reason})`}`, () => {
  it('migrates, ingests and answers the query API on a server', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-server-'))
    const database = `tollgate_test_${process.pid}_${Date.now()}`
    const serverUrl = new URL(url!)
    serverUrl.pathname = `/${database}`
    const collector = await startCollector({ host: '127.0.0.1', port: 0, dataDir, clickhouseUrl: serverUrl.toString(), log: silentLogger })
    try {
      const at = new Date().toISOString()
      const spans: Span[] = Array.from({ length: 50 }, (_, i) => ({
        span_id: crypto.randomUUID(), started_at: at, ended_at: at, mode: 'reverse', provider: 'openai', endpoint: 'chat',
        request_model: 'gpt-4o', response_model: 'gpt-4o', stream: false, status_code: i % 10 ? 200 : 500,
        error_type: i % 10 ? 'none' : 'http_5xx', duration_ms: 100 + i, ttft_ms: 50, input_tokens: 10, output_tokens: 5,
        cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null, cost_usd: 0.001, cost_status: 'priced',
        finish_reason: 'stop', user: 'u', session: null, app: 'a', properties: { k: 'v' }, request_bytes: 1, response_bytes: 1, client_addr: null,
      }))
      const res = await fetch(`${collector.url}/v1/spans`, { method: 'POST', body: JSON.stringify(spans) })
      expect(res.status).toBe(200)
      await collector.batcher.forceFlush()
      const summary = (await (await fetch(`${collector.url}/api/summary?from=now-1h`)).json()) as { rows: { requests: number; errors: number; cost_usd: number }[] }
      expect(summary.rows[0]).toMatchObject({ requests: 50, errors: 5 })
      expect(summary.rows[0]!.cost_usd).toBeCloseTo(0.05, 9)
    } finally {
      await collector.store.client.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {})
      await collector.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})

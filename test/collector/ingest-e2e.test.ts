/**
 * End to end through real parts: SDK → proxy → collector → chDB → query API,
 * in all-in-one mode and with a standalone proxy sending over HTTP; OTLP
 * ingest; malformed batches.
 */
import { calcPrice } from '@pydantic/genai-prices'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCollector, type Collector } from '../../collector/server.ts'
import type { Span } from '../../collector/schema.ts'
import { startStandaloneProxy } from '../../cli/start.ts'
import { parseConfig } from '../../lib/config.ts'
import { silentLogger } from '../../lib/log.ts'
import type { ProxyServer } from '../../proxy/server.ts'
import { expectedCost, expectedUsage, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { PROCESS_CHDB_PATH, startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface SummaryRow {
  group: Record<string, string> | null
  requests: number
  errors: number
  error_rate: number
  tokens: { input: number; output: number; cached_input: number; cache_write: number; reasoning: number }
  cost_usd: number
  latency_ms: { p50: number | null }
}

let upstream: MockUpstream
let tg: TestTollgate

beforeAll(async () => {
  upstream = await startMockUpstream()
  tg = await startTestTollgate({ upstreams: { openai: upstream.url, anthropic: upstream.url } })
})
afterAll(async () => {
  await tg.close()
  await upstream.close()
})


describe('all-in-one: SDK calls land in ClickHouse with the right numbers', () => {
  it('spans and summary agree with the mock usage and genai-prices', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${tg.proxyUrl}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-tollgate-user': 'u-e2e', 'x-tollgate-app': 'e2e-app' } })
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${tg.proxyUrl}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-tollgate-user': 'u-e2e' } })
    for (let i = 0; i < 3; i++) await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    for (let i = 0; i < 2; i++) await anthropic.messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }, { headers: { 'x-mock-status': '429' } }).catch(() => {})

    const spans = await tg.waitForSpans(6)
    expect(spans).toHaveLength(6)
    const chat = spans.filter((s) => s.endpoint === 'chat' && s.error_type === 'none')
    expect(chat).toHaveLength(3)
    // Identical requests share a body hash in ClickHouse; no body is stored.
    expect(chat[0]!.request_hash).toMatch(/^[0-9a-f]{32}$/)
    expect(new Set(chat.map((s) => s.request_hash)).size).toBe(1)
    for (const s of chat) {
      expect(s).toMatchObject({ provider: 'openai', user: 'u-e2e', app: 'e2e-app', input_tokens: 120, cost_status: 'priced' })
      expect(s.cost_usd).toBeCloseTo(expectedCost('chat', 'gpt-4o-mini', 'openai'), 12)
    }

    const { rows } = await tg.api<{ rows: SummaryRow[] }>('/api/summary?from=now-1h&group_by=model')
    const mini = rows.find((r) => r.group?.model === 'gpt-4o-mini')!
    const claude = rows.find((r) => r.group?.model === 'claude-sonnet-4-20250514')!
    expect(mini).toMatchObject({ requests: 4, errors: 1 })
    expect(mini.error_rate).toBeCloseTo(0.25, 12)
    expect(mini.tokens.input).toBe(3 * expectedUsage('chat').input_tokens!)
    expect(mini.tokens.cached_input).toBe(3 * expectedUsage('chat').cached_input_tokens!)
    expect(mini.tokens.reasoning).toBe(3 * expectedUsage('chat').reasoning_tokens!)
    expect(mini.cost_usd).toBeCloseTo(3 * expectedCost('chat', 'gpt-4o-mini', 'openai'), 9)
    expect(claude).toMatchObject({ requests: 2, errors: 0 })
    expect(claude.tokens.cache_write).toBe(2 * expectedUsage('messages').cache_write_tokens!)
    expect(claude.cost_usd).toBeCloseTo(2 * expectedCost('messages', 'claude-sonnet-4-20250514', 'anthropic'), 9)
    expect(claude.latency_ms.p50).not.toBeNull()

    const byUser = await tg.api<{ rows: SummaryRow[] }>('/api/summary?from=now-1h&group_by=user')
    expect(byUser.rows.find((r) => r.group?.user === 'u-e2e')?.requests).toBe(6)

    const ts = await tg.api<{ buckets: number[]; series: { values: number[] }[] }>('/api/timeseries?from=now-1h&step=60&metric=requests')
    expect(ts.series[0]!.values.reduce((a, b) => a + b, 0)).toBe(6)
  })
})

describe('standalone proxy → HTTP → standalone collector', () => {
  let collector: Collector
  let proxy: ProxyServer
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-standalone-'))

  beforeAll(async () => {
    collector = await startCollector({ host: '127.0.0.1', port: 0, dataDir, chdbPath: PROCESS_CHDB_PATH, database: `standalone_${process.pid}`, log: silentLogger })
    proxy = await startStandaloneProxy(
      parseConfig({ proxyPort: 0, uiPort: 0, dataDir, collectorUrl: collector.url, upstreams: { openai: upstream.url } }),
      silentLogger,
    )
  })
  afterAll(async () => {
    await proxy.close()
    await collector.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('a call through the standalone proxy is stored by the collector', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${proxy.url}/openai/v1`, maxRetries: 0 })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } })
    for await (const _ of stream) void _
    const deadline = Date.now() + 10_000
    let spans: Span[] = []
    while (Date.now() < deadline) {
      await collector.batcher.forceFlush()
      spans = ((await (await fetch(`${collector.url}/api/spans?from=now-1h`)).json()) as { spans: Span[] }).spans
      if (spans.length) break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(spans).toHaveLength(1)
    expect(spans[0]).toMatchObject({ provider: 'openai', stream: true, input_tokens: 120, output_tokens: 48, cost_status: 'priced' })
    const metrics = await (await fetch(`${collector.url}/metrics`)).text()
    expect(metrics).toMatch(/tollgate_collector_spans_received_total\{source="http"\} 1/)
    expect(metrics).toMatch(/tollgate_collector_spans_written_total 1/)

    // Dashboard calls at once (the embedded store answers them one by one): each sees the stored span.
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        fetch(`${collector.url}${i % 3 === 0 ? '/api/spans?from=now-1h' : i % 3 === 1 ? '/api/summary?from=now-1h' : '/api/timeseries?from=now-1h&metric=requests,latency_p50'}`).then(
          async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
        ),
      ),
    )
    for (const [i, a] of answers.entries()) {
      expect(a.status).toBe(200)
      if (i % 3 === 0) expect((a.body.spans as Span[]).map((x) => x.span_id)).toEqual([spans[0]!.span_id])
      if (i % 3 === 1) expect((a.body.rows as { requests: number }[])[0]!.requests).toBe(1)
      if (i % 3 === 2) expect((a.body.series as { metric: string; values: number[] }[]).find((x) => x.metric === 'requests')!.values.reduce((x, y) => x + y, 0)).toBe(1)
    }
  })
})

describe('POST /v1/traces (OTLP/HTTP JSON)', () => {
  it('maps gen_ai.* attributes onto spans, priced by the collector', async () => {
    const now = BigInt(Date.now()) * 1_000_000n
    const attr = (key: string, value: Record<string, unknown>) => ({ key, value })
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [attr('service.name', { stringValue: 'otel-app' })] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '5b8efff798038103d269b633813fc60c',
                  spanId: 'eee19b7ec3c1b174',
                  name: 'chat gpt-4o',
                  kind: 3,
                  startTimeUnixNano: String(now - 1_500_000_000n),
                  endTimeUnixNano: String(now),
                  attributes: [
                    attr('gen_ai.operation.name', { stringValue: 'chat' }),
                    attr('gen_ai.provider.name', { stringValue: 'openai' }),
                    attr('gen_ai.request.model', { stringValue: 'gpt-4o' }),
                    attr('gen_ai.response.model', { stringValue: 'gpt-4o-2024-08-06' }),
                    attr('gen_ai.usage.input_tokens', { intValue: '1000' }),
                    attr('gen_ai.usage.output_tokens', { intValue: 200 }),
                    attr('gen_ai.usage.cache_read.input_tokens', { intValue: 400 }),
                    attr('gen_ai.response.finish_reasons', { arrayValue: { values: [{ stringValue: 'stop' }] } }),
                  ],
                },
                { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'aaa19b7ec3c1b174', name: 'db query', startTimeUnixNano: String(now - 1000n), endTimeUnixNano: String(now), attributes: [] },
              ],
            },
          ],
        },
      ],
    }
    const res = await fetch(`${tg.collectorUrl}/v1/traces`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ accepted: 1 })
    // Re-sent: same derived span id, stored once.
    await fetch(`${tg.collectorUrl}/v1/traces`, { method: 'POST', body: JSON.stringify(body) })
    await tg.tollgate.collector.batcher.forceFlush()
    const spans = await tg.spans({ app: 'otel-app' })
    expect(spans).toHaveLength(1)
    const expected = calcPrice({ input_tokens: 1000, output_tokens: 200, cache_read_tokens: 400 }, 'gpt-4o-2024-08-06', { providerId: 'openai' })!.total_price
    expect(spans[0]).toMatchObject({ provider: 'openai', endpoint: 'chat', input_tokens: 1000, output_tokens: 200, cached_input_tokens: 400, finish_reason: 'stop', cost_status: 'priced' })
    expect(spans[0]!.cost_usd).toBeCloseTo(expected, 12)
    expect(spans[0]!.duration_ms).toBeCloseTo(1500, 0)
  })
})

describe('bad batches on /v1/spans', () => {
  const good = (): Span => ({
    span_id: crypto.randomUUID(), started_at: new Date().toISOString(), ended_at: new Date().toISOString(), mode: 'reverse',
    provider: 'openai', endpoint: 'chat', request_model: 'gpt-4o', response_model: null, stream: false, status_code: 200,
    error_type: 'none', duration_ms: 12, ttft_ms: null, input_tokens: 5, output_tokens: 5, cached_input_tokens: null,
    cache_write_tokens: null, reasoning_tokens: null, cost_usd: null, cost_status: 'unpriced', finish_reason: null,
    user: 'batch-user', session: null, app: null, properties: {}, request_bytes: 0, response_bytes: 0, client_addr: null,
  })
  const post = (body: string) => fetch(`${tg.collectorUrl}/v1/spans`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })

  it('malformed JSON, a non-array and an oversize body are refused with a clear error', async () => {
    const notJson = await post('[{"span_id": ')
    expect(notJson.status).toBe(400)
    expect(((await notJson.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TG_ERR_BAD_SPAN_BATCH' })
    const notArray = await post('{"span_id": "x"}')
    expect(notArray.status).toBe(400)
    expect(((await notArray.json()) as { error: { message: string } }).error.message).toMatch(/array/i)
    const huge = await post('[' + '"x",'.repeat(9_000_000) + '"x"]')
    expect(huge.status).toBe(413)
  })

  it('a bad span is named by index and field, and never poisons the good ones', async () => {
    const a = good()
    const b = { ...good(), input_tokens: -3 }
    const c = good()
    const res = await post(JSON.stringify([a, b, c]))
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: { message: string; accepted: number; rejected: { index: number; field: string }[] } }
    expect(body.error.accepted).toBe(2)
    expect(body.error.rejected).toEqual([expect.objectContaining({ index: 1, field: 'input_tokens' })])
    expect(body.error.message).toContain('span 1')
    await tg.tollgate.collector.batcher.forceFlush()
    const stored = await tg.spans({ user: 'batch-user' })
    expect(stored.map((s) => s.span_id).sort()).toEqual([a.span_id, c.span_id].sort())
  })
})

describe('GET /api/health', () => {
  it('reports store, spool, drops and the watched proxy', async () => {
    const health = await tg.api<{ store: { kind: string; reachable: boolean }; spool_bytes: number; dropped_spans: number; proxy: { url: string; up: boolean } | null }>('/api/health')
    expect(health.store).toMatchObject({ kind: 'chdb', reachable: true })
    expect(health.proxy).toMatchObject({ url: tg.proxyUrl, up: true })
    expect(health.dropped_spans).toBe(0)
    expect(typeof health.spool_bytes).toBe('number')
  })

  it('summary by model carries cache savings; by property groups one key', async () => {
    const byModel = await tg.api<{ rows: { group: Record<string, string>; tokens: { cached_input: number }; cache_savings_usd: number | null }[] }>('/api/summary?from=now-1h&group_by=model')
    const mini = byModel.rows.find((r) => r.group.model === 'gpt-4o-mini')!
    expect(mini.tokens.cached_input).toBeGreaterThan(0)
    const fresh = calcPrice({ input_tokens: mini.tokens.cached_input, output_tokens: 0 }, 'gpt-4o-mini', { providerId: 'openai' })!.total_price
    const cached = calcPrice({ input_tokens: mini.tokens.cached_input, output_tokens: 0, cache_read_tokens: mini.tokens.cached_input }, 'gpt-4o-mini', { providerId: 'openai' })!.total_price
    expect(mini.cache_savings_usd).toBeCloseTo(fresh - cached, 9)
    const bad = await fetch(`${tg.collectorUrl}/api/summary?group_by=property`)
    expect(bad.status).toBe(400)
    expect(await bad.text()).toContain('property_key')
  })
})

/**
 * GET /api/recommendations against a real all-in-one Tollgate (chDB): calls
 * through the proxy to the mock upstream (a model failing 20% with 5xx,
 * identical repeated requests, streams without include_usage, an unpriced
 * model), plus synthetic spans on POST /v1/spans for shapes the mock cannot
 * produce (latency gaps between providers, long shared prefixes, spend spikes
 * days back). Every expected number is computed here from what was sent, and
 * every spans_query is replayed against /api/spans.
 */
import { randomUUID } from 'node:crypto'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { compareRecommendations } from '../../collector/recommendations/common.ts'
import type { Recommendation } from '../../collector/recommendations/types.ts'
import { mockFaultHeaders, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000
const NOW = Date.now()

interface Answer {
  from: number
  to: number
  generated_at: string
  recommendations: Recommendation[]
}

/** genai-prices rates (USD per 1M tokens) of the models the proxy prices here. */
const GPT_4O = { input: 2.5, cached: 1.25, output: 10 }
const GPT_4O_MINI = { input: 0.15, cached: 0.075, output: 0.6 }
/** The mock's chat usage: 120 input (64 cached), 48 output. */
const chatCost = (r: { input: number; cached: number; output: number }) => ((120 - 64) * r.input + 64 * r.cached + 48 * r.output) / 1e6

let upstream: MockUpstream
let tg: TestTollgate
let answer: Answer

function span(fields: Partial<Span> & Pick<Span, 'provider' | 'response_model'> & { at: number }): Span {
  const { at, ...rest } = fields
  const duration = rest.duration_ms ?? 500
  return {
    span_id: randomUUID(),
    started_at: new Date(at).toISOString(),
    ended_at: new Date(at + duration).toISOString(),
    mode: 'reverse',
    endpoint: 'chat',
    request_model: rest.response_model,
    stream: false,
    status_code: 200,
    error_type: 'none',
    duration_ms: duration,
    ttft_ms: null,
    input_tokens: 300,
    output_tokens: 200,
    cached_input_tokens: 0,
    cache_write_tokens: null,
    reasoning_tokens: null,
    cost_usd: 0.001,
    cost_status: 'priced',
    finish_reason: 'stop',
    user: null,
    session: null,
    app: null,
    properties: {},
    request_bytes: 1000,
    response_bytes: 1000,
    client_addr: '127.0.0.1',
    ...rest,
  }
}

/** Synthetic spans: latency gap, long prefixes, spend spikes. */
function syntheticSpans(): Span[] {
  const spans: Span[] = []
  // The same Llama weights on two providers: groq p95 400 ms / TTFT 150 ms, together 2400 / 1200 ms.
  for (let i = 0; i < 60; i++) {
    const at = NOW - 3 * DAY + i * 30 * MINUTE
    spans.push(span({ at, provider: 'groq', response_model: 'llama-3.3-70b-versatile', duration_ms: 400, ttft_ms: 150 }))
    spans.push(span({ at: at + MINUTE, provider: 'together', response_model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo', duration_ms: 2400, ttft_ms: 1200 }))
  }
  // Claude: one 20,000-byte prefix sent 4 times, never cached (counts); one sent twice and a short one 5 times (below thresholds).
  const claude = { provider: 'anthropic', response_model: 'claude-sonnet-4-20250514', input_tokens: 6000, output_tokens: 100, cached_input_tokens: 0, cost_usd: 0.0195 } as const
  for (let i = 0; i < 4; i++) spans.push(span({ ...claude, at: NOW - 2 * DAY + i * HOUR, prefix_hash: 'aa'.repeat(16), prefix_bytes: 20_000 }))
  for (let i = 0; i < 2; i++) spans.push(span({ ...claude, at: NOW - 2 * DAY + i * HOUR + MINUTE, prefix_hash: 'bb'.repeat(16), prefix_bytes: 20_000 }))
  for (let i = 0; i < 5; i++) spans.push(span({ ...claude, at: NOW - 2 * DAY + i * HOUR + 2 * MINUTE, prefix_hash: 'cc'.repeat(16), prefix_bytes: 3000 }))
  // gpt-4.1 answering 400-token prompts with 4 or 6 tokens: a classification-like shape on an expensive model.
  for (let i = 0; i < 60; i++) {
    spans.push(span({ at: NOW - 4 * DAY + i * 10 * MINUTE, provider: 'openai', response_model: 'gpt-4.1', input_tokens: 400, output_tokens: i % 2 ? 4 : 6, cost_usd: 0.00084 }))
  }
  // User "spiky" in app "batch-job": $0.30 a day for 6 days, then $5 in the last 24 h. User "steady": $2 every day.
  const nano = { provider: 'openai', response_model: 'gpt-4.1-nano' } as const
  for (let d = 2; d <= 6; d++) spans.push(span({ ...nano, at: NOW - d * DAY, user: 'spiky', app: 'batch-job', cost_usd: 0.36 }))
  for (let i = 0; i < 5; i++) spans.push(span({ ...nano, at: NOW - 3 * HOUR + i * MINUTE, user: 'spiky', app: 'batch-job', cost_usd: 1 }))
  for (let d = 0; d < 6; d++) spans.push(span({ ...nano, at: NOW - d * DAY - 2 * HOUR, user: 'steady', cost_usd: 2 }))
  return spans
}

/** Every span /api/spans returns for a query string, following next_cursor. */
async function allSpans(query: string): Promise<Span[]> {
  const out: Span[] = []
  let cursor: string | null = null
  do {
    const page: { spans: Span[]; next_cursor: string | null } = await tg.api(`/api/spans?${query}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`)
    out.push(...page.spans)
    cursor = page.next_cursor
  } while (cursor)
  return out
}

function find(kind: Recommendation['kind'], subject: Recommendation['subject'], titleHas?: string): Recommendation {
  const found = answer.recommendations.filter(
    (r) => r.kind === kind && JSON.stringify(r.subject) === JSON.stringify(subject) && (titleHas === undefined || r.title.includes(titleHas)),
  )
  expect(found, `${kind} ${JSON.stringify(subject)} ${titleHas ?? ''}`).toHaveLength(1)
  return found[0]!
}

const monthly = (windowUsd: number) => Math.round(((windowUsd * 30 * DAY) / (answer.to - answer.from)) * 1e6) / 1e6

beforeAll(async () => {
  upstream = await startMockUpstream()
  tg = await startTestTollgate({ upstreams: { openai: upstream.url } })
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${tg.proxyUrl}/openai/v1`, maxRetries: 0 })

  // gpt-4o: 60 distinct calls, every fifth answered with HTTP 500.
  const calls: Promise<unknown>[] = []
  for (let i = 0; i < 60; i++) {
    const headers = i % 5 === 0 ? mockFaultHeaders({ status: 500 }) : {}
    calls.push(openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `question ${i}` }] }, { headers }).catch(() => null))
  }
  await Promise.all(calls)
  // gpt-4o-mini: one request sent 6 times byte for byte; 3 streams without include_usage.
  for (let i = 0; i < 6; i++) await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'same question' }] })
  for (let i = 0; i < 3; i++) {
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `stream ${i}` }], stream: true })
    for await (const chunk of stream) void chunk
  }
  // A model genai-prices does not know.
  for (let i = 0; i < 2; i++) await openai.chat.completions.create({ model: 'tollgate-private-1', messages: [{ role: 'user', content: `private ${i}` }] })

  const synthetic = syntheticSpans()
  const res = await fetch(`${tg.collectorUrl}/v1/spans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(synthetic) })
  expect(res.status).toBe(200)
  // 60 + 6 + 3 + 2 proxied spans in the last hour; the synthetic ones are older.
  await tg.waitForSpans(71)
  for (;;) {
    await tg.tollgate.collector.batcher.forceFlush()
    const total = (await allSpans(`from=${NOW - 8 * DAY}&to=${NOW + HOUR}`)).length
    if (total >= 71 + synthetic.length) break
    await new Promise((r) => setTimeout(r, 20))
  }
  answer = await tg.api<Answer>('/api/recommendations')
}, 60_000)

afterAll(async () => {
  await tg?.close()
  await upstream?.close()
})

describe('GET /api/recommendations on real spans', () => {
  it('covers the last 7 days by default, minute-aligned', () => {
    expect(answer.to % MINUTE).toBe(0)
    expect(answer.from % MINUTE).toBe(0)
    expect(answer.to - answer.from).toBeGreaterThanOrEqual(7 * DAY)
    expect(answer.to - answer.from).toBeLessThanOrEqual(7 * DAY + 2 * MINUTE)
    expect(Date.parse(answer.generated_at)).toBeGreaterThanOrEqual(NOW)
  })

  it('returns exactly the expected findings, in severity / USD / id order', () => {
    const got = answer.recommendations.map((r) => `${r.severity} ${r.kind} ${JSON.stringify(r.subject)}`).sort()
    expect(got).toEqual(
      [
        'critical failover {"provider":"openai","model":"gpt-4o"}',
        'critical hygiene {"user":"spiky"}',
        'critical hygiene {"app":"batch-job"}',
        'warning latency {"provider":"together","model":"meta-llama/Llama-3.3-70B-Instruct-Turbo"}',
        'warning hygiene {"provider":"openai","model":"gpt-4o-mini"}',
        'warning hygiene {"provider":"openai","model":"tollgate-private-1"}',
        'info cheaper_model {"provider":"openai","model":"gpt-4.1"}',
        'info caching {"provider":"openai","model":"gpt-4o-mini"}',
        'info caching {"provider":"anthropic","model":"claude-sonnet-4-20250514"}',
      ].sort(),
    )
    expect([...answer.recommendations].sort(compareRecommendations)).toEqual(answer.recommendations)
    expect(new Set(answer.recommendations.map((r) => r.id)).size).toBe(answer.recommendations.length)
  })

  it('failover: gpt-4o fails 20% with 5xx; risk is one retry of each at the average call cost', () => {
    const r = find('failover', { provider: 'openai', model: 'gpt-4o' })
    expect(r.evidence).toMatchObject({ requests: 60, errors: 12, failing_calls: 12, http_5xx: 12, failing_rate: 0.2, error_rate: 0.2, fallback_provider: 'azure', fallback_model: 'gpt-4o' })
    expect(r.evidence.avg_ok_cost_usd).toBeCloseTo(chatCost(GPT_4O), 9)
    expect(r.estimated_monthly_risk_usd).toBeCloseTo(monthly(12 * chatCost(GPT_4O)), 6)
    expect(r.sample_size).toBe(60)
    expect(r.confidence).toBe('low')
    expect(r.title).toBe('gpt-4o on openai fails 20% of calls')
    expect(r.config_snippet).toContain('fallbacks')
  })

  it('caching: 5 repeats of one identical request, saving = their cost', () => {
    const r = find('caching', { provider: 'openai', model: 'gpt-4o-mini' })
    expect(r.evidence).toMatchObject({ requests: 9, repeated_groups: 1, repeated_calls: 6, repeat_calls: 5 })
    expect(r.evidence.repeat_cost_usd).toBeCloseTo(5 * chatCost(GPT_4O_MINI), 9)
    expect(r.estimated_monthly_saving_usd).toBeCloseTo(monthly(5 * chatCost(GPT_4O_MINI)), 6)
  })

  it('caching: the 20,000-byte prefix sent 4 times, priced at Anthropic cache rates', () => {
    const r = find('caching', { provider: 'anthropic', model: 'claude-sonnet-4-20250514' })
    // 20,000 bytes ≈ 5,000 tokens; 3 repeats read at $0.30 instead of $3, one cache write at $3.75.
    const saving = (5000 * 3 * (3 - 0.3) - 5000 * (3.75 - 3)) / 1e6
    expect(r.evidence).toMatchObject({ requests: 11, prefix_groups: 1, prefix_calls: 4, prefix_tokens: 5000, repeat_prefix_tokens: 15000, cached_input_tokens: 0 })
    expect(r.evidence.saving_usd).toBeCloseTo(saving, 9)
    expect(r.estimated_monthly_saving_usd).toBeCloseTo(monthly(saving), 6)
    expect(r.config_snippet).toContain('cache_control')
  })

  it('cheaper_model: gpt-4.1 → gpt-4.1-mini as a what-if, the same tokens re-priced', () => {
    const r = find('cheaper_model', { provider: 'openai', model: 'gpt-4.1' })
    // 60 calls × 400 input and 5 output tokens on average: $2/$8 against $0.40/$1.60 per 1M.
    const current = (24_000 * 2 + 300 * 8) / 1e6
    const candidate = (24_000 * 0.4 + 300 * 1.6) / 1e6
    expect(r.evidence).toMatchObject({ requests: 60, avg_output_tokens: 5, output_cv: 0.2, input_tokens: 24_000, output_tokens: 300, candidate_provider: 'openai', candidate_model: 'gpt-4.1-mini' })
    expect(r.evidence.current_cost_usd).toBeCloseTo(current, 9)
    expect(r.evidence.candidate_cost_usd).toBeCloseTo(candidate, 9)
    expect(r.estimated_monthly_saving_usd).toBeCloseTo(monthly(current - candidate), 6)
    expect(r.title).toMatch(/^What-if/)
    expect(r.summary).toContain('not known to be equal')
  })

  it('latency: the same Llama on together is 6× slower than on groq', () => {
    const r = find('latency', { provider: 'together', model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo' })
    expect(r.evidence).toMatchObject({
      requests: 60,
      metric: 'latency',
      p95_ms: 2400,
      p95_ttft_ms: 1200,
      alternative_provider: 'groq',
      alternative_model: 'llama-3.3-70b-versatile',
      alternative_same_model: 'yes',
      alternative_p95_ms: 400,
      ratio: 6,
      diff_ms: 2000,
    })
  })

  it('hygiene: streams without usage, an unpriced model', () => {
    const streams = find('hygiene', { provider: 'openai', model: 'gpt-4o-mini' })
    expect(streams.evidence).toMatchObject({ requests: 9, no_usage_streams: 3, no_usage_requests: 3 })
    expect(streams.evidence.unmeasured_cost_usd).toBeCloseTo(3 * chatCost(GPT_4O_MINI), 9)
    expect(streams.config_snippet).toContain('include_usage: true')
    const unpriced = find('hygiene', { provider: 'openai', model: 'tollgate-private-1' })
    expect(unpriced.evidence).toMatchObject({ requests: 2, unpriced_requests: 2, input_tokens: 240, output_tokens: 96, reference_model: null })
    expect(JSON.parse(unpriced.config_snippet!.replace(/"<[^>]+>"/g, '0'))).toHaveProperty(['priceOverrides', 'tollgate-private-1'])
  })

  it('hygiene: spend spikes of a user (raw table) and an app (rollups) against their own baseline', () => {
    const baselineDays = (answer.to - DAY - answer.from) / DAY
    for (const subject of [{ user: 'spiky' }, { app: 'batch-job' }]) {
      const r = find('hygiene', subject)
      expect(r.evidence).toMatchObject({ recent_usd: 5, recent_requests: 5, baseline_usd: 1.8 })
      expect(r.evidence.baseline_daily_usd).toBeCloseTo(1.8 / baselineDays, 6)
      expect(r.evidence.ratio).toBeCloseTo(5 / (1.8 / baselineDays), 3)
      expect(r.estimated_monthly_risk_usd).toBeCloseTo((5 - 1.8 / baselineDays) * 30, 4)
      expect(r.sample_size).toBe(5)
    }
  })

  it('every spans_query returns exactly the cited spans from /api/spans', async () => {
    for (const r of answer.recommendations) {
      const spans = await allSpans(r.spans_query)
      const expected = r.kind === 'failover' ? r.evidence.errors : r.sample_size
      expect(spans.length, `${r.kind} ${r.title}: ${r.spans_query}`).toBe(expected)
      for (const s of spans) {
        if (r.subject.provider) expect(s.provider).toBe(r.subject.provider)
        if (r.subject.model) expect(s.response_model ?? s.request_model).toBe(r.subject.model)
        if (r.subject.user) expect(s.user).toBe(r.subject.user)
        if (r.subject.app) expect(s.app).toBe(r.subject.app)
        expect(s.error_type === 'none').toBe(r.kind !== 'failover')
      }
    }
    const latency = find('latency', { provider: 'together', model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo' })
    expect(await allSpans(String(latency.evidence.alternative_spans_query))).toHaveLength(60)
  })

  it('is deterministic: the same window gives the same list', async () => {
    const again = await tg.api<Answer>(`/api/recommendations?from=${answer.from}&to=${answer.to}`)
    expect(again.recommendations).toEqual(answer.recommendations)
  })

  it('rejects a bad range', async () => {
    const res = await fetch(`${tg.collectorUrl}/api/recommendations?from=now&to=now-1h`)
    expect(res.status).toBe(400)
  })
})

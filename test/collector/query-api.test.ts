/**
 * The collector's query API (/api/spans, /api/summary, /api/timeseries) against
 * a known seed: a few hundred hand-built spans over ~3 days, posted to a real
 * collector (chDB) through POST /v1/spans. Every expected number is computed
 * here from the same seed, never read back from the store.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { QUERY_SLOTS_HEADER } from '../../collector/api/shapes.ts'
import type { Timeseries, SummaryRow } from '../../collector/queries.ts'
import { spanModel, type ErrorType, type Span } from '../../collector/schema.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const SECOND = 1000
const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 24 * HOUR

// Anchored on a whole hour so rollup buckets are known: T0 is 72 h before the
// current hour; the seed runs from T0 to a few minutes before now.
const NOW0 = Date.now()
const T0 = Math.floor(NOW0 / HOUR) * HOUR - 72 * HOUR
const ALL_FROM = T0 - 3 * HOUR
const SIX_T0 = Math.floor(T0 / (6 * HOUR)) * 6 * HOUR
const DAY_T0 = Math.floor(T0 / (24 * HOUR)) * 24 * HOUR
/** Edges that cut hours (minute-aligned): minute rollup + hour rollup + minute rollup. */
const CUT_FROM = T0 + 5 * HOUR + 17 * MINUTE
const CUT_TO = T0 + 40 * HOUR + 43 * MINUTE
/** Fewer than 6 whole hours: the minute rollup alone. */
const SHORT_FROM = T0 + 10 * HOUR + 3 * MINUTE
const SHORT_TO = T0 + 13 * HOUR + 58 * MINUTE
const TIE_AT = T0 + 20 * HOUR + 30 * MINUTE + 123

// ---------------------------------------------------------------- the seed

/** mulberry32: the same seed every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(20240611)
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
const round3 = (n: number) => Math.round(n * 1000) / 1000

interface Profile {
  provider: string
  endpoint: Span['endpoint']
  request: string | null
  response: string | null
  /** USD per token; undefined = no price known (unpriced). */
  inRate?: number
  outRate?: number
  reasoning?: boolean
  noUsage?: boolean
}
const PROFILES: Profile[] = [
  // Same request model, two answering models: counted under gpt-4o-2024-08-06 and gpt-4o.
  { provider: 'openai', endpoint: 'chat', request: 'gpt-4o', response: 'gpt-4o-2024-08-06', inRate: 2.5e-6, outRate: 1e-5 },
  { provider: 'openai', endpoint: 'chat', request: 'gpt-4o', response: 'gpt-4o', inRate: 2.5e-6, outRate: 1e-5 },
  { provider: 'openai', endpoint: 'responses', request: 'gpt-4o-mini', response: 'gpt-4o-mini-2024-07-18', inRate: 1.5e-7, outRate: 6e-7, reasoning: true },
  { provider: 'openai', endpoint: 'embeddings', request: 'text-embedding-3-small', response: 'text-embedding-3-small', inRate: 2e-8, outRate: 0 },
  { provider: 'anthropic', endpoint: 'messages', request: 'claude-sonnet-4-20250514', response: 'claude-sonnet-4-20250514', inRate: 3e-6, outRate: 1.5e-5 },
  { provider: 'anthropic', endpoint: 'messages', request: 'claude-3-5-haiku-latest', response: 'claude-3-5-haiku-20241022', inRate: 8e-7, outRate: 4e-6 },
  { provider: 'gemini', endpoint: 'generate', request: 'gemini-2.0-flash', response: 'gemini-2.0-flash', inRate: 1e-7, outRate: 4e-7, reasoning: true },
  { provider: 'groq', endpoint: 'chat', request: 'llama-3.3-70b-versatile', response: 'llama-3.3-70b-versatile' },
  { provider: 'openrouter', endpoint: 'other', request: null, response: null, noUsage: true },
]
const ERRORS: { type: ErrorType; status: number }[] = [
  { type: 'http_4xx', status: 400 },
  { type: 'http_5xx', status: 502 },
  { type: 'rate_limited', status: 429 },
  { type: 'rate_limited', status: 429 },
  { type: 'timeout', status: 0 },
  { type: 'upstream_reset', status: 200 },
  { type: 'client_aborted', status: 0 },
  { type: 'proxy_error', status: 0 },
]

function build(startMs: number, attribution: Partial<Pick<Span, 'user' | 'session' | 'app' | 'properties'>> = {}): Span {
  const p = pick(PROFILES)
  const error = rand() < 0.75 ? null : pick(ERRORS)
  const ok = error === null
  const embeddings = p.endpoint === 'embeddings'
  const stream = !embeddings && rand() < 0.6
  const duration = round3(80 + -Math.log(1 - rand()) * 1500)
  let ttft: number | null = null
  if (ok && !embeddings) ttft = stream ? round3(duration * (0.05 + 0.4 * rand())) : rand() < 0.3 ? null : round3(duration * 0.97)
  else if (error?.type === 'upstream_reset' && stream) ttft = round3(duration * 0.3)

  let usage: Pick<Span, 'input_tokens' | 'output_tokens' | 'cached_input_tokens' | 'cache_write_tokens' | 'reasoning_tokens' | 'cost_usd' | 'cost_status'> = {
    input_tokens: null, output_tokens: null, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null,
    cost_usd: null, cost_status: 'no_usage',
  }
  if (ok && !p.noUsage && rand() > 0.06) {
    const input = 10 + Math.floor(rand() * 5000)
    const output = embeddings ? null : 1 + Math.floor(rand() * 1500)
    const cached = p.provider === 'anthropic' || (p.provider === 'openai' && rand() < 0.5) ? Math.floor(input * rand() * 0.8) : null
    const write = p.provider === 'anthropic' ? (rand() < 0.3 ? Math.floor(input * 0.1) : 0) : null
    const reasoning = p.reasoning && output !== null && rand() < 0.7 ? Math.floor(output * rand() * 0.5) : null
    const priced = p.inRate !== undefined
    usage = {
      input_tokens: input, output_tokens: output, cached_input_tokens: cached, cache_write_tokens: write, reasoning_tokens: reasoning,
      cost_usd: priced ? (input - (cached ?? 0)) * p.inRate! + (cached ?? 0) * p.inRate! * 0.1 + (output ?? 0) * p.outRate! : null,
      cost_status: priced ? 'priced' : 'unpriced',
    }
  }
  const user = pick(['alice', 'bob', 'carol', 'dave', null])
  const properties: Record<string, string> = {}
  if (rand() < 0.7) properties.team = pick(['a', 'b'])
  if (rand() < 0.5) properties.env = pick(['prod', 'dev'])
  if (rand() < 0.2) properties.route = 'v1:chat'
  return {
    span_id: randomUUID(),
    started_at: new Date(startMs).toISOString(),
    ended_at: new Date(startMs + Math.round(duration)).toISOString(),
    mode: rand() < 0.8 ? 'reverse' : 'forward',
    provider: p.provider,
    endpoint: p.endpoint,
    request_model: p.request,
    response_model: ok ? p.response : null,
    stream,
    status_code: error?.status ?? 200,
    error_type: error?.type ?? 'none',
    duration_ms: duration,
    ttft_ms: ttft,
    ...usage,
    finish_reason: ok && !embeddings ? (rand() < 0.85 ? 'stop' : 'length') : null,
    user,
    session: user && rand() < 0.8 ? `${user}-s${1 + Math.floor(rand() * 3)}` : null,
    app: pick(['web', 'batch', 'cli', null]),
    properties,
    request_bytes: 100 + Math.floor(rand() * 10_000),
    response_bytes: Math.floor(rand() * 50_000),
    client_addr: rand() < 0.9 ? '127.0.0.1' : null,
    ...attribution,
  }
}

/** Every span the store should hold (the paging test adds to it). */
const all: Span[] = []
// Bursts every ~30 min over 70 h, 1–4 calls each, 5–25 s apart: several per minute.
for (let k = 0; k < 140; k++) {
  let t = T0 + k * 30 * MINUTE + Math.floor(rand() * 29 * MINUTE)
  for (let j = 0, n = 1 + Math.floor(rand() * 4); j < n; j++) {
    all.push(build(t))
    t += 5 * SECOND + Math.floor(rand() * 20 * SECOND)
  }
}
// Five calls at the same millisecond: the span_id tie-break of paging.
for (let i = 0; i < 5; i++) all.push(build(TIE_AT, { session: 'tie-session' }))
// On both sides of the range edges and of an hour boundary.
for (const t of [CUT_FROM - 1, CUT_FROM, CUT_TO - 1, CUT_TO, T0 + 6 * HOUR - 1, T0 + 6 * HOUR, SHORT_FROM, SHORT_TO - 1]) all.push(build(t))
// The last hour (for now-1h); nothing else lies within 1.5 h of now.
const recent: Span[] = []
for (let i = 0; i < 12; i++) recent.push(build(NOW0 - 55 * MINUTE + i * 4 * MINUTE + Math.floor(rand() * 1000)))
all.push(...recent)

// ---------------------------------------------------------------- expectations

const ms = (s: Span) => Date.parse(s.started_at)
const inRange = (from: number, to: number) => (s: Span) => ms(s) >= from && ms(s) < to
const modelOf = (s: Span) => spanModel(s) ?? ''

function quantileBounds(values: number[], p: number): [number, number] {
  const v = [...values].sort((a, b) => a - b)
  const n = v.length
  // ClickHouse's t-digest (epsilon 0.01) merges neighbouring values into
  // centroids of up to ~4·n·0.01·q(1−q) points and interpolates between
  // centroid means stored as Float32. So it is off by a few ranks, not by a
  // fixed amount of milliseconds: accept any value between the exact
  // quantiles 3 % + 2 ranks either side of p, with Float32 and
  // 3-decimal-rounding slack on the ends. The rollups' bfloat16 states keep
  // 8 significant bits, truncated: up to 1/128 below the value they stand for.
  const tol = 0.03 + 2 / n
  const lo = v[Math.max(0, Math.floor((p - tol) * (n - 1)))]!
  const hi = v[Math.min(n - 1, Math.ceil((p + tol) * (n - 1)))]!
  return [lo * (1 - 1 / 128) - 1e-3, hi * (1 + 1e-6) + 1e-3]
}

function expectQuantile(got: number | null | undefined, values: number[], p: number, label: string): void {
  if (values.length === 0) {
    expect(got ?? null, label).toBeNull()
    return
  }
  const [lo, hi] = quantileBounds(values, p)
  expect(got, label).not.toBeNull()
  expect(got!, `${label}: ${got} not in [${lo}, ${hi}]`).toBeGreaterThanOrEqual(lo)
  expect(got!, `${label}: ${got} not in [${lo}, ${hi}]`).toBeLessThanOrEqual(hi)
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** `quantiles: false` for rows from the per-user rollups, which keep sums only: quantiles must be null there. */
function expectSummaryRow(row: SummaryRow | undefined, spans: Span[], label: string, { quantiles = true } = {}): void {
  expect(row, label).toBeDefined()
  const r = row!
  const n = spans.length
  const errors = spans.filter((s) => s.error_type !== 'none').length
  expect(r.requests, `${label} requests`).toBe(n)
  expect(r.errors, `${label} errors`).toBe(errors)
  expect(r.error_rate, `${label} error_rate`).toBeCloseTo(n ? errors / n : 0, 12)
  expect(r.rate_limited, `${label} rate_limited`).toBe(spans.filter((s) => s.error_type === 'rate_limited').length)
  expect(r.streams, `${label} streams`).toBe(spans.filter((s) => s.stream).length)
  expect(r.tokens, `${label} tokens`).toEqual({
    input: sum(spans.map((s) => s.input_tokens ?? 0)),
    output: sum(spans.map((s) => s.output_tokens ?? 0)),
    cached_input: sum(spans.map((s) => s.cached_input_tokens ?? 0)),
    cache_write: sum(spans.map((s) => s.cache_write_tokens ?? 0)),
    reasoning: sum(spans.map((s) => s.reasoning_tokens ?? 0)),
  })
  const cost = sum(spans.map((s) => s.cost_usd ?? 0))
  expect(Math.abs(r.cost_usd - cost), `${label} cost_usd ${r.cost_usd} vs ${cost}`).toBeLessThanOrEqual(1e-9)
  expect(r.unpriced_requests, `${label} unpriced`).toBe(spans.filter((s) => s.cost_status === 'unpriced').length)
  expect(r.no_usage_requests, `${label} no_usage`).toBe(spans.filter((s) => s.cost_status === 'no_usage').length)
  if (n === 0) return
  expect(r.latency_ms.avg!, `${label} avg`).toBeCloseTo(sum(spans.map((s) => s.duration_ms)) / n, 2)
  const durations = spans.map((s) => s.duration_ms)
  const ttfts = spans.flatMap((s) => (s.ttft_ms === null ? [] : [s.ttft_ms]))
  if (!quantiles) {
    expect({ ...r.latency_ms, avg: null }, `${label} no latency quantiles`).toEqual({ avg: null, p50: null, p90: null, p95: null, p99: null })
    expect(r.ttft_ms, `${label} no TTFT quantiles`).toEqual({ p50: null, p90: null, p95: null, p99: null })
  } else {
  expectQuantile(r.latency_ms.p50, durations, 0.5, `${label} latency p50`)
  expectQuantile(r.latency_ms.p95, durations, 0.95, `${label} latency p95`)
  expectQuantile(r.latency_ms.p99, durations, 0.99, `${label} latency p99`)
  expectQuantile(r.ttft_ms.p50, ttfts, 0.5, `${label} ttft p50`)
  expectQuantile(r.ttft_ms.p95, ttfts, 0.95, `${label} ttft p95`)
  }
  const gen = spans.filter((s) => (s.output_tokens ?? 0) > 0 && s.ttft_ms !== null && s.duration_ms > s.ttft_ms)
  const genMs = sum(gen.map((s) => s.duration_ms - s.ttft_ms!))
  if (genMs > 0) expect(r.output_tokens_per_s!, `${label} tokens/s`).toBeCloseTo((sum(gen.map((s) => s.output_tokens!)) / genMs) * 1000, 1)
  else expect(r.output_tokens_per_s, `${label} tokens/s`).toBeNull()
}

function groupBy<K>(spans: Span[], key: (s: Span) => K): Map<K, Span[]> {
  const m = new Map<K, Span[]>()
  for (const s of spans) {
    const k = key(s)
    m.set(k, [...(m.get(k) ?? []), s])
  }
  return m
}

/** Newest first; spans at the same millisecond in any order (their span_id order is ClickHouse's UUID order). */
function expectNewestFirst(got: Span[], expected: Span[], label: string): void {
  expect(got.map((s) => s.started_at), label).toEqual(expected.map((s) => s.started_at).sort().reverse())
  expect(new Set(got.map((s) => s.span_id)), label).toEqual(new Set(expected.map((s) => s.span_id)))
}

// ---------------------------------------------------------------- HTTP

let tg: TestTollgate
const byId = new Map<string, Span>()

async function get(pathAndQuery: string): Promise<{ status: number; type: string; body: any }> {
  const res = await fetch(`${tg.collectorUrl}${pathAndQuery}`)
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() }
}
async function api<T>(path: string, query: Record<string, string | number>): Promise<T> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))
  const r = await get(`${path}?${qs}`)
  if (r.status !== 200) throw new Error(`${path}?${qs} answered ${r.status}: ${JSON.stringify(r.body)}`)
  return r.body as T
}
const listSpans = (q: Record<string, string | number>) => api<{ spans: Span[]; next_cursor: string | null }>('/api/spans', { from: ALL_FROM, limit: 1000, ...q })
const summaryRows = async (q: Record<string, string | number>) => (await api<{ rows: SummaryRow[] }>('/api/summary', { from: ALL_FROM, ...q })).rows
const series = (q: Record<string, string | number>) => api<Timeseries>('/api/timeseries', q)

/** Every field sent comes back equal; fields the seed leaves out (newer optional ones) come back null. */
function expectAsSent(got: Span): void {
  const sent = byId.get(got.span_id)!
  expect(sent).toBeDefined()
  const extra = Object.fromEntries(Object.keys(got).filter((k) => !(k in sent)).map((k) => [k, null]))
  expect(got).toEqual({ ...sent, ...extra })
}

async function post(spans: Span[]): Promise<void> {
  const res = await fetch(`${tg.collectorUrl}/v1/spans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spans) })
  expect(await res.json()).toEqual({ accepted: spans.length, rejected: [] })
  await tg.tollgate.collector.batcher.forceFlush()
  for (const s of spans) byId.set(s.span_id, s)
}

beforeAll(async () => {
  tg = await startTestTollgate()
  await post(all)
})
afterAll(async () => {
  await tg?.close()
})

// ---------------------------------------------------------------- /api/spans

describe('query slots header', () => {
  it('every /api/ answer says the embedded store runs one query at a time; other paths do not carry it', async () => {
    for (const path of ['/api/summary', '/api/timeseries?metric=requests', '/api/spans?limit=1', '/api/health', '/api/summary?group_by=nope']) {
      const res = await fetch(`${tg.collectorUrl}${path}`)
      await res.arrayBuffer()
      expect(res.headers.get(QUERY_SLOTS_HEADER), path).toBe('1')
    }
    const res = await fetch(`${tg.collectorUrl}/healthz`)
    await res.arrayBuffer()
    expect(res.headers.get(QUERY_SLOTS_HEADER)).toBeNull()
  })
})

describe('GET /api/spans', () => {
  it('returns every seeded span, newest first, each field exactly as sent', async () => {
    const page = await listSpans({})
    expect(page.next_cursor).toBeNull()
    expectNewestFirst(page.spans, all, 'all spans')
    for (const s of page.spans) expectAsSent(s)
    // Nulls stay null, not 0 or '' (spot checks that the seed really has them).
    expect(page.spans.some((s) => s.ttft_ms === null && s.error_type === 'none')).toBe(true)
    expect(page.spans.some((s) => s.input_tokens === null && s.cost_status === 'no_usage')).toBe(true)
    expect(page.spans.some((s) => s.user === null && s.app === null)).toBe(true)
    expect(page.spans.some((s) => s.request_model === null && s.response_model === null)).toBe(true)
    expect(page.spans.some((s) => Object.keys(s.properties).length === 0)).toBe(true)
    expect(page.spans.some((s) => !s.started_at.endsWith('000Z'))).toBe(true)
  })

  const filters: [string, string, (s: Span) => boolean][] = [
    ['model', 'gpt-4o', (s) => modelOf(s) === 'gpt-4o'],
    ['model', 'gpt-4o-2024-08-06', (s) => modelOf(s) === 'gpt-4o-2024-08-06'],
    ['model', 'claude-3-5-haiku-20241022', (s) => modelOf(s) === 'claude-3-5-haiku-20241022'],
    ['provider', 'anthropic', (s) => s.provider === 'anthropic'],
    ['provider', 'openrouter', (s) => s.provider === 'openrouter'],
    ['status', 'error', (s) => s.error_type !== 'none'],
    ['status', 'ok', (s) => s.error_type === 'none'],
    ['status', 'rate_limited', (s) => s.error_type === 'rate_limited'],
    ['status', 'upstream_reset', (s) => s.error_type === 'upstream_reset'],
    ['user', 'alice', (s) => s.user === 'alice'],
    ['session', 'bob-s2', (s) => s.session === 'bob-s2'],
    ['session', 'tie-session', (s) => s.session === 'tie-session'],
    ['app', 'batch', (s) => s.app === 'batch'],
    ['endpoint', 'embeddings', (s) => s.endpoint === 'embeddings'],
    ['endpoint', 'messages', (s) => s.endpoint === 'messages'],
    ['property', 'team:a', (s) => s.properties.team === 'a'],
    ['property', 'env:dev', (s) => s.properties.env === 'dev'],
    ['property', 'route:v1:chat', (s) => s.properties.route === 'v1:chat'],
    ['property', 'env', (s) => 'env' in s.properties],
    ['q', 'GPT-4O', (s) => modelOf(s).toLowerCase().includes('gpt-4o')],
    ['q', 'haiku', (s) => modelOf(s).includes('haiku')],
  ]
  it.each(filters)('filter %s=%s returns exactly the matching spans', async (name, value, match) => {
    const expected = all.filter(match)
    expect(expected.length).toBeGreaterThan(0)
    expect(expected.length).toBeLessThan(all.length)
    const { spans } = await listSpans({ [name]: value })
    expectNewestFirst(spans, expected, `${name}=${value}`)
  })

  it('combines filters with AND', async () => {
    const { spans } = await listSpans({ provider: 'openai', status: 'ok', user: 'carol', property: 'team:b' })
    expectNewestFirst(spans, all.filter((s) => s.provider === 'openai' && s.error_type === 'none' && s.user === 'carol' && s.properties.team === 'b'), 'and')
  })

  it('from is inclusive and to exclusive, as ISO, ISO with an offset, epoch ms and epoch s', async () => {
    const expected = all.filter(inRange(CUT_FROM, CUT_TO))
    expect(expected.map(ms)).toContain(CUT_FROM)
    expect(expected.map(ms)).toContain(CUT_TO - 1)
    const offsetIso = (t: number) => new Date(t + 2 * HOUR).toISOString().replace('Z', '+02:00')
    for (const [from, to] of [
      [new Date(CUT_FROM).toISOString(), new Date(CUT_TO).toISOString()],
      [offsetIso(CUT_FROM), offsetIso(CUT_TO)],
      [String(CUT_FROM), String(CUT_TO)],
      [String(CUT_FROM / 1000), String(CUT_TO / 1000)],
    ]) {
      const { spans } = await listSpans({ from: from!, to: to! })
      expectNewestFirst(spans, expected, `${from}..${to}`)
    }
  })

  it('relative times: now-1h, -1h, and the 24 h default', async () => {
    for (const from of ['now-1h', '-1h', 'now-60m']) {
      const { spans } = await listSpans({ from, to: 'now' })
      expectNewestFirst(spans, recent, from)
    }
    const before = Date.now()
    const { spans } = await api<{ spans: Span[] }>('/api/spans', { limit: 1000 })
    const after = Date.now()
    // The server's "now" lies between before and after; a span within that window of the 24 h edge may go either way.
    const ids = new Set(spans.map((s) => s.span_id))
    for (const s of all) {
      if (ms(s) >= after - 24 * HOUR) expect(ids.has(s.span_id)).toBe(true)
      if (ms(s) < before - 24 * HOUR) expect(ids.has(s.span_id)).toBe(false)
    }
    expect(spans.length).toBeGreaterThan(recent.length)
  })

  it('SQL in filter values is data: no rows, no error, nothing dropped', async () => {
    const attacks = [
      "x' OR 1=1 --",
      "x') OR ('1'='1",
      "' UNION SELECT 1 --",
      "\\' OR 1=1 --",
      'x{model:String}',
      "gpt-4o'; DROP TABLE spans; --",
    ]
    for (const attack of attacks) {
      await Promise.all(['model', 'provider', 'status', 'user', 'session', 'app', 'endpoint', 'q', 'property'].map(async (name) => {
        const value = name === 'property' ? `${attack}:${attack}` : attack
        const list = await get(`/api/spans?${new URLSearchParams({ from: String(ALL_FROM), [name]: value })}`)
        expect(list.status, `${name}=${value}`).toBe(200)
        expect(list.body.spans, `${name}=${value}`).toEqual([])
        const sum = await get(`/api/summary?${new URLSearchParams({ from: String(ALL_FROM), [name]: value })}`)
        expect(sum.status, `summary ${name}=${value}`).toBe(200)
        expect(sum.body.rows[0].requests, `summary ${name}=${value}`).toBe(0)
        const ts = await get(`/api/timeseries?${new URLSearchParams({ from: String(ALL_FROM), step: '3600', [name]: value })}`)
        expect(ts.status, `timeseries ${name}=${value}`).toBe(200)
        expect(ts.body.series.flatMap((x: { values: number[] }) => x.values).filter((v: number) => v !== 0), `timeseries ${name}=${value}`).toEqual([])
      }))
    }
    for (const attack of attacks) {
      const r = await get(`/api/summary?${new URLSearchParams({ from: String(ALL_FROM), group_by: 'property', property_key: attack })}`)
      expect(r.status, attack).toBe(200)
      expect(r.body.rows, attack).toEqual([])
    }
    expect((await listSpans({})).spans).toHaveLength(all.length)
  })
})

// ---------------------------------------------------------------- /api/summary

const GROUP_KEYS: Record<'model' | 'provider' | 'app' | 'user' | 'session' | 'error_type' | 'status_code', (s: Span) => string> = {
  model: (s) => `${s.provider}|${modelOf(s)}`,
  error_type: (s) => s.error_type,
  status_code: (s) => String(s.status_code),
  provider: (s) => s.provider,
  app: (s) => s.app ?? '',
  user: (s) => s.user ?? '',
  session: (s) => s.session ?? '',
}
const rowKey = (g: Record<string, string>) => ('model' in g ? `${g.provider}|${g.model}` : Object.values(g)[0]!)

describe('GET /api/summary', () => {
  const ranges: [string, number, number | undefined][] = [
    ['everything (minute + hour rollups)', ALL_FROM, undefined],
    ['edges cutting hours (minute + hour + minute rollups)', CUT_FROM, CUT_TO],
    ['under 6 whole hours (minute rollup only)', SHORT_FROM, SHORT_TO],
  ]

  it.each(ranges)('totals over %s match the raw spans in range', async (_label, from, to) => {
    const expected = all.filter(inRange(from, to ?? Infinity))
    const rows = await summaryRows({ from, ...(to ? { to } : {}) })
    expect(rows).toHaveLength(1)
    expect(rows[0]!.group).toBeNull()
    expectSummaryRow(rows[0], expected, 'totals')
  })

  it.each(['model', 'provider', 'app', 'user', 'session', 'error_type', 'status_code'] as const)('group_by=%s over edges cutting hours', async (group) => {
    const expected = groupBy(all.filter(inRange(CUT_FROM, CUT_TO)), GROUP_KEYS[group])
    const rows = await summaryRows({ from: CUT_FROM, to: CUT_TO, group_by: group })
    expect(new Set(rows.map((r) => rowKey(r.group!)))).toEqual(new Set(expected.keys()))
    for (const r of rows) expectSummaryRow(r, expected.get(rowKey(r.group!))!, `${group}=${rowKey(r.group!)}`, { quantiles: group !== 'user' })
    // Most expensive first.
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1]!.cost_usd).toBeGreaterThanOrEqual(rows[i]!.cost_usd)
  })

  it('group_by=property&property_key=team: one row per value, spans without the key left out', async () => {
    const expected = groupBy(all.filter(inRange(CUT_FROM, CUT_TO)).filter((s) => 'team' in s.properties), (s) => s.properties.team!)
    const rows = await summaryRows({ from: CUT_FROM, to: CUT_TO, group_by: 'property', property_key: 'team' })
    expect(rows.map((r) => r.group)).toEqual(expect.arrayContaining([{ property: 'a' }, { property: 'b' }]))
    expect(rows).toHaveLength(expected.size)
    for (const r of rows) expectSummaryRow(r, expected.get(r.group!.property!)!, `team=${r.group!.property}`)
  })

  it('group_by=user over three days: daily and hourly per-user rollups plus raw edges, to the millisecond', async () => {
    // Whole days, whole hours and ragged ends at odd milliseconds, from the per-user rollups and raw spans.
    const from = T0 + 2 * HOUR + 7 * MINUTE + 123
    const to = T0 + 69 * HOUR + 31 * MINUTE - 45
    const spans = all.filter(inRange(from, to))
    // Each piece has spans of its own: the ragged ends, and hours beside whole days.
    expect(spans.filter(inRange(from, Math.ceil(from / HOUR) * HOUR)).length).toBeGreaterThan(0)
    expect(spans.filter(inRange(Math.floor(to / HOUR) * HOUR, to)).length).toBeGreaterThan(0)
    expect(Math.floor(to / DAY) - Math.ceil(from / DAY)).toBeGreaterThanOrEqual(1)
    const expected = groupBy(spans, GROUP_KEYS.user)
    const rows = await summaryRows({ from, to, group_by: 'user' })
    expect(new Set(rows.map((r) => rowKey(r.group!)))).toEqual(new Set(expected.keys()))
    for (const r of rows) expectSummaryRow(r, expected.get(rowKey(r.group!))!, `user=${rowKey(r.group!)}`, { quantiles: false })
    // A status filter reads raw spans (errors are counts there, not a key); a user filter stays on the rollups.
    const failed = groupBy(spans.filter((s) => s.error_type !== 'none'), GROUP_KEYS.user)
    const failedRows = await summaryRows({ from, to, group_by: 'user', status: 'error' })
    expect(new Set(failedRows.map((r) => rowKey(r.group!)))).toEqual(new Set(failed.keys()))
    for (const r of failedRows) expectSummaryRow(r, failed.get(rowKey(r.group!))!, `failed user=${rowKey(r.group!)}`)
    const someone = [...expected.keys()].find((k) => k !== '')!
    const one = await summaryRows({ from, to, group_by: 'user', user: someone })
    expect(one.map((r) => r.group)).toEqual([{ user: someone }])
    expectSummaryRow(one[0], expected.get(someone)!, `only ${someone}`, { quantiles: false })
  })

  it('the rollup path and the raw path (group_by=user) agree on the same range', async () => {
    for (const [from, to] of [[CUT_FROM, CUT_TO], [SHORT_FROM, SHORT_TO], [ALL_FROM, NOW0 + MINUTE]] as const) {
      const [total] = await summaryRows({ from, to })
      const byUser = await summaryRows({ from, to, group_by: 'user' })
      const add = (f: (r: SummaryRow) => number) => sum(byUser.map(f))
      expect(add((r) => r.requests)).toBe(total!.requests)
      expect(add((r) => r.errors)).toBe(total!.errors)
      expect(add((r) => r.rate_limited)).toBe(total!.rate_limited)
      expect(add((r) => r.tokens.input)).toBe(total!.tokens.input)
      expect(add((r) => r.tokens.reasoning)).toBe(total!.tokens.reasoning)
      expect(add((r) => r.unpriced_requests)).toBe(total!.unpriced_requests)
      expect(add((r) => r.no_usage_requests)).toBe(total!.no_usage_requests)
      expect(Math.abs(add((r) => r.cost_usd) - total!.cost_usd)).toBeLessThan(1e-8)
    }
  })

  it('limit keeps the top groups by spend', async () => {
    for (const group_by of ['user', 'model']) {
      const every = await summaryRows({ group_by })
      expect(every.length).toBeGreaterThan(2)
      const top = await summaryRows({ group_by, limit: 2 })
      expect(top).toEqual(every.slice(0, 2))
      expect(top[0]!.cost_usd).toBeGreaterThanOrEqual(top[1]!.cost_usd)
    }
  })

  const filtered: [string, Record<string, string>, (s: Span) => boolean][] = [
    ['provider (rollup)', { provider: 'openai' }, (s) => s.provider === 'openai'],
    ['model (rollup)', { model: 'gpt-4o' }, (s) => modelOf(s) === 'gpt-4o'],
    ['status=error (rollup)', { status: 'error' }, (s) => s.error_type !== 'none'],
    ['status=ok (rollup)', { status: 'ok' }, (s) => s.error_type === 'none'],
    ['status=rate_limited (rollup)', { status: 'rate_limited' }, (s) => s.error_type === 'rate_limited'],
    ['app (rollup)', { app: 'web' }, (s) => s.app === 'web'],
    ['endpoint (rollup)', { endpoint: 'messages' }, (s) => s.endpoint === 'messages'],
    ['q (rollup)', { q: 'CLAUDE' }, (s) => modelOf(s).includes('claude')],
    ['user (raw)', { user: 'alice' }, (s) => s.user === 'alice'],
    ['session (raw)', { session: 'carol-s1' }, (s) => s.session === 'carol-s1'],
    ['property (raw)', { property: 'team:a' }, (s) => s.properties.team === 'a'],
    ['model + user (raw)', { model: 'gpt-4o', user: 'bob' }, (s) => modelOf(s) === 'gpt-4o' && s.user === 'bob'],
  ]
  it.each(filtered)('filter %s', async (_label, q, match) => {
    for (const [from, to] of [[ALL_FROM, NOW0 + MINUTE], [CUT_FROM, CUT_TO]] as const) {
      const expected = all.filter(inRange(from, to)).filter(match)
      expect(expected.length).toBeGreaterThan(0)
      const rows = await summaryRows({ from, to, ...q })
      expectSummaryRow(rows[0], expected, JSON.stringify(q))
    }
  })

  it('model filter counts the same spans whichever table answers', async () => {
    // The rollups count a span under response_model ?? request_model; a raw
    // query forced by group_by=user must count the same spans.
    const [rollup] = await summaryRows({ model: 'gpt-4o' })
    const raw = await summaryRows({ model: 'gpt-4o', group_by: 'user' })
    expect(sum(raw.map((r) => r.requests))).toBe(rollup!.requests)
  })
})

// ---------------------------------------------------------------- /api/timeseries

function bucketed(spans: Span[], from: number, stepMs: number, n: number): Span[][] {
  const out: Span[][] = Array.from({ length: n }, () => [])
  for (const s of spans) {
    const i = Math.floor((ms(s) - from) / stepMs)
    if (i >= 0 && i < n) out[i]!.push(s)
  }
  return out
}

describe('GET /api/timeseries', () => {
  const cases: [number, number, number][] = [
    [3600, T0, T0 + 72 * HOUR],
    [60, SHORT_FROM, SHORT_TO],
    [60, T0, T0 + 72 * HOUR],
    [300, T0 + 5 * HOUR + 15 * MINUTE, T0 + 40 * HOUR + 45 * MINUTE],
    [10, T0 + 20 * HOUR, T0 + 22 * HOUR],
    // Six-hour and daily steps read the six-hour and daily rollups.
    [21600, SIX_T0 + 6 * HOUR, SIX_T0 + 66 * HOUR],
    [86400, DAY_T0 + 24 * HOUR, DAY_T0 + 72 * HOUR],
  ]
  it.each(cases)('step %i: bucket boundaries, zero-filled, per-bucket requests/errors/cost, sums equal summary', async (step, from, to) => {
    const stepMs = step * 1000
    const n = (to - from) / stepMs
    const expected = bucketed(all, from, stepMs, n)
    const requests = await series({ from, to, step, metric: 'requests' })
    expect(requests).toMatchObject({ metric: 'requests', step_s: step, from, to })
    expect(requests.buckets).toEqual(Array.from({ length: n }, (_, i) => from + i * stepMs))
    expect(requests.series).toHaveLength(1)
    expect(requests.series[0]!.group).toBeNull()
    expect(requests.series[0]!.values).toEqual(expected.map((b) => b.length))
    if (step < 3600) expect(requests.series[0]!.values).toContain(0)

    const errors = await series({ from, to, step, metric: 'errors' })
    expect(errors.series[0]!.values).toEqual(expected.map((b) => b.filter((s) => s.error_type !== 'none').length))

    const cost = await series({ from, to, step, metric: 'cost_usd' })
    const costs = cost.series[0]!.values
    expect(costs).toHaveLength(n)
    costs.forEach((v, i) => expect(Math.abs(v! - sum(expected[i]!.map((s) => s.cost_usd ?? 0))), `cost bucket ${i}`).toBeLessThanOrEqual(1e-9))

    const [total] = await summaryRows({ from, to })
    expect(sum(requests.series[0]!.values.map(Number))).toBe(total!.requests)
    expect(sum(errors.series[0]!.values.map(Number))).toBe(total!.errors)
    expect(Math.abs(sum(costs.map(Number)) - total!.cost_usd)).toBeLessThan(1e-8)
  })

  it.each(cases)('step %i: latency_p50 per bucket, null where empty', async (step, from, to) => {
    const stepMs = step * 1000
    const expected = bucketed(all, from, stepMs, (to - from) / stepMs)
    const p50 = await series({ from, to, step, metric: 'latency_p50' })
    const values = p50.series[0]!.values
    expected.forEach((b, i) => expectQuantile(values[i], b.map((s) => s.duration_ms), 0.5, `p50 bucket ${i} (${b.length} spans)`))
  })

  it('group_by=model: one zero-filled series per model, summing to the totals', async () => {
    const from = T0
    const to = T0 + 72 * HOUR
    const ts = await series({ from, to, step: 3600, metric: 'requests', group_by: 'model' })
    const expected = groupBy(all.filter(inRange(from, to)), modelOf)
    expect(new Set(ts.series.map((s) => s.group))).toEqual(new Set(expected.keys()))
    for (const s of ts.series) {
      expect(s.values).toEqual(bucketed(expected.get(s.group!)!, from, HOUR, 72).map((b) => b.length))
    }
    expect(ts.series.some((s) => s.values.includes(0))).toBe(true)
    const [total] = await summaryRows({ from, to })
    expect(sum(ts.series.flatMap((s) => s.values.map(Number)))).toBe(total!.requests)

    const cost = await series({ from, to, step: 3600, metric: 'cost_usd', group_by: 'model' })
    for (const s of cost.series) {
      const want = bucketed(expected.get(s.group!)!, from, HOUR, 72).map((b) => sum(b.map((x) => x.cost_usd ?? 0)))
      s.values.forEach((v, i) => expect(Math.abs(v! - want[i]!)).toBeLessThanOrEqual(1e-9))
    }
  })

  it('group_by=user (raw table): one series per user, null users as ""', async () => {
    const from = T0
    const to = T0 + 72 * HOUR
    const ts = await series({ from, to, step: 3600, metric: 'requests', group_by: 'user' })
    const expected = groupBy(all.filter(inRange(from, to)), (s) => s.user ?? '')
    expect(new Set(ts.series.map((s) => s.group))).toEqual(new Set(expected.keys()))
    for (const s of ts.series) expect(s.values).toEqual(bucketed(expected.get(s.group!)!, from, HOUR, 72).map((b) => b.length))
  })

  it('group_by=user by the day (daily per-user rollup): requests, errors and cost per user per day', async () => {
    const from = Math.floor(ALL_FROM / DAY) * DAY
    const days = Math.ceil((NOW0 + MINUTE - from) / DAY)
    const to = from + days * DAY
    const expected = groupBy(all.filter(inRange(from, to)), (s) => s.user ?? '')
    const [requests, cost, errors] = await Promise.all([
      series({ from, to, step: 86_400, metric: 'requests', group_by: 'user' }),
      series({ from, to, step: 86_400, metric: 'cost_usd', group_by: 'user' }),
      series({ from, to, step: 86_400, metric: 'errors', group_by: 'user' }),
    ])
    expect(new Set(requests.series.map((s) => s.group))).toEqual(new Set(expected.keys()))
    for (const s of requests.series) expect(s.values, `requests of ${s.group}`).toEqual(bucketed(expected.get(s.group!)!, from, DAY, days).map((b) => b.length))
    for (const s of errors.series) expect(s.values, `errors of ${s.group}`).toEqual(bucketed(expected.get(s.group!)!, from, DAY, days).map((b) => b.filter((x) => x.error_type !== 'none').length))
    expect(sum(errors.series.flatMap((s) => s.values.map((v) => v ?? 0))), 'some errors').toBeGreaterThan(0)
    for (const s of cost.series) {
      const want = bucketed(expected.get(s.group!)!, from, DAY, days).map((b) => sum(b.map((x) => x.cost_usd ?? 0)))
      s.values.forEach((v, i) => expect(Math.abs((v ?? 0) - want[i]!), `cost of ${s.group} on day ${i}`).toBeLessThan(1e-8))
    }
  })

  it('several comma-separated metrics in one call equal one call each', async () => {
    const metrics = ['requests', 'errors', 'latency_p50', 'latency_p95', 'ttft_p50', 'cost_usd']
    for (const [step, from, to] of [[3600, T0, T0 + 72 * HOUR], [21600, SIX_T0 + 6 * HOUR, SIX_T0 + 66 * HOUR], [300, CUT_FROM, CUT_TO]] as const) {
      const together = await series({ from, to, step, metric: metrics.join(',') })
      expect(together.metric).toBe(metrics.join(','))
      expect(together.series.map((s) => s.metric)).toEqual(metrics)
      for (const metric of metrics) {
        const alone = await series({ from, to, step, metric })
        expect(alone.series.map((s) => s.metric)).toEqual([metric])
        expect(together.series.find((s) => s.metric === metric)!.values, `${metric} at step ${step}`).toEqual(alone.series[0]!.values)
      }
    }
    const grouped = await series({ from: T0, to: T0 + 72 * HOUR, step: 3600, metric: 'requests,cost_usd', group_by: 'model' })
    const models = new Set(all.map((x) => x.response_model ?? x.request_model ?? ''))
    expect(grouped.series.filter((s) => s.metric === 'requests').map((s) => s.group).sort()).toEqual([...models].sort())
    expect(grouped.series.filter((s) => s.metric === 'cost_usd')).toHaveLength(models.size)
  })

  it('a from/to off the step widens to whole steps', async () => {
    const from = CUT_FROM + 30 * SECOND
    const to = CUT_TO + 30 * SECOND
    const ts = await series({ from, to, step: 3600 })
    expect(ts.from).toBe(Math.floor(from / HOUR) * HOUR)
    expect(ts.to).toBe(Math.ceil(to / HOUR) * HOUR)
    expect(ts.series[0]!.values).toEqual(bucketed(all, ts.from, HOUR, (ts.to - ts.from) / HOUR).map((b) => b.length))
  })

  it('picks a step of about 120 points when step is omitted', async () => {
    expect((await series({ from: 'now-24h' })).step_s).toBe(900)
    expect((await series({ from: 'now-1h' })).step_s).toBe(30)
    expect((await series({ from: 'now-7d' })).step_s).toBe(7200)
    const auto = await series({ from: T0, to: T0 + 72 * HOUR })
    expect(auto.step_s).toBe(3600)
    expect(auto.buckets).toHaveLength(72)
    expect(auto.series[0]!.values).toEqual(bucketed(all, T0, HOUR, 72).map((b) => b.length))
    // Sub-minute auto step reads the raw table.
    const recentTs = await series({ from: NOW0 - 56 * MINUTE, to: NOW0 })
    expect(sum(recentTs.series[0]!.values.map(Number))).toBe(recent.length)
  })
})

// ---------------------------------------------------------------- bad parameters

describe('bad parameters', () => {
  const bad: [string, string][] = [
    ['/api/spans?from=banana', 'from'],
    ['/api/spans?from=1', 'from'],
    ['/api/summary?from=March%203', 'from'],
    ['/api/spans?from=12345678901', 'from'],
    ['/api/spans?to=yesterday-ish', 'to'],
    ['/api/spans?from=now-1h&to=now-2h', 'to'],
    ['/api/summary?from=now-1h&to=now-1h', 'to'],
    ['/api/summary?from=now-500d', 'from'],
    ['/api/summary?group_by=colour', 'group_by'],
    ['/api/summary?group_by=', 'group_by'],
    ['/api/spans?limit=0', 'limit'],
    ['/api/spans?limit=-5', 'limit'],
    ['/api/spans?limit=abc', 'limit'],
    ['/api/spans?limit=1001', 'limit'],
    ['/api/spans?model=', 'model'],
    ['/api/spans?cursor=garbage', 'cursor'],
    [`/api/spans?cursor=${Buffer.from('123_not-a-uuid').toString('base64url')}`, 'cursor'],
    ['/api/timeseries?metric=bananas', 'metric'],
    ['/api/timeseries?group_by=colour', 'group_by'],
    ['/api/summary?group_by=property', 'property_key'],
    ['/api/timeseries?step=0', 'step'],
    ['/api/timeseries?metric=requests,nope', 'metric'],
    ['/api/summary?group_by=user&limit=0', 'limit'],
    ['/api/timeseries?metric=requests,requests', 'metric'],
    ['/api/timeseries?step=1.5', 'step'],
    ['/api/timeseries?step=10&from=now-3d', 'step'],
  ]
  it.each(bad)('%s → 400 TG_ERR_BAD_QUERY naming %s', async (path, param) => {
    const r = await get(path)
    expect(r.status).toBe(400)
    expect(r.type).toMatch(/^application\/json/)
    expect(r.body.error.code).toBe('TG_ERR_BAD_QUERY')
    expect(r.body.error.message).toMatch(new RegExp(`(^|[^a-z_])${param}([^a-z_]|$)`))
  })
})

// ---------------------------------------------------------------- paging (last: it adds spans)

describe('paging with limit and next_cursor', () => {
  it('visits every span exactly once while new spans arrive between pages', async () => {
    const seen: Span[] = []
    const added: Span[] = []
    const visible: Span[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page: { spans: Span[]; next_cursor: string | null } = await listSpans({ limit: 7, ...(cursor ? { cursor } : {}) })
      expect(page.spans.length).toBeGreaterThan(0)
      expect(page.spans.length).toBeLessThanOrEqual(7)
      if (page.next_cursor) expect(page.spans).toHaveLength(7)
      seen.push(...page.spans)
      cursor = page.next_cursor
      pages++
      if (pages === 1 || pages === 3 || pages === 20) {
        // Newer than the cursor (never visited) and older than it (visited later).
        const last = ms(page.spans.at(-1)!)
        const newer = [build(NOW0 - 10 * SECOND), build(last + 1)]
        const older = [build(ALL_FROM + pages * MINUTE), build(last - 1)]
        await post([...newer, ...older])
        added.push(...newer, ...older)
        visible.push(...older)
      }
    } while (cursor)
    all.push(...added)
    expect(pages).toBeGreaterThan(50)
    const ids = seen.map((s) => s.span_id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(new Set(ids)).toEqual(new Set([...all.filter((s) => !added.includes(s)), ...visible].map((s) => s.span_id)))
    for (let i = 1; i < seen.length; i++) expect(ms(seen[i - 1]!)).toBeGreaterThanOrEqual(ms(seen[i]!))
    for (const s of seen) expectAsSent(s)
  })

  it('pages through spans that share one millisecond, by span_id', async () => {
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page: { spans: Span[]; next_cursor: string | null } = await listSpans({ session: 'tie-session', limit: 2, ...(cursor ? { cursor } : {}) })
      seen.push(...page.spans.map((s) => s.span_id))
      cursor = page.next_cursor
    } while (cursor)
    expect(seen).toHaveLength(5)
    expect(new Set(seen)).toEqual(new Set(all.filter((s) => s.session === 'tie-session').map((s) => s.span_id)))
  })

  it('no empty last page: next_cursor is null when the page holds the rest', async () => {
    const total = all.length
    expect((await listSpans({ limit: total })).next_cursor).toBeNull()
    const first = await listSpans({ limit: total - 1 })
    expect(first.next_cursor).not.toBeNull()
    const rest = await listSpans({ limit: total - 1, cursor: first.next_cursor! })
    expect(rest.spans).toHaveLength(1)
    expect(rest.next_cursor).toBeNull()
  })
})

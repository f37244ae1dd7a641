/**
 * The recommendation rules as pure functions: hand-built facts in, a fixed
 * list out. Thresholds (fires above, not below, not on too few samples),
 * confidence levels, savings arithmetic against genai-prices, stable ids and
 * order. No store involved.
 */
import { createHash } from 'node:crypto'
import { calcPrice } from '@pydantic/genai-prices'
import { describe, expect, it } from 'vitest'
import { parseRecommendationsQuery } from '../../collector/api/params.ts'
import { compareRecommendations, confidenceFor, monthlyFactor, recommendationId } from '../../collector/recommendations/common.ts'
import { buildRecommendations } from '../../collector/recommendations/index.ts'
import { canonicalModel, modelFamily, modelLine } from '../../collector/recommendations/model-families.ts'
import { createPriceBook, volumeCost, type ModelPricing, type PriceBook } from '../../collector/recommendations/prices.ts'
import type { Facts, ModelFacts, Recommendation, RecommendationThresholds } from '../../collector/recommendations/types.ts'
import { parseConfig } from '../../lib/config.ts'

const DAY = 86_400_000
const FROM = Date.UTC(2025, 0, 1)
const TO = FROM + 7 * DAY
/** 30 days over a 7-day window. */
const MONTH = 30 / 7
const DEFAULTS: RecommendationThresholds = parseConfig({}).recommendations
const PRICES = createPriceBook()

function model(f: Partial<ModelFacts> & Pick<ModelFacts, 'provider' | 'model'>): ModelFacts {
  return {
    requests: 0, errors: 0, http_4xx: 0, http_5xx: 0, rate_limited: 0, timeouts: 0, upstream_resets: 0, proxy_errors: 0, error_cost_usd: 0,
    ok_requests: 0, ok_cost_usd: 0, ok_priced_requests: 0, ok_unpriced_requests: 0, ok_no_usage_requests: 0, ok_no_usage_streams: 0,
    input_tokens: 0, output_tokens: 0, cached_input_tokens: 0, cache_write_tokens: 0,
    p95_ms: null, p95_ttft_ms: null, output_samples: 0, output_mean: null, output_stddev: null,
    ...f,
  }
}

/** `ok` successful priced calls of `perCall` USD plus failures by type; errors and requests follow. */
function traffic(
  provider: string,
  name: string,
  ok: number,
  fail: Partial<Pick<ModelFacts, 'http_4xx' | 'http_5xx' | 'rate_limited' | 'timeouts' | 'upstream_resets' | 'proxy_errors'>> = {},
  extra: Partial<ModelFacts> = {},
  perCall = 0.001,
): ModelFacts {
  const errors = Object.values(fail).reduce((s, n) => s + (n ?? 0), 0)
  return model({
    provider, model: name, ...fail, errors, requests: ok + errors,
    ok_requests: ok, ok_priced_requests: ok, ok_cost_usd: ok * perCall,
    input_tokens: ok * 500, output_tokens: ok * 200, p95_ms: 1000, p95_ttft_ms: 300,
    ...extra,
  })
}

function facts(f: Partial<Facts> = {}): Facts {
  return { from: FROM, to: TO, recent_from: TO - DAY, models: [], repeats: [], prefixes: [], spend: [], ...f }
}

function run(f: Partial<Facts>, t: RecommendationThresholds = DEFAULTS, prices: PriceBook = PRICES): Recommendation[] {
  return buildRecommendations(facts(f), prices, t, 'http://127.0.0.1:8080')
}

function only(recs: Recommendation[], kind: Recommendation['kind']): Recommendation {
  const found = recs.filter((r) => r.kind === kind)
  expect(found, kind).toHaveLength(1)
  return found[0]!
}

/** USD of `usage` on a model, straight from genai-prices. */
function genai(modelId: string, providerId: string, usage: Record<string, number>): number {
  return calcPrice(usage, modelId, { providerId })!.total_price
}

/** A genai-prices rate (USD per 1M) of a model. */
function rate(modelId: string, providerId: string, key: string): number {
  return Number(calcPrice({ input_tokens: 1, output_tokens: 1 }, modelId, { providerId })!.model_price[key])
}

function stubPricing(p: Partial<ModelPricing> & Pick<ModelPricing, 'provider' | 'model' | 'inputMtok' | 'outputMtok'>): ModelPricing {
  return { pricedAs: p.model, source: 'override', cacheReadMtok: null, cacheWriteMtok: null, contextWindow: null, ...p }
}

function stubBook(entries: ModelPricing[]): PriceBook {
  return {
    lookup: (provider, name) => entries.find((e) => e.provider === provider && e.model === name) ?? null,
    catalog: (provider) => entries.filter((e) => e.provider === provider),
  }
}

// ---------------------------------------------------------------- helpers

describe('shared helpers', () => {
  it('ids are sha256 of kind, variant and subject: stable and distinct per variant', () => {
    const expected = createHash('sha256').update(['failover', '', 'openai', 'gpt-4o', '', ''].join('\u0000')).digest('hex').slice(0, 16)
    expect(recommendationId('failover', '', { provider: 'openai', model: 'gpt-4o' })).toBe(expected)
    const subject = { provider: 'openai', model: 'gpt-4o' }
    const ids = ['exact', 'prefix', 'unused'].map((v) => recommendationId('caching', v, subject))
    expect(new Set(ids).size).toBe(3)
    expect(recommendationId('hygiene', 'spend_spike', { user: 'a' })).not.toBe(recommendationId('hygiene', 'spend_spike', { app: 'a' }))
  })

  it('confidence: low below 200 spans, medium from 200, high from 1000 (configurable)', () => {
    expect(confidenceFor(199, DEFAULTS)).toBe('low')
    expect(confidenceFor(200, DEFAULTS)).toBe('medium')
    expect(confidenceFor(999, DEFAULTS)).toBe('medium')
    expect(confidenceFor(1000, DEFAULTS)).toBe('high')
    const t = parseConfig({ recommendations: { confidence: { medium: 10, high: 20 } } }).recommendations
    expect(confidenceFor(15, t)).toBe('medium')
  })

  it('monthly figures scale the window to 30 days', () => {
    expect(monthlyFactor({ from: FROM, to: TO })).toBeCloseTo(MONTH, 12)
    expect(monthlyFactor({ from: FROM, to: FROM + 30 * DAY })).toBe(1)
  })

  it('order: severity, then saving + risk (largest first), then id', () => {
    const rec = (id: string, severity: Recommendation['severity'], saving: number | null, risk: number | null) =>
      ({ id, severity, estimated_monthly_saving_usd: saving, estimated_monthly_risk_usd: risk }) as Recommendation
    const list = [rec('b', 'info', 5, null), rec('a', 'info', 5, null), rec('c', 'critical', null, null), rec('d', 'warning', 1, 1), rec('e', 'warning', null, 3)]
    expect(list.sort(compareRecommendations).map((r) => r.id)).toEqual(['c', 'e', 'd', 'a', 'b'])
  })

  it('model families: one canonical key for a model however a host spells it', () => {
    const llama = ['llama-3.3-70b-versatile', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 'accounts/fireworks/models/llama-v3p3-70b-instruct', 'meta-llama/llama-3.3-70b-instruct']
    expect(new Set(llama.map(canonicalModel))).toEqual(new Set(['llama-3-3-70b']))
    expect(canonicalModel('claude-sonnet-4-20250514')).toBe(canonicalModel('anthropic/claude-sonnet-4'))
    expect(canonicalModel('gpt-4-turbo')).not.toBe(canonicalModel('gpt-4'))
    expect(modelLine('gpt-4o-mini')).toBe(modelLine('gpt-4o'))
    expect(modelLine('claude-haiku-4-5')).toBe(modelLine('claude-sonnet-4-5'))
    expect(modelFamily('gpt-oss-120b')?.id).toBe('gpt-oss')
    expect(modelFamily('deepseek-r1-distill-llama-70b')?.id).toBe('deepseek')
    expect(modelFamily('my-finetune')).toBeNull()
  })

  it('volumeCost re-prices token volumes exactly as genai-prices does (untiered models)', () => {
    const usage = { input: 1_000_000, cachedInput: 300_000, cacheWrite: 100_000, output: 50_000 }
    const claude = PRICES.lookup('anthropic', 'claude-sonnet-4-20250514')!
    expect(volumeCost(claude, usage)).toBeCloseTo(
      genai('claude-sonnet-4-20250514', 'anthropic', { input_tokens: 1_000_000, cache_read_tokens: 300_000, cache_write_tokens: 100_000, output_tokens: 50_000 }),
      9,
    )
  })

  it('GET /api/recommendations defaults to the last 7 days', () => {
    const now = Date.UTC(2025, 5, 1)
    expect(parseRecommendationsQuery(new URLSearchParams(), now)).toEqual({ ok: true, value: { from: now - 7 * DAY, to: now } })
    expect(parseRecommendationsQuery(new URLSearchParams({ from: 'now-1h' }), now)).toEqual({ ok: true, value: { from: now - 3_600_000, to: now } })
    expect(parseRecommendationsQuery(new URLSearchParams({ from: 'soon' }), now).ok).toBe(false)
  })

  it('config: thresholds default, override per field, and reject bad values', () => {
    expect(DEFAULTS.failover).toEqual({ minRequests: 50, errorRate: 0.05, criticalErrorRate: 0.2 })
    const t = parseConfig({ recommendations: { failover: { errorRate: 0.1 } } }).recommendations
    expect(t.failover).toEqual({ minRequests: 50, errorRate: 0.1, criticalErrorRate: 0.2 })
    expect(t.latency).toEqual(DEFAULTS.latency)
    expect(() => parseConfig({ recommendations: { failover: { errorRate: 1.5 } } })).toThrow(/recommendations\.failover\.errorRate/)
    expect(() => parseConfig({ recommendations: { nope: 1 } })).toThrow(/recommendations/)
  })
})

// ---------------------------------------------------------------- failover

describe('failover', () => {
  it('fires at 6% 5xx over 100 calls: warning, fallback to the same model elsewhere, risk = retries', () => {
    const r = only(run({ models: [traffic('openai', 'gpt-4o', 94, { http_5xx: 6 })] }), 'failover')
    expect(r).toMatchObject({
      severity: 'warning',
      subject: { provider: 'openai', model: 'gpt-4o' },
      title: 'gpt-4o on openai fails 6% of calls',
      sample_size: 100,
      confidence: 'low',
      estimated_monthly_saving_usd: null,
      spans_query: `provider=openai&model=gpt-4o&status=error&from=${FROM}&to=${TO}`,
    })
    expect(r.evidence).toMatchObject({ requests: 100, errors: 6, failing_calls: 6, failing_rate: 0.06, http_5xx: 6, fallback_provider: 'azure', fallback_model: 'gpt-4o', fallback_kind: 'same_model' })
    // One retry of each failing call at the average successful call ($0.001).
    expect(r.estimated_monthly_risk_usd).toBeCloseTo(6 * 0.001 * MONTH, 6)
    expect(r.config_snippet).toContain('azure/<your gpt-4o deployment>')
    expect(r.config_snippet).toContain('http://127.0.0.1:8080/openai/v1')
  })

  it('does not fire below the rate, on too few calls, or on 4xx (another provider rejects a bad request too)', () => {
    expect(run({ models: [traffic('openai', 'gpt-4o', 96, { http_5xx: 4 })] }).filter((r) => r.kind === 'failover')).toEqual([])
    expect(run({ models: [traffic('openai', 'gpt-4o', 25, { http_5xx: 24 })] }).filter((r) => r.kind === 'failover')).toEqual([])
    expect(run({ models: [traffic('openai', 'gpt-4o', 70, { http_4xx: 30 })] }).filter((r) => r.kind === 'failover')).toEqual([])
  })

  it('is critical from 20%; 429s, timeouts, resets and connection failures count; confidence follows the calls', () => {
    const r = only(run({ models: [traffic('openai', 'gpt-4o', 800, { rate_limited: 100, timeouts: 50, upstream_resets: 25, proxy_errors: 25 })] }), 'failover')
    expect(r.severity).toBe('critical')
    expect(r.evidence.failing_rate).toBe(0.2)
    expect(r.confidence).toBe('high')
    expect(only(run({ models: [traffic('openai', 'gpt-4o', 180, { http_5xx: 20 })] }), 'failover').confidence).toBe('medium')
  })

  it('prefers a route the user already calls, showing its failure rate and p95', () => {
    const recs = run({
      models: [traffic('openai', 'gpt-4o', 90, { http_5xx: 10 }), traffic('openrouter', 'openai/gpt-4o', 79, { http_5xx: 1 }, { p95_ms: 900 })],
    })
    expect(only(recs, 'failover').evidence).toMatchObject({
      fallback_provider: 'openrouter',
      fallback_model: 'openai/gpt-4o',
      fallback_requests: 80,
      fallback_failing_rate: 0.0125,
      fallback_p95_ms: 900,
      other_fallbacks: 'gpt-4o@azure',
    })
  })

  it('skips an observed route that fails as often', () => {
    const recs = run({ models: [traffic('openai', 'gpt-4o', 90, { http_5xx: 10 }), traffic('openrouter', 'openai/gpt-4o', 70, { http_5xx: 10 })] })
    const failover = recs.filter((r) => r.kind === 'failover')
    expect(failover).toHaveLength(2)
    expect(failover.find((r) => r.subject.provider === 'openai')!.evidence.fallback_provider).toBe('azure')
  })

  it('without another provider, suggests the nearest model by price on the same provider, labelled as a different model', () => {
    const book = stubBook([
      stubPricing({ provider: 'acme', model: 'acme-large', inputMtok: 4, outputMtok: 12, contextWindow: 100_000 }),
      stubPricing({ provider: 'acme', model: 'acme-medium', inputMtok: 2, outputMtok: 6, contextWindow: 100_000 }),
      stubPricing({ provider: 'acme', model: 'acme-small', inputMtok: 0.1, outputMtok: 0.3, contextWindow: 100_000 }),
      stubPricing({ provider: 'acme', model: 'acme-xl-short', inputMtok: 4, outputMtok: 12, contextWindow: 8_000 }),
    ])
    const r = only(run({ models: [traffic('acme', 'acme-large', 80, { http_5xx: 20 })] }, DEFAULTS, book), 'failover')
    expect(r.evidence).toMatchObject({ fallback_provider: 'acme', fallback_model: 'acme-medium', fallback_kind: 'nearest_model' })
    expect(r.summary).toContain('a different model')
  })
})

// ---------------------------------------------------------------- cheaper_model

describe('cheaper_model', () => {
  const classify = (extra: Partial<ModelFacts> = {}) =>
    model({
      provider: 'openai', model: 'gpt-4o', requests: 100, ok_requests: 100, ok_priced_requests: 100, ok_cost_usd: 0.3,
      input_tokens: 100_000, cached_input_tokens: 20_000, output_tokens: 2000,
      output_samples: 100, output_mean: 20, output_stddev: 4, ...extra,
    })

  it('prices the same tokens on the same generation\'s cheaper model; saving checked against genai-prices', () => {
    const r = only(run({ models: [classify()] }), 'cheaper_model')
    const usage = { input_tokens: 100_000, cache_read_tokens: 20_000, output_tokens: 2000 }
    const current = genai('gpt-4o', 'openai', usage)
    const candidate = genai('gpt-4o-mini', 'openai', usage)
    expect(r.evidence).toMatchObject({ candidate_provider: 'openai', candidate_model: 'gpt-4o-mini', avg_output_tokens: 20, output_cv: 0.2, requests: 100 })
    expect(r.evidence.current_cost_usd).toBeCloseTo(current, 6)
    expect(r.evidence.candidate_cost_usd).toBeCloseTo(candidate, 6)
    expect(r.estimated_monthly_saving_usd).toBeCloseTo((current - candidate) * MONTH, 6)
    expect(r).toMatchObject({ severity: 'info', sample_size: 100, estimated_monthly_risk_usd: null })
    expect(r.title).toBe('What-if: gpt-4o-mini instead of gpt-4o for short answers')
    expect(r.summary).toContain('Quality is not known to be equal')
    expect(r.spans_query).toBe(`provider=openai&model=gpt-4o&status=ok&from=${FROM}&to=${TO}`)
  })

  it('does not fire on long or varied outputs, a cheap model, or too few calls', () => {
    const none = (m: ModelFacts) => expect(run({ models: [m] }).filter((r) => r.kind === 'cheaper_model')).toEqual([])
    none(classify({ output_mean: 60, output_stddev: 5, output_tokens: 6000 }))
    none(classify({ output_stddev: 12 }))
    none(classify({ model: 'gpt-4o-mini' }))
    none(classify({ ok_requests: 49, output_samples: 49 }))
  })

  it('falls back to models the user already calls on other providers when the provider has none cheaper', () => {
    const book = stubBook([
      stubPricing({ provider: 'acme', model: 'acme-large', inputMtok: 10, outputMtok: 30 }),
      stubPricing({ provider: 'other', model: 'cheap-1', inputMtok: 1, outputMtok: 3 }),
      stubPricing({ provider: 'other', model: 'cheap-2', inputMtok: 0.5, outputMtok: 1 }),
    ])
    const recs = run({ models: [classify({ provider: 'acme', model: 'acme-large' }), traffic('other', 'cheap-1', 5), traffic('other', 'cheap-2', 5)] }, DEFAULTS, book)
    const r = only(recs, 'cheaper_model')
    // The smallest step down that still halves the cost: cheap-1, then cheap-2 listed.
    expect(r.evidence).toMatchObject({ candidate_provider: 'other', candidate_model: 'cheap-1' })
    expect(r.evidence.other_candidates).toMatch(/^cheap-2@other/)
    const volumes = { input: 100_000, cachedInput: 20_000, cacheWrite: 0, output: 2000 }
    expect(r.evidence.saving_usd).toBeCloseTo(volumeCost(book.lookup('acme', 'acme-large')!, volumes) - volumeCost(book.lookup('other', 'cheap-1')!, volumes), 6)
    expect(r.config_snippet).toContain('weight: 5')
  })
})

// ---------------------------------------------------------------- latency

describe('latency', () => {
  const llama = (provider: string, name: string, p95: number, ttft: number, extra: Partial<ModelFacts> = {}) =>
    traffic(provider, name, 100, {}, { p95_ms: p95, p95_ttft_ms: ttft, ...extra })

  it('fires on the same model being far slower on one provider', () => {
    const r = only(run({ models: [llama('groq', 'llama-3.3-70b-versatile', 400, 150), llama('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 2400, 1200)] }), 'latency')
    expect(r).toMatchObject({ severity: 'warning', subject: { provider: 'together', model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo' }, sample_size: 100 })
    expect(r.evidence).toMatchObject({ metric: 'latency', ratio: 6, diff_ms: 2000, alternative_provider: 'groq', alternative_same_model: 'yes' })
    expect(r.config_snippet).toContain('latency-based-routing')
  })

  it('needs both the ratio and the absolute gap, and enough calls on both sides', () => {
    const none = (models: ModelFacts[]) => expect(run({ models }).filter((r) => r.kind === 'latency')).toEqual([])
    none([llama('groq', 'llama-3.3-70b-versatile', 1000, 300), llama('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 1400, 400)])
    none([llama('groq', 'llama-3.3-70b-versatile', 100, 50), llama('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 450, 150)])
    none([llama('groq', 'llama-3.3-70b-versatile', 400, 150, { ok_requests: 49 }), llama('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 2400, 1200)])
    const t = parseConfig({ recommendations: { latency: { minDiffMs: 2500 } } }).recommendations
    expect(run({ models: [llama('groq', 'llama-3.3-70b-versatile', 400, 150), llama('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 2400, 1200)] }, t)).toEqual([])
  })

  it('compares only time to first token when answers differ in length', () => {
    const r = only(
      run({ models: [llama('groq', 'llama-3.3-70b-versatile', 400, 150), llama('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 9000, 1200, { output_tokens: 100 * 900 })] }),
      'latency',
    )
    expect(r.evidence).toMatchObject({ metric: 'ttft', ratio: 8, diff_ms: 1050 })
    expect(r.severity).toBe('warning')
  })

  it('falls back to a model of the same generation, as a what-if', () => {
    const r = only(run({ models: [traffic('openai', 'gpt-4o', 100, {}, { p95_ttft_ms: 2000 }), traffic('openai', 'gpt-4o-mini', 100, {}, { p95_ttft_ms: 1000 })] }), 'latency')
    expect(r).toMatchObject({ severity: 'info', subject: { provider: 'openai', model: 'gpt-4o' } })
    expect(r.evidence).toMatchObject({ alternative_model: 'gpt-4o-mini', alternative_same_model: 'no', metric: 'ttft', ratio: 2 })
    expect(r.summary).toContain('what-if')
  })
})

// ---------------------------------------------------------------- caching

describe('caching', () => {
  const mini = traffic('openai', 'gpt-4o-mini', 300)

  it('(a) identical requests: fires from 5 repeats, saving = their cost × 30/7', () => {
    const repeats = { provider: 'openai', model: 'gpt-4o-mini', groups: 2, calls: 7, repeat_calls: 5, repeat_cost_usd: 0.05 }
    const r = only(run({ models: [mini], repeats: [repeats] }), 'caching')
    expect(r.evidence).toMatchObject({ requests: 300, repeat_calls: 5, repeated_groups: 2, repeat_cost_usd: 0.05 })
    expect(r.estimated_monthly_saving_usd).toBeCloseTo(0.05 * MONTH, 6)
    expect(r).toMatchObject({ sample_size: 300, confidence: 'medium', id: recommendationId('caching', 'exact', { provider: 'openai', model: 'gpt-4o-mini' }) })
    expect(run({ models: [mini], repeats: [{ ...repeats, repeat_calls: 4, calls: 6 }] })).toEqual([])
  })

  it('(b) long shared prefixes on Anthropic: reads at cache price minus one cache write per prefix', () => {
    const claude = traffic('anthropic', 'claude-sonnet-4-20250514', 40)
    const prefix = { provider: 'anthropic', model: 'claude-sonnet-4-20250514', groups: 2, calls: 8, prefix_tokens: 6000, repeat_prefix_tokens: 18_000, cached_input_tokens: 0 }
    const r = only(run({ models: [claude], prefixes: [prefix] }), 'caching')
    const input = rate('claude-sonnet-4-20250514', 'anthropic', 'input_mtok')
    const read = rate('claude-sonnet-4-20250514', 'anthropic', 'cache_read_mtok')
    const write = rate('claude-sonnet-4-20250514', 'anthropic', 'cache_write_mtok')
    const saving = (18_000 * (input - read) - 6000 * (write - input)) / 1e6
    expect(r.evidence.saving_usd).toBeCloseTo(saving, 9)
    expect(r.estimated_monthly_saving_usd).toBeCloseTo(saving * MONTH, 6)
    expect(r.config_snippet).toContain("cache_control: { type: 'ephemeral' }")
    expect(r.summary).toContain('tokens ≈ bytes / 4')
  })

  it('(b) on OpenAI says caching is automatic and why it may not have applied; no prefix price → nothing', () => {
    const prefix = { provider: 'openai', model: 'gpt-4o', groups: 1, calls: 4, prefix_tokens: 2000, repeat_prefix_tokens: 6000, cached_input_tokens: 0 }
    const r = only(run({ models: [traffic('openai', 'gpt-4o', 10)], prefixes: [prefix] }), 'caching')
    expect(r.evidence.saving_usd).toBeCloseTo((6000 * (2.5 - 1.25)) / 1e6, 9)
    expect(r.summary).toContain('automatically')
    expect(r.summary).toContain('may not')
    const groq = { ...prefix, provider: 'groq', model: 'llama-3.3-70b-versatile' }
    expect(run({ prefixes: [groq] })).toEqual([])
  })

  it('(c) long inputs hardly cached on a model with cache prices; not when (b) covers it or the share is high', () => {
    const claude = traffic('anthropic', 'claude-sonnet-4-20250514', 100, {}, { input_tokens: 300_000, cached_input_tokens: 3000 })
    const r = only(run({ models: [claude] }), 'caching')
    expect(r.evidence).toMatchObject({ avg_input_tokens: 3000, cached_share: 0.01 })
    expect(r.estimated_monthly_saving_usd).toBeNull()
    expect(run({ models: [{ ...claude, cached_input_tokens: 30_000 }] })).toEqual([])
    expect(run({ models: [{ ...claude, input_tokens: 100_000 }] })).toEqual([])
    const prefix = { provider: 'anthropic', model: 'claude-sonnet-4-20250514', groups: 1, calls: 4, prefix_tokens: 2000, repeat_prefix_tokens: 6000, cached_input_tokens: 0 }
    const both = run({ models: [claude], prefixes: [prefix] }).filter((x) => x.kind === 'caching')
    expect(both.map((x) => x.id)).toEqual([recommendationId('caching', 'prefix', { provider: 'anthropic', model: 'claude-sonnet-4-20250514' })])
  })
})

// ---------------------------------------------------------------- hygiene

describe('hygiene', () => {
  it('streams without usage: warning with the include_usage snippet; risk at the average priced call', () => {
    const m = traffic('openai', 'gpt-4o-mini', 100, {}, { ok_no_usage_streams: 10, ok_no_usage_requests: 10, ok_priced_requests: 90, ok_cost_usd: 0.09 })
    const r = only(run({ models: [m] }), 'hygiene')
    expect(r).toMatchObject({ severity: 'warning', title: '10 streams to gpt-4o-mini on openai report no token usage' })
    expect(r.evidence).toMatchObject({ no_usage_streams: 10, avg_priced_call_usd: 0.001, unmeasured_cost_usd: 0.01 })
    expect(r.estimated_monthly_risk_usd).toBeCloseTo(0.01 * MONTH, 6)
    expect(r.config_snippet).toContain('stream_options: { include_usage: true }')
    expect(run({ models: [{ ...m, ok_no_usage_streams: 0 }] })).toEqual([])
  })

  it('unpriced model: override snippet, seeded from the same model listed on another provider', () => {
    const m = model({ provider: 'fireworks', model: 'llama-3.3-70b-versatile', requests: 10, ok_requests: 10, ok_unpriced_requests: 10, input_tokens: 1_000_000, output_tokens: 100_000 })
    const r = only(run({ models: [m] }, DEFAULTS, { ...PRICES, lookup: (p, n) => (p === 'fireworks' ? null : PRICES.lookup(p, n)) }), 'hygiene')
    const expected = genai('llama-3.3-70b-versatile', 'groq', { input_tokens: 1_000_000, output_tokens: 100_000 })
    expect(r.evidence).toMatchObject({ unpriced_requests: 10, reference_provider: 'groq', reference_model: 'llama-3.3-70b-versatile' })
    expect(r.evidence.reference_cost_usd).toBeCloseTo(expected, 9)
    expect(JSON.parse(r.config_snippet!)).toEqual({ priceOverrides: { 'llama-3.3-70b-versatile': { input_mtok: 0.59, output_mtok: 0.79 } } })
  })

  describe('spend spikes (last 24 h against the daily average of the 6 days before)', () => {
    const spike = (recent: number, baseline: number) => run({ spend: [{ dimension: 'user', key: 'alice', recent_usd: recent, recent_requests: 40, baseline_usd: baseline }] })

    it('fires at 3× with at least $1 more; critical from 10×', () => {
      const r = only(spike(3.5, 6), 'hygiene')
      expect(r).toMatchObject({ severity: 'warning', subject: { user: 'alice' }, sample_size: 40, spans_query: `user=alice&from=${TO - DAY}&to=${TO}` })
      expect(r.evidence).toMatchObject({ baseline_daily_usd: 1, ratio: 3.5, excess_usd: 2.5, baseline_days: 6 })
      expect(r.estimated_monthly_risk_usd).toBeCloseTo(2.5 * 30, 6)
      expect(only(spike(10, 6), 'hygiene').severity).toBe('critical')
    })

    it('does not fire below the ratio or below $1 of excess', () => {
      expect(spike(2.9, 6)).toEqual([])
      expect(spike(0.9, 0.6)).toEqual([])
    })

    it('spend with no baseline is a warning without a ratio; a window under 2 days has no baseline to judge', () => {
      const r = only(spike(2, 0), 'hygiene')
      expect(r.evidence.ratio).toBeNull()
      expect(r.severity).toBe('warning')
      const short = buildRecommendations(
        facts({ from: TO - 36 * 3_600_000, spend: [{ dimension: 'app', key: 'web', recent_usd: 50, recent_requests: 5, baseline_usd: 1 }] }),
        PRICES,
        DEFAULTS,
      )
      expect(short).toEqual([])
    })
  })
})

// ---------------------------------------------------------------- all together

describe('buildRecommendations', () => {
  const all = (): Partial<Facts> => ({
    models: [
      traffic('openai', 'gpt-4o', 800, { http_5xx: 200 }),
      traffic('openai', 'gpt-4o-mini', 100, {}, { ok_no_usage_streams: 3 }),
      traffic('groq', 'llama-3.3-70b-versatile', 100, {}, { p95_ms: 400 }),
      traffic('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 100, {}, { p95_ms: 2400 }),
    ],
    repeats: [{ provider: 'openai', model: 'gpt-4o-mini', groups: 1, calls: 11, repeat_calls: 10, repeat_cost_usd: 0.01 }],
    spend: [{ dimension: 'app', key: 'web', recent_usd: 30, recent_requests: 5, baseline_usd: 6 }],
  })

  it('runs every rule and returns a stable, sorted list whatever the input order', () => {
    // Within warnings, the no-usage finding (a USD risk) ranks above the latency one (no USD figure).
    const a = run(all())
    const reversed = all()
    reversed.models = [...reversed.models!].reverse()
    expect(run(reversed)).toEqual(a)
    expect(a.map((r) => `${r.severity} ${r.kind}`)).toEqual(['critical hygiene', 'critical failover', 'warning hygiene', 'warning latency', 'info caching'])
    expect([...a].sort(compareRecommendations)).toEqual(a)
    for (const r of a) {
      expect(r.id).toMatch(/^[0-9a-f]{16}$/)
      expect(r.spans_query).toMatch(/&from=\d+&to=\d+$/)
    }
  })
})

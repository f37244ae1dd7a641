/**
 * failover: a provider×model whose calls fail with errors another route
 * could absorb (HTTP 5xx, 429, timeouts, upstream resets, connection
 * failures — `proxy_error`, e.g. refused or unresolvable) at or above a
 * threshold → a fallback serving the same model elsewhere, or the nearest
 * model by price on the same provider. HTTP 4xx and client aborts do not
 * count: another provider would reject a bad request too.
 */
import {
  byProviderModel,
  confidenceFor,
  formatPct,
  formatUsd,
  monthlyFactor,
  ms,
  recommendationId,
  share,
  spansQuery,
  usd,
} from './common.ts'
import { canonicalModel, modelFamily, modelLine } from './model-families.ts'
import type { ModelPricing } from './prices.ts'
import { litellmFallback } from './snippets.ts'
import type { ModelFacts, Recommendation, RuleContext } from './types.ts'

/** A route to send failing calls to. */
export interface Fallback {
  provider: string
  model: string
  /** same_model: the same weights elsewhere; nearest_model: another model on the same provider. */
  kind: 'same_model' | 'nearest_model'
  /** The user's own traffic on it in the window, when there is some. */
  observed: ModelFacts | null
  pricing: ModelPricing | null
}

/** Calls another route could have served: 5xx, 429, timeouts, resets, unreachable upstreams. */
export function failingCalls(m: ModelFacts): number {
  return m.http_5xx + m.rate_limited + m.timeouts + m.upstream_resets + m.proxy_errors
}

/**
 * Fallbacks for `m`, best first: the same model where the user already has
 * traffic (lowest failure share first; routes failing at the threshold
 * themselves are left out), then the same model on the family's other
 * providers as genai-prices lists it, then — only when none exists — the
 * model on the same provider nearest in price with at least the same context
 * window (same generation first).
 */
export function findFallbacks(m: ModelFacts, ctx: RuleContext): Fallback[] {
  const t = ctx.thresholds.failover
  const key = canonicalModel(m.model)
  const out: Fallback[] = []
  const seen = new Set<string>([m.provider])
  const observed = ctx.facts.models
    .filter((o) => o.provider !== m.provider && o.requests > 0 && canonicalModel(o.model) === key)
    .filter((o) => !(o.requests >= t.minRequests && failingCalls(o) / o.requests >= t.errorRate))
    .sort((a, b) => failingCalls(a) / a.requests - failingCalls(b) / b.requests || byProviderModel(a, b))
  for (const o of observed) {
    if (seen.has(o.provider)) continue
    seen.add(o.provider)
    out.push({ provider: o.provider, model: o.model, kind: 'same_model', observed: o, pricing: ctx.prices.lookup(o.provider, o.model) })
  }
  for (const provider of modelFamily(m.model)?.providers ?? []) {
    if (seen.has(provider)) continue
    const pricing = ctx.prices.lookup(provider, m.model)
    if (!pricing) continue
    seen.add(provider)
    out.push({ provider, model: pricing.model, kind: 'same_model', observed: null, pricing })
  }
  if (out.length > 0) return out

  const current = ctx.prices.lookup(m.provider, m.model)
  if (!current) return out
  const blended = current.inputMtok + current.outputMtok
  const line = modelLine(m.model)
  const nearest = ctx.prices
    .catalog(m.provider)
    .filter((c) => c.pricedAs !== current.pricedAs && canonicalModel(c.pricedAs) !== key)
    .filter((c) => current.contextWindow === null || (c.contextWindow ?? 0) >= current.contextWindow)
    .map((c) => ({ c, sameLine: modelLine(c.pricedAs) === line ? 0 : 1, distance: Math.abs(Math.log((c.inputMtok + c.outputMtok) / blended)) }))
    .sort((a, b) => a.sameLine - b.sameLine || a.distance - b.distance || (a.c.pricedAs < b.c.pricedAs ? -1 : 1))[0]
  if (nearest) {
    const o = ctx.facts.models.find((x) => x.provider === m.provider && x.model === nearest.c.model) ?? null
    out.push({ provider: m.provider, model: nearest.c.model, kind: 'nearest_model', observed: o, pricing: nearest.c })
  }
  return out
}

/**
 * One recommendation per provider×model with at least `minRequests` calls
 * whose failing share reaches `errorRate`; critical from `criticalErrorRate`.
 * Risk = USD recorded on failed calls + one retry of each failing call at the
 * average successful call's cost. sample_size = calls; spans_query lists the
 * failed calls (`status=error`, count = evidence.errors).
 */
export function failoverRecommendations(ctx: RuleContext): Recommendation[] {
  const t = ctx.thresholds.failover
  const factor = monthlyFactor(ctx.facts)
  const out: Recommendation[] = []
  for (const m of [...ctx.facts.models].sort(byProviderModel)) {
    if (m.requests < t.minRequests || m.requests === 0) continue
    const failing = failingCalls(m)
    const rate = failing / m.requests
    if (rate < t.errorRate) continue

    const avgOkCost = m.ok_priced_requests > 0 ? m.ok_cost_usd / m.ok_priced_requests : null
    const retryCost = avgOkCost === null ? null : failing * avgOkCost
    const risk = retryCost === null && m.error_cost_usd === 0 ? null : m.error_cost_usd + (retryCost ?? 0)
    const fallbacks = findFallbacks(m, ctx)
    const best = fallbacks[0] ?? null
    const subject = { provider: m.provider, model: m.model }
    const obs = best?.observed ?? null
    const obsRate = obs && obs.requests > 0 ? failingCalls(obs) / obs.requests : null

    const parts = [
      m.http_5xx ? `${m.http_5xx} HTTP 5xx` : '',
      m.rate_limited ? `${m.rate_limited} rate-limited (429)` : '',
      m.timeouts ? `${m.timeouts} timeouts` : '',
      m.upstream_resets ? `${m.upstream_resets} upstream resets` : '',
      m.proxy_errors ? `${m.proxy_errors} connection failures` : '',
    ].filter(Boolean)
    let advice: string
    if (!best) advice = 'No other route serving this model is known; retry with backoff and consider a second provider.'
    else {
      const where = `${best.model} on ${best.provider}`
      const seenThere = obs
        ? ` (your traffic there: ${obs.requests} calls, ${formatPct(obsRate ?? 0)} failing, p95 ${obs.p95_ms === null ? 'n/a' : `${Math.round(obs.p95_ms)} ms`})`
        : ''
      advice =
        best.kind === 'same_model'
          ? `Fall back to ${where}: the same model${seenThere}.`
          : `No other provider serving ${m.model} is known; the nearest model by price on ${m.provider} is ${best.model}${seenThere} — a different model: check its answers before relying on it.`
    }
    out.push({
      id: recommendationId('failover', '', subject),
      kind: 'failover',
      severity: rate >= t.criticalErrorRate ? 'critical' : 'warning',
      title: `${m.model} on ${m.provider} fails ${formatPct(rate)} of calls`,
      summary:
        `${failing} of ${m.requests} calls failed with errors another route could absorb (${parts.join(', ')}). ${advice}` +
        (risk !== null ? ` Failed calls and their retries cost about ${formatUsd(risk * factor)} a month.` : ''),
      subject,
      evidence: {
        requests: m.requests,
        errors: m.errors,
        failing_calls: failing,
        failing_rate: share(rate),
        error_rate: share(m.errors / m.requests),
        http_5xx: m.http_5xx,
        rate_limited: m.rate_limited,
        timeouts: m.timeouts,
        upstream_resets: m.upstream_resets,
        proxy_errors: m.proxy_errors,
        http_4xx: m.http_4xx,
        p95_ms: m.p95_ms === null ? null : ms(m.p95_ms),
        failed_cost_usd: usd(m.error_cost_usd),
        avg_ok_cost_usd: avgOkCost === null ? null : usd(avgOkCost),
        retry_cost_usd: retryCost === null ? null : usd(retryCost),
        fallback_provider: best?.provider ?? null,
        fallback_model: best?.model ?? null,
        fallback_kind: best?.kind ?? null,
        fallback_requests: obs?.requests ?? null,
        fallback_failing_rate: obsRate === null ? null : share(obsRate),
        fallback_p95_ms: obs?.p95_ms == null ? null : ms(obs.p95_ms),
        other_fallbacks: fallbacks.slice(1).map((f) => `${f.model}@${f.provider}`).join(', ') || null,
      },
      confidence: confidenceFor(m.requests, ctx.thresholds),
      sample_size: m.requests,
      estimated_monthly_saving_usd: null,
      estimated_monthly_risk_usd: risk === null ? null : usd(risk * factor),
      config_snippet: best
        ? litellmFallback(subject, fallbacks.slice(0, 2).map((f) => ({ provider: f.provider, model: f.model })), ctx.proxyUrl)
        : null,
      spans_query: spansQuery({ ...subject, status: 'error', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

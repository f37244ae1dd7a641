/**
 * hygiene: gaps that make the numbers wrong rather than the routing —
 * successful streams without usage, models without a price — and spend
 * spikes of a user or app against its own baseline.
 */
import {
  DAY_MS,
  byProviderModel,
  confidenceFor,
  formatUsd,
  monthlyFactor,
  recommendationId,
  round,
  spansQuery,
  usageCalls,
  usd,
} from './common.ts'
import { modelFamily } from './model-families.ts'
import { volumeCost, type ModelPricing } from './prices.ts'
import { includeUsage, priceOverride } from './snippets.ts'
import type { Recommendation, RuleContext, SpendFacts } from './types.ts'

/** A spike at least this many times the baseline is critical. */
const CRITICAL_SPIKE_RATIO = 10

/**
 * Successful streams without usage (≥ hygiene.minCalls): their cost is
 * invisible. Risk = those streams × the average priced successful call.
 */
function noUsage(ctx: RuleContext, factor: number): Recommendation[] {
  const t = ctx.thresholds.hygiene
  const out: Recommendation[] = []
  for (const m of [...ctx.facts.models].sort(byProviderModel)) {
    const n = m.ok_no_usage_streams
    if (n < t.minCalls || n === 0) continue
    const avg = m.ok_priced_requests > 0 ? m.ok_cost_usd / m.ok_priced_requests : null
    const unseen = avg === null ? null : n * avg
    const subject = { provider: m.provider, model: m.model }
    out.push({
      id: recommendationId('hygiene', 'no_usage', subject),
      kind: 'hygiene',
      severity: 'warning',
      title: `${n} streams to ${m.model} on ${m.provider} report no token usage`,
      summary:
        `${n} of ${m.ok_requests} successful calls were streams that ended without usage, so their tokens and cost are missing from every total` +
        (unseen !== null ? ` (about ${formatUsd(unseen)} at this model's average call, ${formatUsd(unseen * factor)} a month)` : '') +
        '. OpenAI-compatible APIs send usage in streams only with stream_options.include_usage.',
      subject,
      evidence: {
        requests: m.ok_requests,
        no_usage_streams: n,
        no_usage_requests: m.ok_no_usage_requests,
        avg_priced_call_usd: avg === null ? null : usd(avg),
        unmeasured_cost_usd: unseen === null ? null : usd(unseen),
      },
      confidence: confidenceFor(m.ok_requests, ctx.thresholds),
      sample_size: m.ok_requests,
      estimated_monthly_saving_usd: null,
      estimated_monthly_risk_usd: unseen === null ? null : usd(unseen * factor),
      config_snippet: includeUsage(subject),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

/** A price for the same model listed under another provider of its family: starting numbers for an override. */
function referencePrice(ctx: RuleContext, provider: string, model: string): ModelPricing | null {
  for (const p of modelFamily(model)?.providers ?? []) {
    if (p === provider) continue
    const found = ctx.prices.lookup(p, model)
    if (found) return found
  }
  return null
}

/**
 * Successful calls priced `unpriced` (≥ hygiene.minCalls): spend shows as
 * nothing. Risk = their token volumes at a reference listing of the same
 * model elsewhere, when there is one.
 */
function unpriced(ctx: RuleContext, factor: number): Recommendation[] {
  const t = ctx.thresholds.hygiene
  const out: Recommendation[] = []
  for (const m of [...ctx.facts.models].sort(byProviderModel)) {
    const n = m.ok_unpriced_requests
    if (n < t.minCalls || n === 0) continue
    const reference = referencePrice(ctx, m.provider, m.model)
    // Volumes of the unpriced calls: the model's usage scaled by their share of calls with usage.
    const part = usageCalls(m) > 0 ? n / usageCalls(m) : 1
    const volumes = {
      input: m.input_tokens * part,
      cachedInput: m.cached_input_tokens * part,
      cacheWrite: m.cache_write_tokens * part,
      output: m.output_tokens * part,
    }
    const unseen = reference ? volumeCost(reference, volumes) : null
    const subject = { provider: m.provider, model: m.model }
    out.push({
      id: recommendationId('hygiene', 'unpriced', subject),
      kind: 'hygiene',
      severity: 'warning',
      title: `${m.model} on ${m.provider} has no price: ${n} calls cost "unknown"`,
      summary:
        `${n} successful calls (${round(volumes.input, 0)} input, ${round(volumes.output, 0)} output tokens) matched no genai-prices entry or override, ` +
        `so they count as unpriced, never $0. Add a priceOverrides entry to tollgate.config.json` +
        (reference
          ? `; ${reference.model} on ${reference.provider} lists $${reference.inputMtok}/$${reference.outputMtok} per 1M input/output tokens, ` +
            `which would put them at about ${formatUsd(unseen ?? 0)} — check your own contract.`
          : ' with your contract prices.'),
      subject,
      evidence: {
        requests: m.ok_requests,
        unpriced_requests: n,
        input_tokens: round(volumes.input, 0),
        output_tokens: round(volumes.output, 0),
        reference_provider: reference?.provider ?? null,
        reference_model: reference?.model ?? null,
        reference_cost_usd: unseen === null ? null : usd(unseen),
      },
      confidence: confidenceFor(m.ok_requests, ctx.thresholds),
      sample_size: m.ok_requests,
      estimated_monthly_saving_usd: null,
      estimated_monthly_risk_usd: unseen === null ? null : usd(unseen * factor),
      config_snippet: priceOverride(m.model, reference),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

/**
 * A user's or app's spend in the last 24 hours against its daily average
 * over the rest of the window (which must span at least a day): fires at
 * `spikeRatio`× when the excess is at least `spikeMinUsd` (also with no
 * earlier spend at all). Risk = the excess per day × 30. sample_size = calls
 * in the last 24 hours = what spans_query returns.
 */
function spikes(ctx: RuleContext): Recommendation[] {
  const t = ctx.thresholds.hygiene
  const { from, to, recent_from: recentFrom } = ctx.facts
  const baselineDays = (recentFrom - from) / DAY_MS
  if (baselineDays < 1) return []
  const out: Recommendation[] = []
  const sorted = [...ctx.facts.spend].sort((a: SpendFacts, b: SpendFacts) =>
    a.dimension < b.dimension ? -1 : a.dimension > b.dimension ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
  )
  for (const s of sorted) {
    const daily = s.baseline_usd / baselineDays
    const excess = s.recent_usd - daily
    if (excess < t.spikeMinUsd || s.recent_usd < t.spikeRatio * daily) continue
    const ratio = daily > 0 ? s.recent_usd / daily : null
    const subject = s.dimension === 'user' ? { user: s.key } : { app: s.key }
    const who = `${s.dimension} ${s.key}`
    out.push({
      id: recommendationId('hygiene', 'spend_spike', subject),
      kind: 'hygiene',
      severity: ratio !== null && ratio >= CRITICAL_SPIKE_RATIO ? 'critical' : 'warning',
      title:
        ratio === null
          ? `Spend of ${who}: ${formatUsd(s.recent_usd)} in the last 24 h, none before`
          : `Spend of ${who}: ${formatUsd(s.recent_usd)} in the last 24 h, ${round(ratio, 1)}× its daily average`,
      summary:
        `${who} spent ${formatUsd(s.recent_usd)} over ${s.recent_requests} calls in the last 24 hours against ` +
        `${formatUsd(daily)} a day over the ${round(baselineDays, 1)} days before. If this is not expected growth, ` +
        `look for a loop, a retry storm or a leaked key; at this rate the extra spend is about ${formatUsd(excess * 30)} a month.`,
      subject,
      evidence: {
        recent_usd: usd(s.recent_usd),
        recent_requests: s.recent_requests,
        baseline_usd: usd(s.baseline_usd),
        baseline_days: round(baselineDays, 3),
        baseline_daily_usd: usd(daily),
        ratio: ratio === null ? null : round(ratio, 3),
        excess_usd: usd(excess),
      },
      confidence: confidenceFor(s.recent_requests, ctx.thresholds),
      sample_size: s.recent_requests,
      estimated_monthly_saving_usd: null,
      estimated_monthly_risk_usd: usd(excess * 30),
      config_snippet: null,
      spans_query: spansQuery({ ...subject, from: recentFrom, to }),
    })
  }
  return out
}

/** Every hygiene finding: missing usage, missing prices, spend spikes. */
export function hygieneRecommendations(ctx: RuleContext): Recommendation[] {
  const factor = monthlyFactor(ctx.facts)
  return [...noUsage(ctx, factor), ...unpriced(ctx, factor), ...spikes(ctx)]
}

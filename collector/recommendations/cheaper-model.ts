/**
 * cheaper_model: an expensive model answering with short, uniform outputs (a
 * classification-like shape) → the same token volumes priced on cheaper
 * models. Always a what-if: nothing here knows whether the cheaper model
 * answers as well.
 */
import {
  byProviderModel,
  confidenceFor,
  formatPct,
  formatUsd,
  monthlyFactor,
  recommendationId,
  round,
  share,
  spansQuery,
  usd,
} from './common.ts'
import { canonicalModel, modelFamily, modelLine } from './model-families.ts'
import { volumeCost, type ModelPricing, type TokenVolumes } from './prices.ts'
import { cheaperTrial } from './snippets.ts'
import type { ModelFacts, Recommendation, RuleContext } from './types.ts'

/** The context window a candidate must offer: the current model's, capped (short prompts need no more). */
const CONTEXT_CAP = 128_000

interface Candidate {
  pricing: ModelPricing
  cost: number
}

/** Token volumes of a provider×model's successful calls. */
export function volumesOf(m: ModelFacts): TokenVolumes {
  return { input: m.input_tokens, cachedInput: m.cached_input_tokens, cacheWrite: m.cache_write_tokens, output: m.output_tokens }
}

/**
 * Cheaper candidates for the same volumes, best first. Same provider first:
 * catalog models of the same family whose cost is at most (1 − minSavingShare)
 * of the current one; the same generation (modelLine) before the rest, and
 * within a group the most expensive first (the smallest step down). Only when
 * the provider has none: models the user already calls on other providers.
 */
export function cheaperCandidates(m: ModelFacts, current: ModelPricing, ctx: RuleContext): Candidate[] {
  const t = ctx.thresholds.cheaperModel
  const volumes = volumesOf(m)
  const currentCost = volumeCost(current, volumes)
  const limit = currentCost * (1 - t.minSavingShare)
  const key = canonicalModel(m.model)
  const family = modelFamily(m.model)?.id ?? null
  const line = modelLine(m.model)
  const minContext = Math.min(current.contextWindow ?? 0, CONTEXT_CAP)
  const rank = (a: Candidate & { group: number }, b: Candidate & { group: number }) =>
    a.group - b.group || b.cost - a.cost || (a.pricing.pricedAs < b.pricing.pricedAs ? -1 : a.pricing.pricedAs > b.pricing.pricedAs ? 1 : 0)

  const same = ctx.prices
    .catalog(m.provider)
    .filter((c) => c.pricedAs !== current.pricedAs && canonicalModel(c.pricedAs) !== key)
    .filter((c) => family !== null && modelFamily(c.pricedAs)?.id === family)
    .filter((c) => (c.contextWindow ?? 0) >= minContext)
    .map((c) => ({ pricing: c, cost: volumeCost(c, volumes), group: modelLine(c.pricedAs) === line ? 0 : 1 }))
    .filter((c) => c.cost <= limit)
    .sort(rank)
  if (same.length > 0) return same

  return ctx.facts.models
    .filter((o) => o.provider !== m.provider && o.ok_requests > 0 && canonicalModel(o.model) !== key)
    .sort(byProviderModel)
    .flatMap((o) => {
      const p = ctx.prices.lookup(o.provider, o.model)
      return p ? [{ pricing: p, cost: volumeCost(p, volumes), group: 0 }] : []
    })
    .filter((c) => c.cost <= limit)
    .sort(rank)
}

/**
 * One what-if per provider×model with at least `minRequests` successful calls
 * (and as many with output counts), input+output price at or above
 * `minPriceMtok`, average output at or below `maxAvgOutputTokens` and output
 * stddev/mean at or below `maxOutputCv`. Both costs re-price the window's
 * token volumes (input, cached, cache-write, output) linearly at genai-prices
 * rates, so the saving compares like with like. sample_size = successful
 * calls = what spans_query (`status=ok`) returns.
 */
export function cheaperModelRecommendations(ctx: RuleContext): Recommendation[] {
  const t = ctx.thresholds.cheaperModel
  const factor = monthlyFactor(ctx.facts)
  const out: Recommendation[] = []
  for (const m of [...ctx.facts.models].sort(byProviderModel)) {
    if (m.ok_requests < t.minRequests || m.output_samples < t.minRequests) continue
    const mean = m.output_mean
    if (mean === null || mean <= 0 || mean > t.maxAvgOutputTokens) continue
    const cv = (m.output_stddev ?? 0) / mean
    if (cv > t.maxOutputCv) continue
    const current = ctx.prices.lookup(m.provider, m.model)
    if (!current || current.inputMtok + current.outputMtok < t.minPriceMtok) continue
    const currentCost = volumeCost(current, volumesOf(m))
    if (currentCost <= 0) continue
    const candidates = cheaperCandidates(m, current, ctx)
    const best = candidates[0]
    if (!best) continue

    const saving = currentCost - best.cost
    const subject = { provider: m.provider, model: m.model }
    const target = { provider: best.pricing.provider, model: best.pricing.model }
    const where = target.provider === m.provider ? target.model : `${target.model} on ${target.provider}`
    out.push({
      id: recommendationId('cheaper_model', '', subject),
      kind: 'cheaper_model',
      severity: 'info',
      title: `What-if: ${where} instead of ${m.model} for short answers`,
      summary:
        `${m.model} on ${m.provider} answered ${m.ok_requests} calls with ${round(mean, 1)} output tokens on average ` +
        `(stddev/mean ${round(cv, 2)}), a classification-like shape on a model priced at $${current.inputMtok}/$${current.outputMtok} per 1M input/output tokens. ` +
        `The same tokens on ${where} would cost ${formatUsd(best.cost)} instead of ${formatUsd(currentCost)} (−${formatPct(saving / currentCost)}), ` +
        `about ${formatUsd(saving * factor)} a month. Quality is not known to be equal: evaluate it on a sample of this traffic before switching.`,
      subject,
      evidence: {
        requests: m.ok_requests,
        output_samples: m.output_samples,
        avg_output_tokens: round(mean, 2),
        output_cv: round(cv, 4),
        input_tokens: m.input_tokens,
        cached_input_tokens: m.cached_input_tokens,
        cache_write_tokens: m.cache_write_tokens,
        output_tokens: m.output_tokens,
        price_input_mtok: current.inputMtok,
        price_output_mtok: current.outputMtok,
        observed_cost_usd: usd(m.ok_cost_usd),
        current_cost_usd: usd(currentCost),
        candidate_provider: target.provider,
        candidate_model: target.model,
        candidate_cost_usd: usd(best.cost),
        saving_usd: usd(saving),
        saving_share: share(saving / currentCost),
        other_candidates:
          candidates
            .slice(1, 4)
            .map((c) => `${c.pricing.model}@${c.pricing.provider} ${formatUsd(c.cost)}`)
            .join(', ') || null,
      },
      confidence: confidenceFor(m.ok_requests, ctx.thresholds),
      sample_size: m.ok_requests,
      estimated_monthly_saving_usd: usd(saving * factor),
      estimated_monthly_risk_usd: null,
      config_snippet: cheaperTrial(subject, target, ctx.proxyUrl),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

/**
 * caching: (a) identical requests repeated → an exact-match response cache;
 * (b) long prompt prefixes shared by several calls that read nothing from a
 * prompt cache → prompt caching; (c) models with prompt-cache prices whose
 * long inputs are hardly ever cached.
 */
import {
  byProviderModel,
  confidenceFor,
  formatPct,
  formatUsd,
  monthlyFactor,
  plural,
  recommendationId,
  round,
  share,
  spansQuery,
  usageCalls,
  usd,
} from './common.ts'
import { PROVIDER_ROUTES } from './model-families.ts'
import { promptCaching, responseCache } from './snippets.ts'
import type { ModelFacts, Recommendation, RuleContext } from './types.ts'

/** A monthly saving from this many USD makes a caching finding a warning. */
export const CACHING_WARNING_USD = 100

function modelFacts(ctx: RuleContext, provider: string, model: string): ModelFacts | undefined {
  return ctx.facts.models.find((m) => m.provider === provider && m.model === model)
}

/** Why a provider's prompt cache may not have applied, and what turns it on. */
function cachingNote(provider: string): string {
  const api = PROVIDER_ROUTES[provider]?.api ?? 'openai'
  if (api === 'anthropic') return 'Anthropic caches only prefixes marked with cache_control (1024+ tokens; 2048 on Haiku); cache writes cost 1.25× input.'
  if (api === 'gemini') return 'Gemini 2.5 caches implicitly when the shared part comes first; older models need an explicit cache.'
  return (
    `${provider} caches identical prefixes of 1024+ tokens automatically, yet these calls read almost nothing from cache: ` +
    'the shared part may not come first (a timestamp or user id ahead of it), calls may be more than 5–10 minutes apart so the cache expired, ' +
    'or the model may not support caching — in which case this does not apply.'
  )
}

/**
 * (a) One per provider×model where calls repeating an earlier identical
 * request (same request_hash, both successful) reach `minRepeatCalls`. Saving
 * = the recorded cost of those repeats (null when the model is unpriced).
 */
function exactRepeats(ctx: RuleContext, factor: number): Recommendation[] {
  const t = ctx.thresholds.caching
  const out: Recommendation[] = []
  for (const r of [...ctx.facts.repeats].sort(byProviderModel)) {
    if (r.repeat_calls < t.minRepeatCalls || r.repeat_calls === 0) continue
    const m = modelFacts(ctx, r.provider, r.model)
    const requests = m?.ok_requests ?? r.calls
    const priced = (m?.ok_priced_requests ?? 0) > 0
    const saving = priced ? r.repeat_cost_usd * factor : null
    const subject = { provider: r.provider, model: r.model }
    out.push({
      id: recommendationId('caching', 'exact', subject),
      kind: 'caching',
      severity: saving !== null && saving >= CACHING_WARNING_USD ? 'warning' : 'info',
      title: `${r.repeat_calls} repeated identical requests to ${r.model} on ${r.provider}`,
      summary:
        `${r.repeat_calls} of ${requests} successful calls repeated an earlier request byte for byte (${plural(r.groups, 'distinct request')} sent ${r.calls} times). ` +
        (saving !== null
          ? `An exact-match response cache would have saved ${formatUsd(r.repeat_cost_usd)}, about ${formatUsd(saving)} a month. `
          : 'The model is unpriced, so the saving is unknown. ') +
        'Only where a stored answer is acceptable: sampling at temperature > 0 or time-dependent prompts expect fresh answers.',
      subject,
      evidence: {
        requests,
        repeated_groups: r.groups,
        repeated_calls: r.calls,
        repeat_calls: r.repeat_calls,
        repeat_share: requests > 0 ? share(r.repeat_calls / requests) : null,
        repeat_cost_usd: usd(r.repeat_cost_usd),
      },
      confidence: confidenceFor(requests, ctx.thresholds),
      sample_size: requests,
      estimated_monthly_saving_usd: saving === null ? null : usd(saving),
      estimated_monthly_risk_usd: null,
      config_snippet: responseCache(),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

/**
 * (b) One per provider×model with prefix groups from facts (≥ minPrefixBytes,
 * ≥ minPrefixCalls, cached ≤ maxCachedShare — filtered in facts.ts), on a
 * model with a cache-read price. Saving = repeat prefix tokens × (input −
 * cache read) − prefix tokens × (cache write − input) for the first call of
 * each group; tokens ≈ bytes / 4. An upper bound: calls far apart miss a cache.
 */
function sharedPrefixes(ctx: RuleContext, factor: number): { recs: Recommendation[]; covered: Set<string> } {
  const recs: Recommendation[] = []
  const covered = new Set<string>()
  for (const p of [...ctx.facts.prefixes].sort(byProviderModel)) {
    if (p.groups === 0 || p.repeat_prefix_tokens === 0) continue
    const pricing = ctx.prices.lookup(p.provider, p.model)
    if (!pricing || pricing.cacheReadMtok === null) continue
    const readGain = (p.repeat_prefix_tokens * (pricing.inputMtok - pricing.cacheReadMtok)) / 1e6
    const writeCost = (p.prefix_tokens * Math.max(0, (pricing.cacheWriteMtok ?? pricing.inputMtok) - pricing.inputMtok)) / 1e6
    const saving = readGain - writeCost
    if (saving <= 0) continue
    const m = modelFacts(ctx, p.provider, p.model)
    const requests = m?.ok_requests ?? p.calls
    const subject = { provider: p.provider, model: p.model }
    covered.add(`${p.provider}\u0000${p.model}`)
    const monthly = saving * factor
    recs.push({
      id: recommendationId('caching', 'prefix', subject),
      kind: 'caching',
      severity: monthly >= CACHING_WARNING_USD ? 'warning' : 'info',
      title: `Prompt caching: ${p.calls} calls to ${p.model} on ${p.provider} resend long shared prefixes`,
      summary:
        `${plural(p.groups, 'prompt prefix', 'prompt prefixes')} of about ${Math.round(p.prefix_tokens / p.groups)} tokens on average (tokens ≈ bytes / 4) ${p.groups === 1 ? 'was' : 'were'} sent ${p.calls} times ` +
        `with ${p.cached_input_tokens} input tokens read from cache. Reading the ${p.repeat_prefix_tokens} repeated prefix tokens from a prompt cache ` +
        `($${pricing.cacheReadMtok} instead of $${pricing.inputMtok} per 1M) would save about ${formatUsd(saving)}, ${formatUsd(monthly)} a month ` +
        `(an upper bound). ${cachingNote(p.provider)}`,
      subject,
      evidence: {
        requests,
        prefix_groups: p.groups,
        prefix_calls: p.calls,
        prefix_tokens: p.prefix_tokens,
        repeat_prefix_tokens: p.repeat_prefix_tokens,
        cached_input_tokens: p.cached_input_tokens,
        input_mtok: pricing.inputMtok,
        cache_read_mtok: pricing.cacheReadMtok,
        cache_write_mtok: pricing.cacheWriteMtok,
        cache_write_cost_usd: usd(writeCost),
        saving_usd: usd(saving),
      },
      confidence: confidenceFor(requests, ctx.thresholds),
      sample_size: requests,
      estimated_monthly_saving_usd: usd(monthly),
      estimated_monthly_risk_usd: null,
      config_snippet: promptCaching(subject, ctx.proxyUrl),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return { recs, covered }
}

/**
 * (c) One per provider×model with ≥ minRequests successful calls, average
 * input ≥ minAvgInputTokens, a cache-read price, and a cached share of input
 * below maxCachedShare — unless (b) already covers it. No saving is claimed:
 * how much of those inputs repeats is unknown here.
 */
function unusedCaching(ctx: RuleContext, covered: Set<string>): Recommendation[] {
  const t = ctx.thresholds.caching
  const out: Recommendation[] = []
  for (const m of [...ctx.facts.models].sort(byProviderModel)) {
    if (m.ok_requests < t.minRequests || covered.has(`${m.provider}\u0000${m.model}`)) continue
    const calls = usageCalls(m)
    if (calls <= 0 || m.input_tokens <= 0) continue
    const avgInput = m.input_tokens / calls
    const cachedShare = m.cached_input_tokens / m.input_tokens
    if (avgInput < t.minAvgInputTokens || cachedShare >= t.maxCachedShare) continue
    const pricing = ctx.prices.lookup(m.provider, m.model)
    if (!pricing || pricing.cacheReadMtok === null) continue
    const subject = { provider: m.provider, model: m.model }
    out.push({
      id: recommendationId('caching', 'unused', subject),
      kind: 'caching',
      severity: 'info',
      title: `Prompt caching unused on ${m.model} (${m.provider}): ${formatPct(cachedShare)} of input cached`,
      summary:
        `${m.ok_requests} calls averaged ${Math.round(avgInput)} input tokens, yet only ${formatPct(cachedShare)} were read from cache, ` +
        `which costs $${pricing.cacheReadMtok} instead of $${pricing.inputMtok} per 1M tokens. If these prompts share instructions, tools or documents, ` +
        `put them first and keep them identical. ${cachingNote(m.provider)}`,
      subject,
      evidence: {
        requests: m.ok_requests,
        avg_input_tokens: round(avgInput, 1),
        input_tokens: m.input_tokens,
        cached_input_tokens: m.cached_input_tokens,
        cached_share: share(cachedShare),
        input_mtok: pricing.inputMtok,
        cache_read_mtok: pricing.cacheReadMtok,
      },
      confidence: confidenceFor(m.ok_requests, ctx.thresholds),
      sample_size: m.ok_requests,
      estimated_monthly_saving_usd: null,
      estimated_monthly_risk_usd: null,
      config_snippet: promptCaching(subject, ctx.proxyUrl),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

/**
 * All caching findings. sample_size = the provider×model's successful calls =
 * what spans_query (`status=ok`) returns; the repeated or prefix-sharing calls
 * among them are counted in evidence (/api/spans has no hash filter).
 */
export function cachingRecommendations(ctx: RuleContext): Recommendation[] {
  const factor = monthlyFactor(ctx.facts)
  const prefixes = sharedPrefixes(ctx, factor)
  return [...exactRepeats(ctx, factor), ...prefixes.recs, ...unusedCaching(ctx, prefixes.covered)]
}

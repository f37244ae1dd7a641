/**
 * latency: a provider×model whose p95 latency or p95 time to first token is
 * far worse than an alternative the user already calls — the same model on
 * another provider first, else a model of the same generation.
 */
import { byProviderModel, confidenceFor, ms, recommendationId, round, spansQuery, usageCalls } from './common.ts'
import { canonicalModel, modelLine } from './model-families.ts'
import { litellmLatencyRouting, moveSnippet } from './snippets.ts'
import type { ModelFacts, Recommendation, RuleContext } from './types.ts'

/** Total-latency p95s are compared only when average outputs are within this factor: longer answers take longer. */
const OUTPUT_COMPARABLE = 2
/** From this p95 ratio the finding is a warning rather than info. */
const WARNING_RATIO = 3

interface Comparison {
  alt: ModelFacts
  sameModel: boolean
  metric: 'ttft' | 'latency'
  mine: number
  theirs: number
}

function avgOutput(m: ModelFacts): number | null {
  const calls = usageCalls(m)
  return calls > 0 ? m.output_tokens / calls : null
}

/** The metrics on which `m` is slower than `alt` by both the ratio and the absolute gap. */
function compare(m: ModelFacts, alt: ModelFacts, sameModel: boolean, ctx: RuleContext): Comparison[] {
  const t = ctx.thresholds.latency
  const found: Comparison[] = []
  const slower = (mine: number | null, theirs: number | null) =>
    mine !== null && theirs !== null && theirs > 0 && mine >= t.ratio * theirs && mine - theirs >= t.minDiffMs
  if (slower(m.p95_ttft_ms, alt.p95_ttft_ms)) found.push({ alt, sameModel, metric: 'ttft', mine: m.p95_ttft_ms!, theirs: alt.p95_ttft_ms! })
  const a = avgOutput(m)
  const b = avgOutput(alt)
  const comparable = a !== null && b !== null && a > 0 && b > 0 && Math.max(a, b) / Math.min(a, b) <= OUTPUT_COMPARABLE
  if (comparable && slower(m.p95_ms, alt.p95_ms)) found.push({ alt, sameModel, metric: 'latency', mine: m.p95_ms!, theirs: alt.p95_ms! })
  return found
}

/**
 * One recommendation per provider×model with at least `minRequests`
 * successful calls, against the alternative (also ≥ `minRequests`) where it
 * gains most: same model on another provider before same generation; the
 * larger absolute p95 gap first. p95s are of successful calls; total latency
 * is compared only between similar output lengths. sample_size = successful
 * calls = what spans_query (`status=ok`) returns; evidence.alternative_spans_query
 * lists the other side.
 */
export function latencyRecommendations(ctx: RuleContext): Recommendation[] {
  const t = ctx.thresholds.latency
  const out: Recommendation[] = []
  const eligible = ctx.facts.models.filter((m) => m.ok_requests >= t.minRequests).sort(byProviderModel)
  for (const m of eligible) {
    const key = canonicalModel(m.model)
    const line = modelLine(m.model)
    const comparisons = eligible
      .filter((o) => o !== m)
      .flatMap((o) => {
        const sameModel = canonicalModel(o.model) === key && o.provider !== m.provider
        const sameLine = !sameModel && canonicalModel(o.model) !== key && modelLine(o.model) === line
        return sameModel || sameLine ? compare(m, o, sameModel, ctx) : []
      })
      .sort(
        (a, b) =>
          Number(b.sameModel) - Number(a.sameModel) ||
          b.mine - b.theirs - (a.mine - a.theirs) ||
          byProviderModel(a.alt, b.alt) ||
          (a.metric < b.metric ? -1 : 1),
      )
    const best = comparisons[0]
    if (!best) continue
    const alt = best.alt
    const ratio = best.mine / best.theirs
    const subject = { provider: m.provider, model: m.model }
    const label = best.metric === 'ttft' ? 'time to first token' : 'latency'
    const there = best.sameModel ? `on ${alt.provider}` : `than ${alt.model} on ${alt.provider}`
    const move = best.sameModel
      ? `Route this model to ${alt.provider}, or let a router pick the faster deployment.`
      : `${alt.model} is a different model: moving there for speed is a what-if — check its answers first.`
    out.push({
      id: recommendationId('latency', '', subject),
      kind: 'latency',
      severity: ratio >= WARNING_RATIO ? 'warning' : 'info',
      title: best.sameModel
        ? `${m.model} on ${m.provider}: p95 ${label} ${round(ratio, 1)}× slower than ${there}`
        : `${m.model} on ${m.provider}: p95 ${label} ${round(ratio, 1)}× slower ${there}`,
      summary:
        `Over ${m.ok_requests} successful calls, p95 ${label} was ${Math.round(best.mine)} ms on ${m.provider} against ` +
        `${Math.round(best.theirs)} ms for ${alt.model} on ${alt.provider} (${alt.ok_requests} calls), ${Math.round(best.mine - best.theirs)} ms more. ${move}`,
      subject,
      evidence: {
        requests: m.ok_requests,
        metric: best.metric,
        p95_ms: m.p95_ms === null ? null : ms(m.p95_ms),
        p95_ttft_ms: m.p95_ttft_ms === null ? null : ms(m.p95_ttft_ms),
        avg_output_tokens: avgOutput(m) === null ? null : round(avgOutput(m)!, 2),
        alternative_provider: alt.provider,
        alternative_model: alt.model,
        alternative_same_model: best.sameModel ? 'yes' : 'no',
        alternative_requests: alt.ok_requests,
        alternative_p95_ms: alt.p95_ms === null ? null : ms(alt.p95_ms),
        alternative_p95_ttft_ms: alt.p95_ttft_ms === null ? null : ms(alt.p95_ttft_ms),
        alternative_avg_output_tokens: avgOutput(alt) === null ? null : round(avgOutput(alt)!, 2),
        ratio: round(ratio, 3),
        diff_ms: ms(best.mine - best.theirs),
        alternative_spans_query: spansQuery({ provider: alt.provider, model: alt.model, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
      },
      confidence: confidenceFor(Math.min(m.ok_requests, alt.ok_requests), ctx.thresholds),
      sample_size: m.ok_requests,
      estimated_monthly_saving_usd: null,
      estimated_monthly_risk_usd: null,
      config_snippet: best.sameModel
        ? litellmLatencyRouting(m.model, [{ provider: alt.provider, model: alt.model }, subject], ctx.proxyUrl)
        : moveSnippet(subject, { provider: alt.provider, model: alt.model }, ctx.proxyUrl, `What-if: try ${alt.model} for latency-sensitive calls.`),
      spans_query: spansQuery({ ...subject, status: 'ok', from: ctx.facts.from, to: ctx.facts.to }),
    })
  }
  return out
}

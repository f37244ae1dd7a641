/**
 * Routing recommendations (GET /api/recommendations): facts from one set of
 * queries, every rule run over them, the results in a fixed order. The rules
 * are pure, so the same facts always give the same list.
 */
import type { QueryContext } from '../queries.ts'
import { cachingRecommendations } from './caching.ts'
import { cheaperModelRecommendations } from './cheaper-model.ts'
import { compareRecommendations } from './common.ts'
import { collectFacts } from './facts.ts'
import { failoverRecommendations } from './failover.ts'
import { hygieneRecommendations } from './hygiene.ts'
import { latencyRecommendations } from './latency.ts'
import type { PriceBook } from './prices.ts'
import type { Facts, Recommendation, RecommendationThresholds, RuleContext } from './types.ts'

export { createPriceBook, type PriceBook } from './prices.ts'
export type { Facts, Recommendation, RecommendationThresholds } from './types.ts'

/** The proxy's default address, for snippets when the collector does not know it. */
export const DEFAULT_PROXY_URL = 'http://127.0.0.1:8080'

/** The API's answer. */
export interface RecommendationsResponse {
  /** Window actually evaluated, epoch ms, aligned to whole minutes. */
  from: number
  to: number
  generated_at: string
  recommendations: Recommendation[]
}

/**
 * Every rule over `facts`, sorted by severity (critical first), then
 * estimated monthly USD (saving + risk, largest first), then id.
 */
export function buildRecommendations(
  facts: Facts,
  prices: PriceBook,
  thresholds: RecommendationThresholds,
  proxyUrl: string = DEFAULT_PROXY_URL,
): Recommendation[] {
  const ctx: RuleContext = { facts, prices, thresholds, proxyUrl }
  return [
    ...failoverRecommendations(ctx),
    ...cheaperModelRecommendations(ctx),
    ...latencyRecommendations(ctx),
    ...cachingRecommendations(ctx),
    ...hygieneRecommendations(ctx),
  ].sort(compareRecommendations)
}

/** Queries the store for [from, to) and returns the recommendations. */
export async function recommend(
  ctx: QueryContext,
  options: { from: number; to: number; prices: PriceBook; thresholds: RecommendationThresholds; proxyUrl?: string | null | undefined; now?: number },
): Promise<RecommendationsResponse> {
  const facts = await collectFacts(ctx, { from: options.from, to: options.to }, options.thresholds)
  return {
    from: facts.from,
    to: facts.to,
    generated_at: new Date(options.now ?? Date.now()).toISOString(),
    recommendations: buildRecommendations(facts, options.prices, options.thresholds, options.proxyUrl ?? DEFAULT_PROXY_URL),
  }
}

/**
 * Shapes shared by the recommendation rules: the API's Recommendation, the
 * plain "facts" one set of queries produces (facts.ts), and what every rule
 * takes. Rules are pure functions of these, so tests feed hand-built facts.
 */
import type { RecommendationThresholds } from '../../lib/config.ts'
import type { PriceBook } from './prices.ts'

export type { RecommendationThresholds }

/** Every kind of recommendation, one rule module each. */
export const RECOMMENDATION_KINDS = ['failover', 'cheaper_model', 'latency', 'caching', 'hygiene'] as const
/** @see RECOMMENDATION_KINDS */
export type RecommendationKind = (typeof RECOMMENDATION_KINDS)[number]
/** How urgently it deserves a look. */
export type Severity = 'info' | 'warning' | 'critical'
/** From sample size: see common.ts confidenceFor. */
export type Confidence = 'low' | 'medium' | 'high'

/** One piece of advice, reproducible from the spans `spans_query` lists. */
export interface Recommendation {
  /** Stable across runs: a hash of kind, variant and subject. */
  id: string
  kind: RecommendationKind
  severity: Severity
  title: string
  summary: string
  subject: { provider?: string; model?: string; app?: string; user?: string }
  /** The numbers behind it; USD rounded to 1e-6, shares to 1e-4, ms to 0.1. */
  evidence: Record<string, number | string | null>
  confidence: Confidence
  /** Spans the finding rests on (see each rule); confidence follows from it. */
  sample_size: number
  /** Window figures × 30 days / window length. */
  estimated_monthly_saving_usd: number | null
  estimated_monthly_risk_usd: number | null
  config_snippet: string | null
  /** Query string for /api/spans (and the dashboard's Requests view) returning the cited spans. */
  spans_query: string
}

/** Successful-call and error aggregates of one provider×model over the window (rollups + raw output stats). */
export interface ModelFacts {
  provider: string
  model: string
  requests: number
  errors: number
  http_4xx: number
  http_5xx: number
  rate_limited: number
  timeouts: number
  upstream_resets: number
  /** Calls the proxy could not complete (connection refused, DNS): an unreachable route. */
  proxy_errors: number
  /** USD recorded on failed calls (partial streams). */
  error_cost_usd: number
  /** Calls with error_type 'none'. */
  ok_requests: number
  ok_cost_usd: number
  ok_priced_requests: number
  ok_unpriced_requests: number
  ok_no_usage_requests: number
  /** Successful streams without usage. */
  ok_no_usage_streams: number
  /** Token sums of successful calls. */
  input_tokens: number
  output_tokens: number
  cached_input_tokens: number
  cache_write_tokens: number
  /** p95 of successful calls; null without any. */
  p95_ms: number | null
  p95_ttft_ms: number | null
  /** Successful calls reporting output tokens, and their mean and population stddev (raw table). */
  output_samples: number
  output_mean: number | null
  output_stddev: number | null
}

/** Identical successful requests (same request_hash) of one provider×model. */
export interface RepeatFacts {
  provider: string
  model: string
  /** Distinct request hashes seen at least twice. */
  groups: number
  /** Calls in those groups. */
  calls: number
  /** Calls beyond the first of each group. */
  repeat_calls: number
  /** USD of those repeat calls (a response cache would have saved it). */
  repeat_cost_usd: number
}

/** Long shared prompt prefixes, seen often, that were not read from a prompt cache. */
export interface PrefixFacts {
  provider: string
  model: string
  groups: number
  calls: number
  /** Σ over groups of estimated prefix tokens (bytes / 4, capped at the group's smallest input). */
  prefix_tokens: number
  /** Σ over groups of prefix tokens × (calls − 1): tokens a prompt cache could have served. */
  repeat_prefix_tokens: number
  cached_input_tokens: number
}

/** Spend of one user or app: the last 24 hours against the rest of the window. */
export interface SpendFacts {
  dimension: 'user' | 'app'
  key: string
  recent_usd: number
  recent_requests: number
  baseline_usd: number
}

/** Everything the rules read, for one window. */
export interface Facts {
  /** Window, epoch ms, minute-aligned (the rollups' grain), [from, to). */
  from: number
  to: number
  /** Start of the "last 24 hours" of the spike rule: to − 24 h, or from when the window is shorter. */
  recent_from: number
  models: ModelFacts[]
  repeats: RepeatFacts[]
  prefixes: PrefixFacts[]
  spend: SpendFacts[]
}

/** What each rule gets besides facts. */
export interface RuleContext {
  facts: Facts
  prices: PriceBook
  thresholds: RecommendationThresholds
  /** Proxy base URL used in snippets. */
  proxyUrl: string
}

/**
 * The collector API's JSON shapes. The span comes from collector/schema.ts;
 * the aggregate shapes of collector/queries.ts and server.ts are kept here by
 * hand, because those modules pull in server-only code.
 */

import { ERROR_TYPES as ALL_ERROR_TYPES, type ErrorType, type Span } from '../../../collector/schema.ts'

// The span itself comes from the module that owns it (collector/schema.ts has
// no imports, so the browser bundle takes only its constants).
export type { ErrorType, Span }

/** The failure kinds, `none` left out. */
export const ERROR_TYPES = ALL_ERROR_TYPES.filter((t): t is Exclude<ErrorType, 'none'> => t !== 'none')

/** GET /api/spans */
export interface SpanList {
  spans: Span[]
  next_cursor: string | null
}

export const SUMMARY_GROUPS = ['model', 'provider', 'app', 'endpoint', 'error_type', 'status_code', 'user', 'session', 'property'] as const
export type SummaryGroup = (typeof SUMMARY_GROUPS)[number]

export interface SummaryRow {
  /** Null without group_by; `{provider, model}` with group_by=model; `{<group_by>: value}` otherwise. */
  group: Record<string, string> | null
  requests: number
  errors: number
  error_rate: number
  rate_limited: number
  streams: number
  latency_ms: { avg: number | null; p50: number | null; p90: number | null; p95: number | null; p99: number | null }
  ttft_ms: { p50: number | null; p90: number | null; p95: number | null; p99: number | null }
  tokens: { input: number; output: number; cached_input: number; cache_write: number; reasoning: number }
  output_tokens_per_s: number | null
  cost_usd: number
  unpriced_requests: number
  no_usage_requests: number
  /** Only with group_by=model; null when the model has no price. */
  cache_savings_usd?: number | null
}

/** GET /api/summary */
export interface Summary {
  from: number
  to: number
  group_by: SummaryGroup | null
  rows: SummaryRow[]
}

export const TIMESERIES_GROUPS = ['model', 'provider', 'app', 'endpoint', 'error_type', 'status_code', 'cost_status', 'user', 'session'] as const
export type TimeseriesGroup = (typeof TIMESERIES_GROUPS)[number]

export type TimeseriesMetric =
  | 'requests'
  | 'errors'
  | 'error_rate'
  | 'rate_limited'
  | 'cost_usd'
  | 'input_tokens'
  | 'output_tokens'
  | 'cached_input_tokens'
  | 'cache_write_tokens'
  | 'reasoning_tokens'
  | 'latency_p50'
  | 'latency_p90'
  | 'latency_p95'
  | 'latency_p99'
  | 'ttft_p50'
  | 'ttft_p95'
  | 'output_tokens_per_s'

/** GET /api/timeseries: zero-filled buckets (null for percentiles of empty buckets). */
export interface Timeseries {
  /** The metric asked for; several comma-separated when several were. */
  metric: string
  step_s: number
  from: number
  to: number
  /** Bucket start times, epoch ms. */
  buckets: number[]
  series: { metric: TimeseriesMetric; group: string | null; values: (number | null)[] }[]
}

/** GET /api/health: what the health strip shows. */
export interface Health {
  store: { kind: string; reachable: boolean; inserts_healthy: boolean }
  spool_bytes: number
  queue_rows: number
  dropped_spans: number
  /** Null when the collector watches no proxy (a standalone collector). */
  proxy: { url: string; up: boolean; in_flight: number | null; spans_dropped: number | null } | null
}

export type RecommendationKind = 'failover' | 'cheaper_model' | 'latency' | 'caching' | 'hygiene'
export type Severity = 'info' | 'warning' | 'critical'

export interface Recommendation {
  id: string
  kind: RecommendationKind
  severity: Severity
  title: string
  summary: string
  subject: { provider?: string; model?: string; app?: string; user?: string }
  evidence: Record<string, number | string | null>
  confidence: 'low' | 'medium' | 'high'
  sample_size: number
  estimated_monthly_saving_usd: number | null
  estimated_monthly_risk_usd: number | null
  config_snippet: string | null
  /** A query string for the Requests view, e.g. `model=gpt-4o&status=error&from=..&to=..`. */
  spans_query: string
}

/** GET /api/recommendations (planned; a 404 means the collector has none yet). */
export interface Recommendations {
  from: number
  to: number
  generated_at: number | string
  recommendations: Recommendation[]
}

/** Filters every list and aggregate endpoint takes. */
export interface SpanFilters {
  model?: string
  provider?: string
  /** `ok`, `error` or an error_type. */
  status?: string
  user?: string
  session?: string
  app?: string
  endpoint?: string
  /** `key:value` on span properties. */
  property?: string
  /** Text in the model name, case-insensitive. */
  q?: string
}

export const FILTER_KEYS = ['model', 'provider', 'status', 'user', 'session', 'app', 'endpoint', 'property', 'q'] as const satisfies readonly (keyof SpanFilters)[]

/** A resolved time window, epoch ms, half-open [from, to). */
export interface TimeWindow {
  from: number
  to: number
}

/**
 * The JSON shapes of /api/summary and /api/timeseries and the names their
 * parameters take. No imports: the dashboard's bundle takes these from here
 * (like the span from collector/schema.ts), so the two sides cannot drift.
 */

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
  /** With group_by=model: USD the cached input tokens saved against fresh input (null: model unpriced). */
  cache_savings_usd?: number | null
}

export const TIMESERIES_METRIC_NAMES = [
  'requests',
  'errors',
  'error_rate',
  'rate_limited',
  'cost_usd',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'latency_p50',
  'latency_p90',
  'latency_p95',
  'latency_p99',
  'ttft_p50',
  'ttft_p95',
  'output_tokens_per_s',
] as const
export type TimeseriesMetric = (typeof TIMESERIES_METRIC_NAMES)[number]

export const TIMESERIES_GROUPS = ['model', 'provider', 'app', 'endpoint', 'error_type', 'status_code', 'cost_status', 'user', 'session'] as const
export type TimeseriesGroup = (typeof TIMESERIES_GROUPS)[number]

/** GET /api/timeseries: zero-filled buckets (null for percentiles of empty buckets). */
export interface Timeseries {
  /** The metric asked for; several comma-separated when several were. */
  metric: string
  step_s: number
  from: number
  to: number
  /** Bucket start times, epoch ms. */
  buckets: number[]
  /** Per metric (in the order asked), one series per group (or one, group null). */
  series: { metric: TimeseriesMetric; group: string | null; values: (number | null)[] }[]
}

/**
 * Response header of every /api/ answer: how many queries the collector's
 * store runs at once (1 for embedded chDB), so the dashboard sends no more
 * than that at a time (dashboard/src/lib/gate.ts).
 */
export const QUERY_SLOTS_HEADER = 'x-tollgate-query-slots'

/**
 * The collector API's JSON shapes. The span comes from collector/schema.ts and
 * the summary and time-series shapes from collector/api/shapes.ts (both
 * import-free); the rest of server.ts's answers are kept here by hand,
 * because that module pulls in server-only code.
 */

import { ERROR_TYPES as ALL_ERROR_TYPES, type ErrorType, type Span } from '../../../collector/schema.ts'

// The span itself comes from the module that owns it (collector/schema.ts has
// no imports, so the browser bundle takes only its constants).
export type { ErrorType, Span }
export { SUMMARY_GROUPS, TIMESERIES_GROUPS, TIMESERIES_METRIC_NAMES } from '../../../collector/api/shapes.ts'
export type { SummaryGroup, SummaryRow, Timeseries, TimeseriesGroup, TimeseriesMetric } from '../../../collector/api/shapes.ts'
import type { SummaryGroup, SummaryRow } from '../../../collector/api/shapes.ts'

/** The failure kinds, `none` left out. */
export const ERROR_TYPES = ALL_ERROR_TYPES.filter((t): t is Exclude<ErrorType, 'none'> => t !== 'none')

/** GET /api/spans */
export interface SpanList {
  spans: Span[]
  next_cursor: string | null
}

/** GET /api/summary */
export interface Summary {
  from: number
  to: number
  group_by: SummaryGroup | null
  rows: SummaryRow[]
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

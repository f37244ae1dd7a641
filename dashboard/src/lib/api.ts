/**
 * One typed function per collector endpoint. Same origin: the collector serves
 * this app, and the Vite dev server forwards /api to it.
 */
import { QUERY_SLOTS_HEADER } from '../../../collector/api/shapes.ts'
import { createGate } from './gate.ts'
import type { Health, Recommendations, Span, SpanFilters, SpanList, Summary, SummaryGroup, TimeWindow, Timeseries, TimeseriesGroup, TimeseriesMetric } from './types.ts'

/** A failed API call: the HTTP status and the collector's error message. */
export class ApiError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
  }
}

type Query = Record<string, string | number | undefined>

/** Builds `?a=1&b=2`, leaving out undefined and empty values. */
export function queryString(query: Query): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') params.set(key, String(value))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

/** Query calls wait for a slot (gate.ts); one at a time until the collector says it runs more. */
const queryGate = createGate(1)

async function getJson<T>(path: string, query: Query, signal?: AbortSignal): Promise<T> {
  const url = `${path}${queryString(query)}`
  // The health strip reads no store: it must not wait behind the queries.
  return path === '/api/health' ? fetchJson<T>(path, url, signal) : queryGate.run(() => fetchJson<T>(path, url, signal), signal)
}

/** One call, its body read (a slot is held until then). */
async function fetchJson<T>(path: string, url: string, signal: AbortSignal | undefined): Promise<T> {
  const res = await fetch(url, { signal, headers: { accept: 'application/json' } })
  const slots = Number(res.headers.get(QUERY_SLOTS_HEADER))
  if (slots > 0) queryGate.setSlots(slots)
  if (!res.ok) {
    // The collector answers errors as { error: { code, message } }.
    const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null
    throw new ApiError(res.status, body?.error?.message ?? `${path} answered ${res.status}`)
  }
  return (await res.json()) as T
}

export interface SpansQuery extends SpanFilters, TimeWindow {
  /** 1–1000. @default 100 */
  limit?: number
  /** `next_cursor` of the previous page. */
  cursor?: string
}

/**
 * Spans newest first, one page.
 * @example fetchSpans({ from, to, status: 'error', limit: 50 })
 */
export function fetchSpans(query: SpansQuery, signal?: AbortSignal): Promise<SpanList> {
  return getJson('/api/spans', { ...query }, signal)
}

/**
 * One span with its captured bodies; null when the collector has no such span.
 * @example fetchSpan('0b7e0d52-…')
 */
export async function fetchSpan(spanId: string, signal?: AbortSignal): Promise<Span | null> {
  try {
    return await getJson<Span>(`/api/spans/${encodeURIComponent(spanId)}`, {}, signal)
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null
    throw err
  }
}

export interface SummaryQuery extends SpanFilters, TimeWindow {
  group_by?: SummaryGroup
  /** With group_by=property: the property whose values form the groups. */
  property_key?: string
  /** Only the top groups by spend. */
  limit?: number
}

/**
 * Aggregates over the window, one row per group (one row without group_by).
 * @example fetchSummary({ from, to, group_by: 'model' })
 */
export function fetchSummary(query: SummaryQuery, signal?: AbortSignal): Promise<Summary> {
  return getJson('/api/summary', { ...query }, signal)
}

export interface TimeseriesQuery extends SpanFilters, TimeWindow {
  metric: TimeseriesMetric
  group_by?: TimeseriesGroup
  /** Bucket size in seconds; the collector picks ~120 points without it. */
  step?: number
}

/**
 * One metric over time, zero-filled, optionally one series per group.
 * @example fetchTimeseries({ from, to, metric: 'cost_usd', group_by: 'model' })
 */
export function fetchTimeseries(query: TimeseriesQuery, signal?: AbortSignal): Promise<Timeseries> {
  return getJson('/api/timeseries', { ...query }, signal)
}

/**
 * Several ungrouped metrics over time in one request (one query on the
 * collector), split back into one Timeseries per metric.
 * @example fetchTimeseriesSet({ from, to }, ['latency_p50', 'latency_p95'])
 */
export async function fetchTimeseriesSet<M extends TimeseriesMetric>(
  query: Omit<TimeseriesQuery, 'metric' | 'group_by'>,
  metrics: readonly M[],
  signal?: AbortSignal,
): Promise<Record<M, Timeseries>> {
  const all = await getJson<Timeseries>('/api/timeseries', { ...query, metric: metrics.join(',') }, signal)
  const out = {} as Record<M, Timeseries>
  for (const metric of metrics) out[metric] = { ...all, metric, series: all.series.filter((s) => s.metric === metric) }
  return out
}

/** Proxy, store, spool and drops, for the health strip. */
export function fetchHealth(signal?: AbortSignal): Promise<Health> {
  return getJson('/api/health', {}, signal)
}

/**
 * Recommendations for the window; null while the collector has no such
 * endpoint (404), so the panel shows its empty state instead of an error.
 */
export async function fetchRecommendations(window: TimeWindow, signal?: AbortSignal): Promise<Recommendations | null> {
  try {
    return await getJson<Recommendations>('/api/recommendations', { from: window.from, to: window.to }, signal)
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null
    throw err
  }
}

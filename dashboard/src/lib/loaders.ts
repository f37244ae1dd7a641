/**
 * What each page asks the collector for, in one place per page. Every
 * request of a page goes out at once and the page updates when all have
 * answered, so charts and cards never show a mix of two refreshes.
 */
import { fetchSummary, fetchTimeseries, fetchTimeseriesSet } from './api.ts'
import type { SpanFilters, SummaryRow, TimeWindow, Timeseries, TimeseriesGroup } from './types.ts'
import type { SpendGroup } from './url-state.ts'

export interface OverviewData {
  current: SummaryRow | undefined
  previous: SummaryRow | undefined
  requests: Timeseries
  errors: Timeseries
  costByModel: Timeseries
  latencyP50: Timeseries
  latencyP95: Timeseries
  latencyP99: Timeseries
  ttftP50: Timeseries
  ttftP95: Timeseries
}

/** Totals for the window and the one before, and the Overview's charts. */
export async function loadOverview(window: TimeWindow, previous: TimeWindow, signal: AbortSignal, filters: SpanFilters = {}): Promise<OverviewData> {
  const q = { ...filters, ...window }
  // The ungrouped charts in one request: on the embedded store queries run one
  // at a time, and the latency quantiles share one t-digest merge there.
  const [current, before, costByModel, set] = await Promise.all([
    fetchSummary(q, signal),
    fetchSummary({ ...filters, ...previous }, signal),
    fetchTimeseries({ ...q, metric: 'cost_usd', group_by: 'model' }, signal),
    fetchTimeseriesSet(q, OVERVIEW_METRICS, signal),
  ])
  return {
    current: current.rows[0],
    previous: before.rows[0],
    requests: set.requests,
    errors: set.errors,
    costByModel,
    latencyP50: set.latency_p50,
    latencyP95: set.latency_p95,
    latencyP99: set.latency_p99,
    ttftP50: set.ttft_p50,
    ttftP95: set.ttft_p95,
  }
}

const OVERVIEW_METRICS = ['requests', 'errors', 'latency_p50', 'latency_p95', 'latency_p99', 'ttft_p50', 'ttft_p95'] as const

export interface ModelDetailData extends OverviewData {
  byErrorType: SummaryRow[]
  byStatusCode: SummaryRow[]
}

/** One model's charts (every series filtered by provider and model) and its error breakdown. */
export async function loadModelDetail(window: TimeWindow, previous: TimeWindow, model: { provider: string; model: string }, signal: AbortSignal): Promise<ModelDetailData> {
  const filters: SpanFilters = { model: model.model, ...(model.provider ? { provider: model.provider } : {}) }
  const [overview, byErrorType, byStatusCode] = await Promise.all([
    loadOverview(window, previous, signal, filters),
    fetchSummary({ ...filters, ...window, group_by: 'error_type' }, signal),
    fetchSummary({ ...filters, ...window, group_by: 'status_code' }, signal),
  ])
  return { ...overview, byErrorType: byErrorType.rows, byStatusCode: byStatusCode.rows }
}

export interface SpendData {
  /** The split these rows are for (the page may already ask for another). */
  by: SpendGroup
  propertyKey: string
  total: SummaryRow | undefined
  /** Per model, with cache savings. */
  models: SummaryRow[]
  /** The table for the chosen split. */
  groups: SummaryRow[]
  /** Spend over time, one series per group. */
  overTime: Timeseries
  topUsers: SummaryRow[]
  topSessions: SummaryRow[]
}

/** Rows in the top users and top sessions tables. */
const TOP_ROWS = 20

/** Users in the Spend split's table (the top by spend). */
const SPLIT_USER_ROWS = 100

/** Most property values charted over time; the table lists them all. */
const MAX_PROPERTY_SERIES = 8

/**
 * Spend split by `by`. Timeseries cannot group by a property, so a property
 * split charts its top values as one filtered series each.
 */
export async function loadSpend(window: TimeWindow, by: SpendGroup, propertyKey: string, signal: AbortSignal): Promise<SpendData> {
  // Users can number thousands: the split lists the top ones by spend, which
  // the collector ranks on sums before merging their latency sketches.
  const groupsQuery =
    by === 'property'
      ? fetchSummary({ ...window, group_by: 'property', property_key: propertyKey }, signal)
      : fetchSummary({ ...window, group_by: by, ...(by === 'user' ? { limit: SPLIT_USER_ROWS } : {}) }, signal)
  const [total, models, groups, topUsers, topSessions] = await Promise.all([
    fetchSummary(window, signal),
    fetchSummary({ ...window, group_by: 'model' }, signal),
    groupsQuery,
    fetchSummary({ ...window, group_by: 'user', limit: TOP_ROWS }, signal),
    fetchSummary({ ...window, group_by: 'session', limit: TOP_ROWS }, signal),
  ])
  let overTime: Timeseries
  if (by === 'property') {
    const values = groups.rows.slice(0, MAX_PROPERTY_SERIES).map((r) => r.group?.property ?? '')
    overTime = await propertySeries(window, propertyKey, values, signal)
  } else {
    overTime = await fetchTimeseries({ ...window, metric: 'cost_usd', group_by: by satisfies TimeseriesGroup }, signal)
  }
  return {
    by,
    propertyKey,
    total: total.rows[0],
    models: models.rows,
    groups: groups.rows,
    overTime,
    topUsers: topUsers.rows.slice(0, 10),
    topSessions: topSessions.rows.slice(0, 10),
  }
}

/** One cost series per property value, fetched with a `property=key:value` filter each. */
async function propertySeries(window: TimeWindow, key: string, values: readonly string[], signal: AbortSignal): Promise<Timeseries> {
  const answers = await Promise.all(values.map((value) => fetchTimeseries({ ...window, metric: 'cost_usd', property: `${key}:${value}` }, signal)))
  const first = answers[0] ?? (await fetchTimeseries({ ...window, metric: 'cost_usd', property: key }, signal))
  return {
    ...first,
    series: answers.map((a, i) => ({ metric: 'cost_usd' as const, group: values[i] ?? '', values: a.series[0]?.values ?? a.buckets.map(() => 0) })),
  }
}

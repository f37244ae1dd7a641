/**
 * Reshapes /api/timeseries answers into chart series. No aggregation of
 * spans happens here: the collector computed every value; this only lines
 * buckets up, names series, orders them and stacks them for drawing.
 */
import { formatLabel } from './format.ts'
import type { Timeseries } from './types.ts'

export interface ChartSeries {
  label: string
  values: (number | null)[]
}

/** A chart's data: x in epoch seconds (uPlot's time unit), one array per series. */
export interface ChartModel {
  x: number[]
  series: ChartSeries[]
}

/** uPlot's AlignedData: x first, then one array per series. */
export type PlotData = [number[], ...(number | null)[][]]

/** uPlot bands: fill between series `upper` and `lower` (1-based series indexes). */
export interface PlotBand {
  series: [number, number]
}

export const EMPTY_CHART: ChartModel = { x: [], series: [] }

const toSeconds = (buckets: readonly number[]) => buckets.map((t) => t / 1000)

const total = (values: readonly (number | null)[]) => values.reduce<number>((sum, v) => sum + (v ?? 0), 0)

/**
 * One series per group (`group_by` answers), largest total first so a
 * stacked chart keeps the big spenders at the bottom.
 * @example seriesByGroup(costByModel) // { x, series: [{ label: 'gpt-4o', values }, …] }
 */
export function seriesByGroup(ts: Timeseries | undefined, label: (group: string | null) => string = formatLabel): ChartModel {
  if (!ts) return EMPTY_CHART
  const series = ts.series
    .map((s) => ({ label: label(s.group), values: s.values, sum: total(s.values) }))
    .sort((a, b) => b.sum - a.sum)
    .map(({ label, values }) => ({ label, values }))
  return { x: toSeconds(ts.buckets), series }
}

/**
 * Several ungrouped answers (one metric each, same window and step) as
 * series of one chart, matched by bucket time; a bucket a part lacks is null.
 * @example seriesByMetric([{ label: 'p50', ts: p50 }, { label: 'p95', ts: p95 }])
 */
export function seriesByMetric(parts: readonly { label: string; ts: Timeseries | undefined }[]): ChartModel {
  const first = parts.find((p) => p.ts)?.ts
  if (!first) return EMPTY_CHART
  const series = parts.map(({ label, ts }) => {
    const byTime = new Map<number, number | null>()
    const values = ts?.series[0]?.values ?? []
    ts?.buckets.forEach((t, i) => byTime.set(t, values[i] ?? null))
    return { label, values: first.buckets.map((t) => byTime.get(t) ?? null) }
  })
  return { x: toSeconds(first.buckets), series }
}

/**
 * Requests per bucket split into succeeded and failed: the `requests` and
 * `errors` metrics of the same window, success = requests − errors.
 */
export function successErrorSeries(requests: Timeseries | undefined, errors: Timeseries | undefined): ChartModel {
  const both = seriesByMetric([
    { label: 'requests', ts: requests },
    { label: 'errors', ts: errors },
  ])
  const [all, failed] = both.series
  if (!all || !failed) return EMPTY_CHART
  return {
    x: both.x,
    series: [
      { label: 'success', values: all.values.map((v, i) => (v === null ? null : v - (failed.values[i] ?? 0))) },
      { label: 'error', values: failed.values },
    ],
  }
}

/**
 * uPlot's data for a chart. Stacked: each series drawn at the running sum
 * of those before it, with bands so each fills only down to the one below.
 */
export function plotData(model: ChartModel, stacked: boolean): { data: PlotData; bands: PlotBand[] } {
  if (!stacked) return { data: [model.x, ...model.series.map((s) => s.values)], bands: [] }
  const running = model.x.map(() => 0)
  const data: PlotData = [model.x]
  for (const s of model.series) {
    data.push(s.values.map((v, i) => (running[i] = (running[i] ?? 0) + (v ?? 0))))
  }
  return { data, bands: stackBands(model.series.length) }
}

/** Bands for `count` stacked series: uPlot numbers series from 1 (0 is x), and series i+1 sits on series i. */
export function stackBands(count: number): PlotBand[] {
  return Array.from({ length: Math.max(0, count - 1) }, (_, i) => ({ series: [i + 2, i + 1] }))
}

/** False when every value is null or zero: the chart shows "no data" instead of a flat line. */
export function hasData(model: ChartModel): boolean {
  return model.series.some((s) => s.values.some((v) => v !== null && v !== 0))
}

/**
 * Indexes of values with no value on either side. A line needs two points,
 * so these would not show at all; the chart draws them as dots.
 * @example isolatedIndexes([null, 5, null, 1, 2]) // [1]
 */
export function isolatedIndexes(values: ArrayLike<number | null | undefined>): number[] {
  const found: number[] = []
  const present = (i: number) => i >= 0 && i < values.length && values[i] !== null && values[i] !== undefined
  for (let i = 0; i < values.length; i++) if (present(i) && !present(i - 1) && !present(i + 1)) found.push(i)
  return found
}

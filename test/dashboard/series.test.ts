/** Reshaping API answers into chart series: alignment, naming, stacking. */
import { describe, expect, it } from 'vitest'
import { EMPTY_CHART, hasData, isolatedIndexes, plotData, seriesByGroup, seriesByMetric, stackBands, successErrorSeries } from '../../dashboard/src/lib/series.ts'
import type { Timeseries, TimeseriesMetric } from '../../dashboard/src/lib/types.ts'

const B = [60_000, 120_000, 180_000]

function ts(metric: TimeseriesMetric, series: Omit<Timeseries['series'][number], 'metric'>[], buckets = B): Timeseries {
  return { metric, step_s: 60, from: buckets[0] ?? 0, to: (buckets.at(-1) ?? 0) + 60_000, buckets, series: series.map((s) => ({ metric, ...s })) }
}

describe('seriesByGroup', () => {
  it('makes one series per group, largest total first, x in seconds', () => {
    const model = seriesByGroup(
      ts('cost_usd', [
        { group: 'gpt-4o-mini', values: [0.1, 0, 0.1] },
        { group: 'gpt-4o', values: [1, 2, 3] },
        { group: '', values: [0, 0.05, 0] },
      ]),
    )
    expect(model.x).toEqual([60, 120, 180])
    expect(model.series.map((s) => s.label)).toEqual(['gpt-4o', 'gpt-4o-mini', '(none)'])
    expect(model.series[0]!.values).toEqual([1, 2, 3])
  })
  it('is empty before data arrives', () => {
    expect(seriesByGroup(undefined)).toBe(EMPTY_CHART)
  })
})

describe('seriesByMetric', () => {
  it('lines up several answers by bucket time, null where one lacks a bucket', () => {
    const model = seriesByMetric([
      { label: 'p50', ts: ts('latency_p50', [{ group: null, values: [10, null, 30] }]) },
      { label: 'p95', ts: ts('latency_p95', [{ group: null, values: [50, 70] }], [120_000, 180_000]) },
      { label: 'p99', ts: ts('latency_p99', []) },
    ])
    expect(model.x).toEqual([60, 120, 180])
    expect(model.series).toEqual([
      { label: 'p50', values: [10, null, 30] },
      { label: 'p95', values: [null, 50, 70] },
      { label: 'p99', values: [null, null, null] },
    ])
  })
})

describe('successErrorSeries', () => {
  it('splits requests into success and error', () => {
    const model = successErrorSeries(ts('requests', [{ group: null, values: [5, 0, 7] }]), ts('errors', [{ group: null, values: [1, 0, 7] }]))
    expect(model.series).toEqual([
      { label: 'success', values: [4, 0, 0] },
      { label: 'error', values: [1, 0, 7] },
    ])
  })
  it('is empty until both answers are there', () => {
    expect(successErrorSeries(undefined, undefined)).toBe(EMPTY_CHART)
  })
})

describe('plotData', () => {
  const model = {
    x: [60, 120],
    series: [
      { label: 'a', values: [1, 2] },
      { label: 'b', values: [3, null] },
      { label: 'c', values: [0.5, 1] },
    ],
  }
  it('passes values through unstacked', () => {
    expect(plotData(model, false)).toEqual({ data: [[60, 120], [1, 2], [3, null], [0.5, 1]], bands: [] })
  })
  it('stacks as running sums with bands between neighbours', () => {
    expect(plotData(model, true)).toEqual({
      data: [[60, 120], [1, 2], [4, 2], [4.5, 3]],
      bands: [{ series: [2, 1] }, { series: [3, 2] }],
    })
    expect(stackBands(1)).toEqual([])
    expect(stackBands(0)).toEqual([])
  })
})

describe('hasData', () => {
  it('is false for all-zero or all-null series', () => {
    expect(hasData(EMPTY_CHART)).toBe(false)
    expect(hasData({ x: [1], series: [{ label: 'a', values: [0] }, { label: 'b', values: [null] }] })).toBe(false)
    expect(hasData({ x: [1], series: [{ label: 'a', values: [0.0001] }] })).toBe(true)
  })
})

describe('isolatedIndexes', () => {
  it('finds values with no neighbour, which a line cannot draw', () => {
    expect(isolatedIndexes([null, 5, null, 1, 2, null, 0])).toEqual([1, 6])
    expect(isolatedIndexes([3])).toEqual([0])
    expect(isolatedIndexes([1, 2])).toEqual([])
    expect(isolatedIndexes([])).toEqual([])
  })
})

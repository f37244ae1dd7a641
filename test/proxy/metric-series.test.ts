/**
 * proxy/metric-series.ts must expose exactly what prom-client's own metrics
 * would for the same updates: the same registry formats both, so the
 * exposition text is compared whole.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { SeriesCounter, SeriesGauge, SeriesHistogram } from '../../proxy/metric-series.ts'

const BUCKETS = [0.01, 0.1, 1, 10]

function both() {
  const ours = new Registry()
  const theirs = new Registry()
  const config = (name: string, labelNames: string[]) => ({ name, help: `help of ${name} with "quotes" \\ and\nnewline`, labelNames })
  return {
    ours,
    theirs,
    counter: [new SeriesCounter({ ...config('c_total', ['a', 'b']), registry: ours }), new Counter({ ...config('c_total', ['a', 'b']), registers: [theirs] })] as const,
    gauge: [new SeriesGauge({ ...config('g', ['a']), registry: ours }), new Gauge({ ...config('g', ['a']), registers: [theirs] })] as const,
    histogram: [
      new SeriesHistogram({ ...config('h_seconds', ['a', 'b']), buckets: BUCKETS, registry: ours }),
      new Histogram({ ...config('h_seconds', ['a', 'b']), buckets: BUCKETS, registers: [theirs] }),
    ] as const,
  }
}

describe('metric series', () => {
  it('expose the same text as prom-client for the same updates', async () => {
    const m = both()
    // A deterministic mix: repeated and new label sets, label values that need escaping, zero, fractional and huge values, bucket edges.
    let seed = 7
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const labelValues = ['x', 'y', 'with "quote"', 'back\\slash', 'new\nline', '']
    const values = [0, 1, 0.1, 0.01, 10, 10.000001, 1e9, 0.3, 2.5e-7, 1 / 3]
    for (let i = 0; i < 2000; i++) {
      const labels = { a: labelValues[Math.floor(rand() * labelValues.length)]!, b: labelValues[Math.floor(rand() * 3)]! }
      const value = values[Math.floor(rand() * values.length)]!
      // Label objects built afresh each time for prom-client, bound once for ours (as proxy/metrics.ts does).
      m.counter[0].series(labels).inc(value)
      m.counter[1].labels({ ...labels }).inc(value)
      if (rand() < 0.3) {
        m.counter[0].series(labels).inc()
        m.counter[1].labels({ ...labels }).inc()
      }
      m.histogram[0].series(labels).observe(value)
      m.histogram[1].labels({ ...labels }).observe(value)
      const g = { a: labels.a }
      if (rand() < 0.5) {
        m.gauge[0].series(g).inc()
        m.gauge[1].labels({ ...g }).inc()
      } else {
        m.gauge[0].series(g).dec()
        m.gauge[1].labels({ ...g }).dec()
      }
    }
    const text = await m.ours.metrics()
    expect(text).toBe(await m.theirs.metrics())
    expect(text).toContain('h_seconds_bucket{le="+Inf",a="x",b="x"}')

    m.ours.resetMetrics()
    m.theirs.resetMetrics()
    m.counter[0].series({ a: 'x', b: 'y' }).inc(0)
    m.counter[1].labels({ a: 'x', b: 'y' }).inc(0)
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics())
  })

  it('a series bound but never updated is not shown; equal label values share one series', async () => {
    const m = both()
    m.histogram[0].series({ a: 'p', b: 'q' })
    const one = m.counter[0].series({ a: 'p', b: 'q' })
    const same = m.counter[0].series({ b: 'q', a: 'p' })
    expect(same).toBe(one)
    one.inc(2)
    same.inc(3)
    m.counter[1].labels({ a: 'p', b: 'q' }).inc(5)
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics())
  })

  it('reject what prom-client rejects', () => {
    const m = both()
    expect(() => m.counter[0].series({ a: 'x', b: 'y' }).inc(-1)).toThrow(/decrease/)
    expect(() => m.counter[1].labels({ a: 'x', b: 'y' }).inc(-1)).toThrow(/decrease/)
    expect(() => m.counter[0].series({ a: 'x', b: 'y' }).inc(Number.POSITIVE_INFINITY)).toThrow(TypeError)
    expect(() => m.counter[1].labels({ a: 'x', b: 'y' }).inc(Number.POSITIVE_INFINITY)).toThrow(TypeError)
    expect(() => m.histogram[1].labels({ a: 'x', b: 'y' }).observe(Number.POSITIVE_INFINITY)).toThrow(TypeError)
    expect(() => m.histogram[0].series({ a: 'x', b: 'y' }).observe(Number.POSITIVE_INFINITY)).toThrow(TypeError)
    expect(() => m.counter[0].series({ a: 'x' })).toThrow(/label b/)
    expect(() => m.counter[0].series({ a: 'x', b: 'y', c: 'z' })).toThrow(/exactly/)
  })
})

/**
 * Prometheus counters, gauges and histograms whose series are updated with
 * plain arithmetic, for the metrics every call touches. prom-client's own
 * `labels(...).inc()` re-hashes and re-validates the label set on every call,
 * even on a bound child (a dozen times per call: ~3% of the proxy's CPU).
 * These metrics register in a prom-client Registry and hand it the same
 * `values` its own metrics do, so the registry formats them into the same
 * exposition text (test/proxy/metric-series.test.ts compares the two).
 */
import type { Registry } from 'prom-client'

interface MetricConfig {
  name: string
  help: string
  labelNames: readonly string[]
  registry: Registry
}

type Labels = Record<string, string>

/** What prom-client's Registry reads from a metric. */
interface MetricData {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  values: { value: number; labels: Record<string, string | number>; metricName?: string; sharedLabels?: Labels; exemplar?: null }[]
  aggregator: 'sum'
}

abstract class SeriesMetric<S extends { labels: Labels; shown: boolean }> {
  readonly name: string
  readonly help: string
  readonly aggregator = 'sum' as const
  abstract readonly type: MetricData['type']
  private readonly labelNames: readonly string[]
  private readonly byKey = new Map<string, S>()
  /** Series in the order of their first update, as prom-client lists them; one not yet updated is not shown. */
  protected shown: S[] = []

  constructor({ name, help, labelNames, registry }: MetricConfig) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
    registry.registerMetric(this as never)
  }

  /** The series of one label set; the same object for equal label values. Bind once, update on every call. */
  series(labels: Labels): S {
    const key = this.labelNames.map((n) => {
      const value = labels[n]
      if (value === undefined) throw new Error(`${this.name}: label ${n} missing`)
      return value
    }).join('\u0000')
    if (Object.keys(labels).length !== this.labelNames.length) throw new Error(`${this.name}: labels must be exactly ${this.labelNames.join(', ')}`)
    let series = this.byKey.get(key)
    if (!series) {
      series = this.create(labels)
      this.byKey.set(key, series)
    }
    return series
  }

  protected abstract create(labels: Labels): S

  /** @internal A series' first update: from now on it is listed. */
  show(series: S): void {
    series.shown = true
    this.shown.push(series)
  }

  reset(): void {
    for (const series of this.shown) this.zero(series)
    this.shown = []
  }

  protected abstract zero(series: S): void

  abstract getForPromString(): MetricData

  get(): MetricData {
    return this.getForPromString()
  }
}

/** A counter's or a gauge's one number: shown once first updated. */
abstract class ScalarSeries {
  value = 0
  shown = false
  constructor(
    readonly labels: Labels,
    private readonly owner: ScalarSeriesMetric<ScalarSeries>,
  ) {}

  protected add(amount: number): void {
    this.value += amount
    if (!this.shown) this.owner.show(this)
  }
}

export class CounterSeries extends ScalarSeries {
  inc(amount = 1): void {
    // prom-client's checks, so a bad value fails the same way.
    if (amount && !Number.isFinite(amount)) throw new TypeError(`Value is not a valid finite number: ${amount}`)
    if (amount < 0) throw new Error('It is not possible to decrease a counter')
    this.add(amount)
  }
}

/** One number per series (counters, gauges): shown once first updated, zeroed on reset. */
abstract class ScalarSeriesMetric<S extends ScalarSeries> extends SeriesMetric<S> {
  protected zero(series: S): void {
    series.value = 0
    series.shown = false
  }
  getForPromString(): MetricData {
    return { name: this.name, help: this.help, type: this.type, values: this.shown.map((s) => ({ value: s.value, labels: s.labels })), aggregator: this.aggregator }
  }
}

export class SeriesCounter extends ScalarSeriesMetric<CounterSeries> {
  readonly type = 'counter' as const
  protected create(labels: Labels): CounterSeries {
    return new CounterSeries(labels, this)
  }
}

export class GaugeSeries extends ScalarSeries {
  inc(amount = 1): void {
    this.add(amount)
  }

  dec(amount = 1): void {
    this.add(-amount)
  }
}

export class SeriesGauge extends ScalarSeriesMetric<GaugeSeries> {
  readonly type = 'gauge' as const
  protected create(labels: Labels): GaugeSeries {
    return new GaugeSeries(labels, this)
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  shown = false
  constructor(
    readonly labels: Labels,
    private readonly owner: SeriesHistogram,
  ) {
    this.counts = new Float64Array(owner.buckets.length + 1)
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`)
    const bounds = this.owner.buckets
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count += 1
    if (!this.shown) this.owner.show(this)
  }
}

export class SeriesHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram' as const
  readonly buckets: readonly number[]
  constructor(config: MetricConfig & { buckets: readonly number[] }) {
    super(config)
    this.buckets = [...config.buckets]
  }
  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this)
  }
  protected zero(series: HistogramSeries): void {
    series.counts.fill(0)
    series.sum = 0
    series.count = 0
    series.shown = false
  }
  getForPromString(): MetricData {
    const values: MetricData['values'] = []
    const bucketName = `${this.name}_bucket`
    for (const s of this.shown) {
      let cumulative = 0
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.counts[i]!
        values.push({ labels: { le: this.buckets[i]! }, sharedLabels: s.labels, value: cumulative, metricName: bucketName, exemplar: null })
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucketName, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      )
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}

/**
 * The proxy's Prometheus metrics (prom-client, own registry so several proxies
 * can live in one process). Labels come from closed sets; the one open label,
 * `model`, is capped: past `maxModelLabels` distinct values new models fold
 * into `other`, so invented model names cannot grow the series count.
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client'
import { spanModel, type Span } from '../collector/schema.ts'
import { SeriesCounter, SeriesGauge, SeriesHistogram, type CounterSeries, type GaugeSeries, type HistogramSeries } from './metric-series.ts'

/** Seconds: tens of ms up to 10 min, LLM-sized. */
export const DURATION_BUCKETS_SECONDS = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 240, 600,
]
/** OpenTelemetry GenAI token buckets: 1, 4, 16, … ×4 … 67108864. */
export const TOKEN_BUCKETS = Array.from({ length: 14 }, (_, i) => 4 ** i)

const TOKEN_KINDS = [
  ['input', 'input_tokens'],
  ['output', 'output_tokens'],
  ['cached_input', 'cached_input_tokens'],
  ['cache_write', 'cache_write_tokens'],
  ['reasoning', 'reasoning_tokens'],
] as const

export const OTHER_MODEL = 'other'
const MAX_MODEL_LABEL_LENGTH = 96

export interface ProxyMetrics {
  readonly registry: Registry
  /** A call began (before its model is known). */
  callStarted(provider: string): void
  /** A call's exchange is over (its span may still be in the making). */
  callEnded(provider: string): void
  /** A call's span is final. */
  recordSpan(span: Span): void
  /** The sink dropped spans it could not keep. */
  spansDropped(reason: string, count: number): void
  /** A forward-mode CONNECT was intercepted, tunnelled, refused or failed. */
  connectHandled(result: 'intercepted' | 'tunnelled' | 'tls_failed' | 'refused' | 'error'): void
  /** Series count for the capped label; for tests and /healthz. */
  modelLabelCount(): number
  /** Totals for /healthz. */
  health(): { in_flight: number; spans_dropped: number }
}

export function createProxyMetrics(options: { maxModelLabels: number; defaultMetrics?: boolean }): ProxyMetrics {
  const registry = new Registry()
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tollgate_process_' })
  const registers = [registry]

  const requests = new SeriesCounter({
    name: 'tollgate_requests_total',
    help: 'Upstream LLM calls, by outcome status class (2xx, 4xx, 5xx, none = no response).',
    labelNames: ['provider', 'model', 'endpoint', 'status_class'],
    registry,
  })
  const errors = new SeriesCounter({
    name: 'tollgate_errors_total',
    help: 'Failed upstream LLM calls by error_type.',
    labelNames: ['provider', 'model', 'endpoint', 'error_type'],
    registry,
  })
  const duration = new SeriesHistogram({
    name: 'tollgate_request_duration_seconds',
    help: 'Whole call duration, request start to last byte.',
    labelNames: ['provider', 'model', 'endpoint'],
    buckets: DURATION_BUCKETS_SECONDS,
    registry,
  })
  const ttft = new SeriesHistogram({
    name: 'tollgate_time_to_first_token_seconds',
    help: 'Request start to the first chunk carrying content.',
    labelNames: ['provider', 'model', 'endpoint'],
    buckets: DURATION_BUCKETS_SECONDS,
    registry,
  })
  const tokens = new SeriesCounter({
    name: 'tollgate_tokens_total',
    help: 'Tokens by kind (input includes cached and cache_write; output includes reasoning).',
    labelNames: ['provider', 'model', 'kind'],
    registry,
  })
  const tokenUsage = new SeriesHistogram({
    name: 'gen_ai_client_token_usage',
    help: 'OpenTelemetry GenAI: tokens per call by gen_ai_token_type (input, output).',
    labelNames: ['gen_ai_provider_name', 'gen_ai_request_model', 'gen_ai_token_type'],
    buckets: TOKEN_BUCKETS,
    registry,
  })
  const cost = new SeriesCounter({
    name: 'tollgate_cost_usd_total',
    help: 'Spend in USD of priced calls.',
    labelNames: ['provider', 'model'],
    registry,
  })
  const costStatus = new SeriesCounter({
    name: 'tollgate_cost_status_total',
    help: 'Calls by cost_status (priced, unpriced, no_usage).',
    labelNames: ['provider', 'cost_status'],
    registry,
  })
  const inFlight = new SeriesGauge({
    name: 'tollgate_in_flight_requests',
    help: 'Upstream calls currently open.',
    labelNames: ['provider'],
    registry,
  })
  const bytes = new SeriesCounter({
    name: 'tollgate_upstream_bytes_total',
    help: 'Body bytes exchanged with upstreams (sent = request bodies, received = response bodies as sent on the wire).',
    labelNames: ['provider', 'direction'],
    registry,
  })
  const dropped = new Counter({
    name: 'tollgate_spans_dropped_total',
    help: 'Spans the proxy could not hand to the collector, by reason.',
    labelNames: ['reason'],
    registers,
  })

  const connects = new Counter({
    name: 'tollgate_connect_total',
    help: 'Forward-mode CONNECT requests by result (intercepted, tunnelled, tls_failed, refused, error).',
    labelNames: ['result'],
    registers,
  })

  let inFlightTotal = 0
  let droppedTotal = 0
  const knownModels = new Set<string>()
  function modelLabel(model: string | null): string {
    if (!model) return 'unknown'
    const label = model.length > MAX_MODEL_LABEL_LENGTH ? model.slice(0, MAX_MODEL_LABEL_LENGTH) : model
    if (knownModels.has(label)) return label
    if (knownModels.size >= options.maxModelLabels) return OTHER_MODEL
    knownModels.add(label)
    return label
  }

  // Each series is bound once per label set and then updated with plain
  // arithmetic (./metric-series.ts); the sets are closed (providers,
  // endpoints, capped models), so these maps are bounded.
  interface ProviderSeries {
    inFlight: GaugeSeries
    sent: CounterSeries
    received: CounterSeries
    costStatus: Map<string, CounterSeries>
  }
  interface ModelSeries {
    provider: ProviderSeries
    duration: HistogramSeries
    ttft: HistogramSeries
    tokenInput: HistogramSeries
    tokenOutput: HistogramSeries
    cost: CounterSeries
    tokens: Map<string, CounterSeries>
    requests: Map<string, CounterSeries>
    errors: Map<string, CounterSeries>
  }
  const providerSeries = new Map<string, ProviderSeries>()
  const modelSeries = new Map<string, ModelSeries>()

  function seriesOfProvider(provider: string): ProviderSeries {
    let series = providerSeries.get(provider)
    if (!series) {
      series = {
        inFlight: inFlight.series({ provider }),
        sent: bytes.series({ provider, direction: 'sent' }),
        received: bytes.series({ provider, direction: 'received' }),
        costStatus: new Map(),
      }
      providerSeries.set(provider, series)
    }
    return series
  }

  function seriesOfModel(provider: string, model: string, endpoint: string): ModelSeries {
    const key = `${provider}\u0000${model}\u0000${endpoint}`
    let series = modelSeries.get(key)
    if (!series) {
      const genAi = { gen_ai_provider_name: provider, gen_ai_request_model: model }
      series = {
        provider: seriesOfProvider(provider),
        duration: duration.series({ provider, model, endpoint }),
        ttft: ttft.series({ provider, model, endpoint }),
        tokenInput: tokenUsage.series({ ...genAi, gen_ai_token_type: 'input' }),
        tokenOutput: tokenUsage.series({ ...genAi, gen_ai_token_type: 'output' }),
        cost: cost.series({ provider, model }),
        tokens: new Map(TOKEN_KINDS.map(([kind]) => [kind, tokens.series({ provider, model, kind })])),
        requests: new Map(),
        errors: new Map(),
      }
      modelSeries.set(key, series)
    }
    return series
  }

  function child<T>(map: Map<string, T>, key: string, make: () => T): T {
    let value = map.get(key)
    if (value === undefined) {
      value = make()
      map.set(key, value)
    }
    return value
  }

  return {
    registry,
    callStarted(provider) {
      inFlightTotal++
      seriesOfProvider(provider).inFlight.inc()
    },
    callEnded(provider) {
      inFlightTotal--
      seriesOfProvider(provider).inFlight.dec()
    },
    recordSpan(span) {
      const { provider, endpoint } = span
      const model = modelLabel(spanModel(span))
      const series = seriesOfModel(provider, model, endpoint)
      const statusClass = span.status_code === 0 ? 'none' : `${Math.floor(span.status_code / 100)}xx`
      child(series.requests, statusClass, () => requests.series({ provider, model, endpoint, status_class: statusClass })).inc()
      if (span.error_type !== 'none') {
        const errorType = span.error_type
        child(series.errors, errorType, () => errors.series({ provider, model, endpoint, error_type: errorType })).inc()
      }
      series.duration.observe(span.duration_ms / 1000)
      if (span.ttft_ms !== null) series.ttft.observe(span.ttft_ms / 1000)
      for (const [kind, field] of TOKEN_KINDS) {
        const count = span[field]
        if (count) series.tokens.get(kind)?.inc(count)
      }
      if (span.input_tokens !== null) series.tokenInput.observe(span.input_tokens)
      if (span.output_tokens !== null) series.tokenOutput.observe(span.output_tokens)
      if (span.cost_usd !== null) series.cost.inc(span.cost_usd)
      const costStatusLabel = span.cost_status
      child(series.provider.costStatus, costStatusLabel, () => costStatus.series({ provider, cost_status: costStatusLabel })).inc()
      series.provider.sent.inc(span.request_bytes)
      series.provider.received.inc(span.response_bytes)
    },
    spansDropped(reason, count) {
      droppedTotal += count
      dropped.inc({ reason }, count)
    },
    connectHandled(result) {
      connects.inc({ result })
    },
    modelLabelCount: () => knownModels.size,
    health: () => ({ in_flight: inFlightTotal, spans_dropped: droppedTotal }),
  }
}

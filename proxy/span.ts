/**
 * Timings + request facts + tap result + price → one Span. Pure.
 */
import type { ErrorType, Span } from '../collector/schema.ts'
import type { CallCost } from '../lib/price.ts'
import type { TapResult } from './tap.ts'
import type { Attribution, EndpointKind, RequestInfo, SpanMode } from './types.ts'

/** How the exchange ended, as seen by forward.ts. */
export type CallOutcome =
  | { kind: 'completed' }
  | { kind: 'client_aborted' }
  | { kind: 'upstream_reset' }
  | { kind: 'timeout' }
  | { kind: 'proxy_error' }

export interface SpanInput {
  spanId: string
  mode: SpanMode
  provider: string
  endpoint: EndpointKind
  /** Model named in the URL (Gemini, Azure deployment), used when the body has none. */
  pathModel: string | null
  /** The URL asks for a stream (Gemini's `:streamGenerateContent`). */
  pathStream: boolean
  request: RequestInfo
  attribution: Attribution
  /** Wall-clock start, ms since epoch. */
  startedAtMs: number
  /** Monotonic clock readings (ms) of start, end and first content. */
  startMono: number
  endMono: number
  statusCode: number
  outcome: CallOutcome
  tap: TapResult | null
  cost: CallCost
  requestBytes: number
  clientAddr: string | null
}

export function buildSpan(input: SpanInput): Span {
  const { tap } = input
  const durationMs = round3(input.endMono - input.startMono)
  const usage = tap?.observation.usage
  const firstContentAt = tap?.firstContentAt ?? null
  return {
    span_id: input.spanId,
    started_at: new Date(input.startedAtMs).toISOString(),
    ended_at: new Date(input.startedAtMs + durationMs).toISOString(),
    mode: input.mode,
    provider: input.provider,
    endpoint: input.endpoint,
    request_model: input.request.model ?? input.pathModel,
    response_model: tap?.observation.responseModel ?? null,
    stream: input.request.stream || input.pathStream || (tap?.sse ?? false),
    status_code: input.statusCode,
    error_type: classifyError(input.outcome, input.statusCode),
    duration_ms: durationMs,
    ttft_ms: firstContentAt === null ? null : round3(firstContentAt - input.startMono),
    input_tokens: usage?.input_tokens ?? null,
    output_tokens: usage?.output_tokens ?? null,
    cached_input_tokens: usage?.cached_input_tokens ?? null,
    cache_write_tokens: usage?.cache_write_tokens ?? null,
    reasoning_tokens: usage?.reasoning_tokens ?? null,
    cost_usd: input.cost.costUsd,
    cost_status: input.cost.costStatus,
    finish_reason: tap?.observation.finishReason ?? null,
    user: input.attribution.user,
    session: input.attribution.session,
    app: input.attribution.app,
    properties: input.attribution.properties,
    request_bytes: input.requestBytes,
    response_bytes: tap?.responseBytes ?? 0,
    client_addr: input.clientAddr,
    request_hash: input.request.requestHash,
    prefix_hash: input.request.prefixHash,
    prefix_bytes: input.request.prefixBytes,
  }
}

/** A transport failure outranks the status line; otherwise the status decides. */
export function classifyError(outcome: CallOutcome, statusCode: number): ErrorType {
  if (outcome.kind !== 'completed') return outcome.kind
  if (statusCode === 429) return 'rate_limited'
  if (statusCode >= 500) return 'http_5xx'
  if (statusCode >= 400) return 'http_4xx'
  return 'none'
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000
}

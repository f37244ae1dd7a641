/**
 * The span: one upstream LLM call. This module owns its shape; the proxy
 * produces it, the collector stores it. Field names are the contract's
 * snake_case (../shared/DESIGN.md) from capture to ClickHouse.
 */

export const SPAN_MODES = ['reverse', 'forward'] as const
export type SpanMode = (typeof SPAN_MODES)[number]

export const ENDPOINT_KINDS = ['chat', 'responses', 'messages', 'embeddings', 'generate', 'other'] as const
export type EndpointKind = (typeof ENDPOINT_KINDS)[number]

export const ERROR_TYPES = [
  'none',
  'http_4xx',
  'http_5xx',
  'rate_limited',
  'timeout',
  'upstream_reset',
  'client_aborted',
  'proxy_error',
] as const
export type ErrorType = (typeof ERROR_TYPES)[number]

export const COST_STATUSES = ['priced', 'unpriced', 'no_usage'] as const
export type CostStatus = (typeof COST_STATUSES)[number]

export interface Span {
  span_id: string
  /** ISO-8601 UTC with milliseconds. */
  started_at: string
  ended_at: string
  mode: SpanMode
  provider: string
  endpoint: EndpointKind
  request_model: string | null
  response_model: string | null
  stream: boolean
  /** 0 when no response arrived. */
  status_code: number
  error_type: ErrorType
  duration_ms: number
  /** Request start → first chunk carrying content; null when none arrived. */
  ttft_ms: number | null
  /** Every input token, cached and cache-write included. */
  input_tokens: number | null
  /** Every output token, reasoning included. */
  output_tokens: number | null
  cached_input_tokens: number | null
  cache_write_tokens: number | null
  reasoning_tokens: number | null
  /** USD; null unless cost_status is 'priced'. */
  cost_usd: number | null
  cost_status: CostStatus
  finish_reason: string | null
  user: string | null
  session: string | null
  app: string | null
  properties: Record<string, string>
  request_bytes: number
  response_bytes: number
  client_addr: string | null
  /**
   * Beyond the contract, for caching advice without storing bodies: a hash of
   * the exact request body, and of its reusable prefix (model, system prompt,
   * tools, all messages but the last) with that prefix's size in bytes.
   */
  request_hash?: string | null
  prefix_hash?: string | null
  prefix_bytes?: number | null
  /** Captured bodies (TOLLGATE_CAPTURE_BODIES), capped and redacted; absent when not captured. */
  request_body?: string | null
  response_body?: string | null
}

/**
 * The one model a span is counted under, in rollups, filters and metrics: what
 * the provider says answered (a dated version, an Azure deployment's model),
 * else what was asked for.
 */
export function spanModel(span: Pick<Span, 'request_model' | 'response_model'>): string | null {
  return span.response_model ?? span.request_model
}

/**
 * Types at the boundaries of the proxy's pipeline:
 * request → route → forward → tap → span → sink.
 */
import type { EndpointKind, Span, SpanMode } from '../collector/schema.ts'
import type { UsageCounts } from '../lib/price.ts'

export type { EndpointKind, Span, SpanMode, UsageCounts }

/** Which usage-extraction code reads a provider's responses. */
export type ProviderFamily = 'openai' | 'anthropic' | 'gemini'


/** What a provider parser learned from a response body. */
export interface CallObservation {
  usage: UsageCounts
  /** True once the response carried a usage object at all. */
  sawUsage: boolean
  responseModel: string | null
  finishReason: string | null
}

/**
 * Reads one response's decoded body. Stateful, one per call; never throws on
 * unexpected shapes (a provider adding fields must not break capture).
 */
export interface ProviderParser {
  /**
   * One server-sent event, `data` already joined across lines.
   * @returns true when the event carries generated content (text, tool-call
   *   arguments, reasoning); the first such event sets TTFT.
   */
  onEvent(data: string, event: string | undefined): boolean
  /** One complete JSON document: a non-stream body, or one element of a streamed JSON array. */
  onBody(body: unknown): void
  result(): CallObservation
}

export interface ProviderAdapter {
  readonly family: ProviderFamily
  createParser(endpoint: EndpointKind): ProviderParser
}

/** What the proxy learned from the client's request body (read from a copy). */
export interface RequestInfo {
  model: string | null
  stream: boolean
  /** OpenAI chat: stream_options.include_usage; null when not applicable. */
  includeUsage: boolean | null
  /** sha256 (32 hex) of the exact body: identical requests share it. */
  requestHash: string | null
  /** sha256 (32 hex) of the reusable prefix: model, system, tools, all messages but the last. */
  prefixHash: string | null
  prefixBytes: number | null
}

/** Attribution read from x-tollgate-* headers (stripped before the upstream). */
export interface Attribution {
  user: string | null
  session: string | null
  app: string | null
  properties: Record<string, string>
}

/**
 * Usage extraction for Gemini's generateContent / streamGenerateContent
 * (Gemini API and Vertex AI share the response shape).
 *
 * Usage docs:
 * - UsageMetadata: https://ai.google.dev/api/generate-content#UsageMetadata
 * - Streaming (alt=sse or JSON array): https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
 * - Thinking tokens: https://ai.google.dev/gemini-api/docs/thinking#pricing
 * - Embeddings (no usage): https://ai.google.dev/api/embeddings
 */
import type { CallObservation, EndpointKind, ProviderAdapter, ProviderParser, UsageCounts } from '../types.ts'
import { at, hasContent, isObject, list, num, parseJson, str, type JsonObject } from './json.ts'

function readUsage(meta: JsonObject): UsageCounts {
  const candidates = num(meta.candidatesTokenCount)
  const thoughts = num(meta.thoughtsTokenCount)
  return {
    // promptTokenCount already includes the cached part.
    input_tokens: num(meta.promptTokenCount),
    // Gemini bills thoughts as output but counts them outside candidatesTokenCount.
    output_tokens: candidates === null && thoughts === null ? null : (candidates ?? 0) + (thoughts ?? 0),
    cached_input_tokens: num(meta.cachedContentTokenCount),
    cache_write_tokens: null,
    reasoning_tokens: thoughts,
  }
}

function candidatesCarryContent(response: JsonObject): boolean {
  return list(response.candidates).some((candidate) =>
    list(at(candidate, 'content', 'parts')).some(
      (part) => hasContent(at(part, 'text')) || isObject(at(part, 'functionCall')) || isObject(at(part, 'inlineData')),
    ),
  )
}

class GeminiParser implements ProviderParser {
  private usage: UsageCounts | null = null
  private responseModel: string | null = null
  private finishReason: string | null = null

  private readonly endpoint: EndpointKind

  constructor(endpoint: EndpointKind) {
    this.endpoint = endpoint
  }

  onEvent(data: string): boolean {
    const response = parseJson(data)
    if (!isObject(response)) return false
    this.absorb(response)
    return candidatesCarryContent(response)
  }

  onBody(body: unknown): void {
    // A streamed JSON array arrives element by element, but a buffered one may come whole.
    if (Array.isArray(body)) body.forEach((element) => this.onBody(element))
    else if (isObject(body)) this.absorb(body)
  }

  result(): CallObservation {
    const usage: UsageCounts = this.usage === null ? noUsage() : { ...this.usage }
    // Embeddings generate nothing: zero output is known, not missing.
    if (this.endpoint === 'embeddings' && this.usage !== null) usage.output_tokens ??= 0
    return {
      usage,
      sawUsage: this.usage !== null,
      responseModel: this.responseModel,
      finishReason: this.finishReason,
    }
  }

  /** usageMetadata is cumulative across a stream, so the latest one wins. */
  private absorb(response: JsonObject): void {
    const model = str(response.modelVersion)
    if (model !== null) this.responseModel = model
    if (isObject(response.usageMetadata)) this.usage = readUsage(response.usageMetadata)
    // A blocked prompt has no candidates; its block reason is the only "why it stopped".
    const finish =
      str(at(list(response.candidates)[0], 'finishReason')) ?? str(at(response, 'promptFeedback', 'blockReason'))
    if (finish !== null) this.finishReason = finish
  }
}

function noUsage(): UsageCounts {
  return {
    input_tokens: null,
    output_tokens: null,
    cached_input_tokens: null,
    cache_write_tokens: null,
    reasoning_tokens: null,
  }
}

export const geminiAdapter: ProviderAdapter = {
  family: 'gemini',
  createParser: (endpoint) => new GeminiParser(endpoint),
}

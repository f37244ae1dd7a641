/**
 * Usage extraction for Anthropic's Messages API.
 *
 * Usage docs:
 * - Messages response usage: https://docs.anthropic.com/en/api/messages
 * - Streaming events: https://docs.anthropic.com/en/docs/build-with-claude/streaming
 * - Prompt caching fields: https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance
 */
import type { CallObservation, ProviderAdapter, ProviderParser } from '../types.ts'
import { at, isObject, num, parseJson, str } from './json.ts'

/** Deltas that are model output; signature_delta and citations_delta only annotate it. */
const CONTENT_DELTAS = new Set(['text_delta', 'input_json_delta', 'thinking_delta'])

class AnthropicParser implements ProviderParser {
  // Anthropic's input_tokens is only the uncached part; the contract's input is the sum.
  private uncachedInput: number | null = null
  private cacheWrite: number | null = null
  private cacheRead: number | null = null
  private output: number | null = null
  private thinking: number | null = null
  private sawUsage = false
  private responseModel: string | null = null
  private finishReason: string | null = null

  onEvent(data: string, event: string | undefined): boolean {
    const payload = parseJson(data)
    if (!isObject(payload)) return false
    switch (str(payload.type) ?? event) {
      case 'message_start':
        this.onBody(payload.message)
        return false
      case 'message_delta': {
        const stop = str(at(payload, 'delta', 'stop_reason'))
        if (stop !== null) this.finishReason = stop
        this.readUsage(payload.usage)
        return false
      }
      case 'content_block_delta': {
        const type = str(at(payload, 'delta', 'type'))
        return type !== null && CONTENT_DELTAS.has(type)
      }
      default:
        // ping, content_block_start/stop, message_stop, error: nothing to count.
        return false
    }
  }

  /** A non-stream Message, or message_start's message. count_tokens bodies carry no usage. */
  onBody(body: unknown): void {
    if (!isObject(body)) return
    const model = str(body.model)
    if (model !== null) this.responseModel = model
    const stop = str(body.stop_reason)
    if (stop !== null) this.finishReason = stop
    this.readUsage(body.usage)
  }

  result(): CallObservation {
    return {
      usage: {
        input_tokens:
          this.uncachedInput === null ? null : this.uncachedInput + (this.cacheWrite ?? 0) + (this.cacheRead ?? 0),
        output_tokens: this.output,
        cached_input_tokens: this.cacheRead,
        cache_write_tokens: this.cacheWrite,
        reasoning_tokens: this.thinking,
      },
      sawUsage: this.sawUsage,
      responseModel: this.responseModel,
      finishReason: this.finishReason,
    }
  }

  /**
   * message_delta counts are cumulative, so a present field replaces the
   * message_start value and an absent (or null) one keeps it.
   */
  private readUsage(usage: unknown): void {
    if (!isObject(usage)) return
    this.sawUsage = true
    this.uncachedInput = num(usage.input_tokens) ?? this.uncachedInput
    this.cacheWrite = num(usage.cache_creation_input_tokens) ?? this.cacheWrite
    this.cacheRead = num(usage.cache_read_input_tokens) ?? this.cacheRead
    this.output = num(usage.output_tokens) ?? this.output
    // Newer API versions break thinking out of output_tokens (which still includes it).
    this.thinking = num(at(usage, 'output_tokens_details', 'thinking_tokens')) ?? this.thinking
  }
}

export const anthropicAdapter: ProviderAdapter = {
  family: 'anthropic',
  createParser: () => new AnthropicParser(),
}

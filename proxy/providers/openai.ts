/**
 * Usage extraction for OpenAI and every OpenAI-compatible API (Groq, Mistral,
 * DeepSeek, OpenRouter, Together, Fireworks, xAI, Azure OpenAI).
 *
 * Usage docs:
 * - Chat completions: https://platform.openai.com/docs/api-reference/chat/object
 * - Chat streaming (stream_options.include_usage): https://platform.openai.com/docs/api-reference/chat-streaming
 * - Responses: https://platform.openai.com/docs/api-reference/responses/object
 * - Responses streaming: https://platform.openai.com/docs/api-reference/responses-streaming
 * - Embeddings: https://platform.openai.com/docs/api-reference/embeddings/object
 * - DeepSeek prompt_cache_hit_tokens: https://api-docs.deepseek.com/guides/kv_cache
 * - Groq x_groq.usage: https://console.groq.com/docs/api-reference#chat-create
 * - OpenRouter usage: https://openrouter.ai/docs/use-cases/usage-accounting
 * - xAI reasoning tokens: https://docs.x.ai/docs/key-information/consumption-and-rate-limits
 */
import type { CallObservation, EndpointKind, ProviderAdapter, ProviderParser, UsageCounts } from '../types.ts'
import { at, hasContent, isObject, list, num, parseJson, str, type JsonObject } from './json.ts'

/** Responses stream events whose delta is model output (the first one sets TTFT). */
const RESPONSES_CONTENT_EVENTS = new Set([
  'response.output_text.delta',
  'response.refusal.delta',
  'response.function_call_arguments.delta',
  'response.custom_tool_call_input.delta',
  'response.reasoning_summary_text.delta',
  'response.reasoning_text.delta',
  'response.audio.delta',
  'response.audio.transcript.delta',
])

/** A response in any other status (queued, in_progress) has not finished yet. */
const TERMINAL_STATUSES = new Set(['completed', 'incomplete', 'failed', 'cancelled'])

function noUsage(): UsageCounts {
  return {
    input_tokens: null,
    output_tokens: null,
    cached_input_tokens: null,
    cache_write_tokens: null,
    reasoning_tokens: null,
  }
}

function readUsage(usage: JsonObject): UsageCounts {
  // Chat, legacy completions and embeddings say prompt/completion; Responses says input/output.
  const input = num(usage.prompt_tokens) ?? num(usage.input_tokens)
  const completion = num(usage.completion_tokens) ?? num(usage.output_tokens)
  const reasoning =
    num(at(usage, 'completion_tokens_details', 'reasoning_tokens')) ??
    num(at(usage, 'output_tokens_details', 'reasoning_tokens'))
  return {
    input_tokens: input,
    output_tokens: outputTokens(input, completion, reasoning, num(usage.total_tokens)),
    cached_input_tokens:
      num(at(usage, 'prompt_tokens_details', 'cached_tokens')) ??
      num(usage.prompt_cache_hit_tokens) ??
      num(at(usage, 'input_tokens_details', 'cached_tokens')),
    // OpenAI never reports cache writes; OpenRouter does when routing to providers that bill them.
    cache_write_tokens: num(at(usage, 'prompt_tokens_details', 'cache_write_tokens')),
    reasoning_tokens: reasoning,
  }
}

/**
 * OpenAI counts reasoning inside completion_tokens; xAI counts it beside them
 * (total = prompt + completion + reasoning). total_tokens tells which one this is.
 */
function outputTokens(
  input: number | null,
  completion: number | null,
  reasoning: number | null,
  total: number | null,
): number | null {
  if (completion === null || input === null || reasoning === null || reasoning === 0) return completion
  return total === input + completion + reasoning ? completion + reasoning : completion
}

function responseFinish(response: JsonObject): string | null {
  const status = str(response.status)
  if (status === null || !TERMINAL_STATUSES.has(status)) return null
  if (status === 'incomplete') return str(at(response, 'incomplete_details', 'reason')) ?? status
  return status
}

function choiceFinish(choices: unknown): string | null {
  for (const choice of list(choices)) {
    const reason = str(at(choice, 'finish_reason'))
    if (reason !== null) return reason
  }
  return null
}

function choicesCarryContent(choices: unknown): boolean {
  return list(choices).some((choice) => {
    const delta = at(choice, 'delta')
    if (!isObject(delta)) return hasContent(at(choice, 'text'))
    return (
      hasContent(delta.content) ||
      hasContent(delta.refusal) ||
      hasContent(delta.reasoning_content) ||
      hasContent(delta.reasoning) ||
      hasContent(delta.tool_calls) ||
      isObject(delta.function_call)
    )
  })
}

function responsesEventCarriesContent(type: string | null, event: JsonObject): boolean {
  return type !== null && RESPONSES_CONTENT_EVENTS.has(type) && hasContent(event.delta)
}

class OpenAIParser implements ProviderParser {
  private usage: UsageCounts | null = null
  private responseModel: string | null = null
  private finishReason: string | null = null
  private embeddings: boolean

  constructor(endpoint: EndpointKind) {
    this.embeddings = endpoint === 'embeddings'
  }

  onEvent(data: string, event: string | undefined): boolean {
    const chunk = parseJson(data)
    if (!isObject(chunk)) return false // includes "[DONE]"
    this.absorb(chunk)
    if (isObject(chunk.response)) this.absorb(chunk.response)
    const type = str(chunk.type) ?? str(event)
    return responsesEventCarriesContent(type, chunk) || choicesCarryContent(chunk.choices)
  }

  onBody(body: unknown): void {
    if (isObject(body)) this.absorb(body)
  }

  result(): CallObservation {
    const usage: UsageCounts = this.usage === null ? noUsage() : { ...this.usage }
    // Embeddings generate nothing: zero output is known, not missing.
    if (this.embeddings && this.usage !== null) usage.output_tokens ??= 0
    return {
      usage,
      sawUsage: this.usage !== null,
      responseModel: this.responseModel,
      finishReason: this.finishReason,
    }
  }

  /** One chat chunk, completion body, embeddings list or Responses object. */
  private absorb(obj: JsonObject): void {
    const model = str(obj.model)
    if (model !== null) this.responseModel = model
    // Earlier chunks may carry usage and later ones not: only a usage object replaces it.
    const usage = isObject(obj.usage) ? obj.usage : at(obj, 'x_groq', 'usage')
    if (isObject(usage)) this.usage = readUsage(usage)
    const finish = obj.object === 'response' ? responseFinish(obj) : choiceFinish(obj.choices)
    if (finish !== null) this.finishReason = finish
    if (obj.object === 'list' && Array.isArray(obj.data)) this.embeddings = true
  }
}

export const openaiAdapter: ProviderAdapter = {
  family: 'openai',
  createParser: (endpoint) => new OpenAIParser(endpoint),
}

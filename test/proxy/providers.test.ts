import { describe, expect, it } from 'vitest'
import { anthropicAdapter } from '../../proxy/providers/anthropic.ts'
import { geminiAdapter } from '../../proxy/providers/gemini.ts'
import { adapterFor } from '../../proxy/providers/index.ts'
import { openaiAdapter } from '../../proxy/providers/openai.ts'
import type { EndpointKind, ProviderAdapter, ProviderParser, UsageCounts } from '../../proxy/types.ts'

interface SseEvent {
  event?: string
  /** Serialised with JSON.stringify unless already a string (raw data line). */
  data: unknown
}

/** Feeds events as the tap would; returns which ones carried content. */
function feed(parser: ProviderParser, events: readonly SseEvent[]): boolean[] {
  return events.map(({ event, data }) =>
    parser.onEvent(typeof data === 'string' ? data : JSON.stringify(data), event),
  )
}

const NO_USAGE: UsageCounts = {
  input_tokens: null,
  output_tokens: null,
  cached_input_tokens: null,
  cache_write_tokens: null,
  reasoning_tokens: null,
}

describe('openai', () => {
  const chunk = (extra: Record<string, unknown>) => ({
    id: 'chatcmpl-AyPNinnUqUDYo9SAdA52NobMflmj2',
    object: 'chat.completion.chunk',
    created: 1738960610,
    model: 'gpt-4o-mini-2024-07-18',
    service_tier: 'default',
    system_fingerprint: 'fp_06737a9306',
    ...extra,
  })
  const deltaChoice = (delta: Record<string, unknown>, finish_reason: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason,
  })

  it('reads a chat completion body with cached and reasoning details', () => {
    const parser = openaiAdapter.createParser('chat')
    parser.onBody({
      id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
      object: 'chat.completion',
      created: 1741569952,
      model: 'o3-mini-2025-01-31',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello! How can I assist you today?', refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: 2006,
        completion_tokens: 300,
        total_tokens: 2306,
        prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
        completion_tokens_details: {
          reasoning_tokens: 256,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        },
      },
      service_tier: 'default',
    })
    expect(parser.result()).toEqual({
      usage: {
        input_tokens: 2006,
        output_tokens: 300,
        cached_input_tokens: 1920,
        cache_write_tokens: null,
        reasoning_tokens: 256,
      },
      sawUsage: true,
      responseModel: 'o3-mini-2025-01-31',
      finishReason: 'stop',
    })
  })

  it('reads the include_usage final chunk of a chat stream', () => {
    const parser = openaiAdapter.createParser('chat')
    const content = feed(parser, [
      { data: chunk({ choices: [deltaChoice({ role: 'assistant', content: '', refusal: null })], usage: null }) },
      { data: chunk({ choices: [deltaChoice({ content: 'Hello' })], usage: null }) },
      { data: chunk({ choices: [deltaChoice({ content: '!' })], usage: null }) },
      { data: chunk({ choices: [deltaChoice({}, 'stop')], usage: null }) },
      {
        data: chunk({
          choices: [],
          usage: {
            prompt_tokens: 9,
            completion_tokens: 2,
            total_tokens: 11,
            prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
            completion_tokens_details: {
              reasoning_tokens: 0,
              audio_tokens: 0,
              accepted_prediction_tokens: 0,
              rejected_prediction_tokens: 0,
            },
          },
        }),
      },
      { data: '[DONE]' },
    ])
    expect(content).toEqual([false, true, true, false, false, false])
    expect(parser.result()).toEqual({
      usage: { input_tokens: 9, output_tokens: 2, cached_input_tokens: 0, cache_write_tokens: null, reasoning_tokens: 0 },
      sawUsage: true,
      responseModel: 'gpt-4o-mini-2024-07-18',
      finishReason: 'stop',
    })
  })

  it('leaves counts null when the stream had no usage (include_usage unset)', () => {
    const parser = openaiAdapter.createParser('chat')
    feed(parser, [
      { data: chunk({ choices: [deltaChoice({ role: 'assistant', content: '' })] }) },
      { data: chunk({ choices: [deltaChoice({ content: 'Hi' })] }) },
      { data: chunk({ choices: [deltaChoice({}, 'length')] }) },
      { data: '[DONE]' },
    ])
    expect(parser.result()).toEqual({
      usage: NO_USAGE,
      sawUsage: false,
      responseModel: 'gpt-4o-mini-2024-07-18',
      finishReason: 'length',
    })
  })

  it('counts tool calls, refusals and reasoning deltas as content', () => {
    const parser = openaiAdapter.createParser('chat')
    const content = feed(parser, [
      {
        data: chunk({
          choices: [
            deltaChoice({
              role: 'assistant',
              content: null,
              tool_calls: [
                { index: 0, id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', type: 'function', function: { name: 'get_weather', arguments: '' } },
              ],
              refusal: null,
            }),
          ],
        }),
      },
      { data: chunk({ choices: [deltaChoice({ refusal: "I'm sorry" })] }) },
      { data: chunk({ choices: [deltaChoice({ role: 'assistant', content: '', reasoning_content: 'Okay, the user' })] }) },
      { data: chunk({ choices: [deltaChoice({ content: null, reasoning: 'Let me think' })] }) },
      { data: chunk({ choices: [deltaChoice({ function_call: { arguments: '{"' } })] }) },
      { data: chunk({ choices: [deltaChoice({ tool_calls: [] })] }) },
    ])
    expect(content).toEqual([true, true, true, true, true, false])
  })

  it('keeps the model from a later chunk when Azure opens with an empty prompt-filter chunk', () => {
    const parser = openaiAdapter.createParser('chat')
    feed(parser, [
      {
        data: {
          choices: [],
          created: 0,
          id: '',
          model: '',
          object: '',
          prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
        },
      },
      { data: chunk({ model: 'gpt-4o-2024-11-20', choices: [deltaChoice({ content: 'Hi' })] }) },
    ])
    expect(parser.result().responseModel).toBe('gpt-4o-2024-11-20')
  })

  it('reads Groq usage from x_groq on the final chunk', () => {
    const parser = openaiAdapter.createParser('chat')
    const groq = (extra: Record<string, unknown>) => ({
      id: 'chatcmpl-4d1b3bd5-1a1f-4c3b-9d1e-0f6d2d1f1c11',
      object: 'chat.completion.chunk',
      created: 1733331467,
      model: 'llama-3.3-70b-versatile',
      system_fingerprint: 'fp_4196e754db',
      ...extra,
    })
    feed(parser, [
      { data: groq({ choices: [deltaChoice({ role: 'assistant', content: '' })], x_groq: { id: 'req_01jee7wd9tf7drx8y3sr7zd8bd' } }) },
      { data: groq({ choices: [deltaChoice({ content: 'Fast' })] }) },
      {
        data: groq({
          choices: [deltaChoice({}, 'stop')],
          x_groq: {
            id: 'req_01jee7wd9tf7drx8y3sr7zd8bd',
            usage: {
              queue_time: 0.019882,
              prompt_tokens: 40,
              prompt_time: 0.002235,
              completion_tokens: 12,
              completion_time: 0.043636,
              total_tokens: 52,
              total_time: 0.045871,
            },
          },
        }),
      },
      { data: '[DONE]' },
    ])
    expect(parser.result()).toEqual({
      usage: { input_tokens: 40, output_tokens: 12, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null },
      sawUsage: true,
      responseModel: 'llama-3.3-70b-versatile',
      finishReason: 'stop',
    })
  })

  it('reads usage from the last chunk that still has choices (OpenRouter)', () => {
    const parser = openaiAdapter.createParser('chat')
    feed(parser, [
      { data: { id: 'gen-1745', provider: 'Anthropic', model: 'anthropic/claude-3.7-sonnet', object: 'chat.completion.chunk', created: 1745, choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, finish_reason: null, native_finish_reason: null }] } },
      {
        data: {
          id: 'gen-1745',
          provider: 'Anthropic',
          model: 'anthropic/claude-3.7-sonnet',
          object: 'chat.completion.chunk',
          created: 1745,
          choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: 'stop', native_finish_reason: 'end_turn' }],
          usage: {
            prompt_tokens: 194,
            completion_tokens: 2,
            total_tokens: 196,
            cost: 0.95,
            prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 100, audio_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: 0 },
          },
        },
      },
      { data: '[DONE]' },
    ])
    expect(parser.result()).toEqual({
      usage: { input_tokens: 194, output_tokens: 2, cached_input_tokens: 0, cache_write_tokens: 100, reasoning_tokens: 0 },
      sawUsage: true,
      responseModel: 'anthropic/claude-3.7-sonnet',
      finishReason: 'stop',
    })
  })

  it('keeps earlier usage when a later chunk has none', () => {
    const parser = openaiAdapter.createParser('chat')
    feed(parser, [
      { data: chunk({ choices: [deltaChoice({}, 'stop')], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }) },
      { data: chunk({ choices: [], usage: null }) },
    ])
    expect(parser.result().usage.input_tokens).toBe(5)
  })

  it('reads DeepSeek prompt_cache_hit_tokens when cached_tokens is absent', () => {
    const parser = openaiAdapter.createParser('chat')
    parser.onBody({
      id: '930c60df-bf64-41c9-a88e-3ec75f81e00e',
      object: 'chat.completion',
      created: 1737510000,
      model: 'deepseek-reasoner',
      choices: [{ index: 0, message: { role: 'assistant', content: '42', reasoning_content: '...' }, logprobs: null, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 1536,
        completion_tokens: 412,
        total_tokens: 1948,
        completion_tokens_details: { reasoning_tokens: 380 },
        prompt_cache_hit_tokens: 1024,
        prompt_cache_miss_tokens: 512,
      },
      system_fingerprint: 'fp_7e73fd9a08',
    })
    expect(parser.result().usage).toEqual({
      input_tokens: 1536,
      output_tokens: 412,
      cached_input_tokens: 1024,
      cache_write_tokens: null,
      reasoning_tokens: 380,
    })
  })

  it('adds xAI reasoning tokens, which total_tokens shows are outside completion_tokens', () => {
    const parser = openaiAdapter.createParser('chat')
    parser.onBody({
      id: 'a3d1008e-4544-40d4-d075-11527e794e4a',
      object: 'chat.completion',
      created: 1752854522,
      model: 'grok-3-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: '101 multiplied by 3 equals 303.' }, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 32,
        completion_tokens: 9,
        total_tokens: 135,
        prompt_tokens_details: { text_tokens: 32, audio_tokens: 0, image_tokens: 0, cached_tokens: 6 },
        completion_tokens_details: { reasoning_tokens: 94, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        num_sources_used: 0,
      },
      system_fingerprint: 'fp_3a7881249c',
    })
    expect(parser.result().usage).toEqual({
      input_tokens: 32,
      output_tokens: 103,
      cached_input_tokens: 6,
      cache_write_tokens: null,
      reasoning_tokens: 94,
    })
  })

  it('treats legacy completion text as content', () => {
    const parser = openaiAdapter.createParser('other')
    const legacy = (text: string, finish_reason: string | null) => ({
      id: 'cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe',
      object: 'text_completion',
      created: 1690759702,
      choices: [{ text, index: 0, logprobs: null, finish_reason }],
      model: 'gpt-3.5-turbo-instruct',
    })
    expect(feed(parser, [{ data: legacy('This', null) }, { data: legacy('', 'length') }])).toEqual([true, false])
    expect(parser.result().finishReason).toBe('length')
  })

  const response = (extra: Record<string, unknown>) => ({
    id: 'resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41',
    object: 'response',
    created_at: 1741476777,
    model: 'gpt-4o-2024-08-06',
    output: [],
    usage: null,
    ...extra,
  })

  it('reads a Responses API body', () => {
    const parser = openaiAdapter.createParser('responses')
    parser.onBody(
      response({
        status: 'completed',
        incomplete_details: null,
        usage: {
          input_tokens: 328,
          input_tokens_details: { cached_tokens: 128 },
          output_tokens: 52,
          output_tokens_details: { reasoning_tokens: 24 },
          total_tokens: 380,
        },
      }),
    )
    expect(parser.result()).toEqual({
      usage: { input_tokens: 328, output_tokens: 52, cached_input_tokens: 128, cache_write_tokens: null, reasoning_tokens: 24 },
      sawUsage: true,
      responseModel: 'gpt-4o-2024-08-06',
      finishReason: 'completed',
    })
  })

  it('uses incomplete_details.reason for an incomplete response', () => {
    const parser = openaiAdapter.createParser('responses')
    parser.onBody(response({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } }))
    expect(parser.result().finishReason).toBe('max_output_tokens')
  })

  it('reads a Responses API stream', () => {
    const parser = openaiAdapter.createParser('responses')
    const ev = (type: string, data: Record<string, unknown>): SseEvent => ({ event: type, data: { type, ...data } })
    const content = feed(parser, [
      ev('response.created', { sequence_number: 0, response: response({ status: 'in_progress' }) }),
      ev('response.in_progress', { sequence_number: 1, response: response({ status: 'in_progress' }) }),
      ev('response.output_item.added', {
        sequence_number: 2,
        output_index: 0,
        item: { id: 'rs_1', type: 'reasoning', summary: [] },
      }),
      ev('response.reasoning_summary_text.delta', { sequence_number: 3, item_id: 'rs_1', output_index: 0, summary_index: 0, delta: '**Thinking**' }),
      ev('response.output_text.delta', { sequence_number: 4, item_id: 'msg_1', output_index: 1, content_index: 0, delta: 'Hi', logprobs: [] }),
      ev('response.function_call_arguments.delta', { sequence_number: 5, item_id: 'fc_1', output_index: 2, delta: '{"city"' }),
      ev('response.refusal.delta', { sequence_number: 6, item_id: 'msg_1', output_index: 1, content_index: 0, delta: 'No' }),
      ev('response.output_text.done', { sequence_number: 7, item_id: 'msg_1', output_index: 1, content_index: 0, text: 'Hi' }),
      ev('response.completed', {
        sequence_number: 8,
        response: response({
          status: 'completed',
          usage: {
            input_tokens: 37,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: 11,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: 48,
          },
        }),
      }),
    ])
    expect(content).toEqual([false, false, false, true, true, true, true, false, false])
    expect(parser.result()).toEqual({
      usage: { input_tokens: 37, output_tokens: 11, cached_input_tokens: 0, cache_write_tokens: null, reasoning_tokens: 0 },
      sawUsage: true,
      responseModel: 'gpt-4o-2024-08-06',
      finishReason: 'completed',
    })
  })

  it('uses the SSE event name when data has no type', () => {
    const parser = openaiAdapter.createParser('responses')
    expect(parser.onEvent(JSON.stringify({ delta: 'Hi' }), 'response.output_text.delta')).toBe(true)
  })

  it('leaves finishReason null when a Responses stream is cut before it ends', () => {
    const parser = openaiAdapter.createParser('responses')
    feed(parser, [{ data: { type: 'response.created', response: response({ status: 'in_progress' }) } }])
    expect(parser.result()).toMatchObject({ sawUsage: false, finishReason: null, responseModel: 'gpt-4o-2024-08-06' })
  })

  it('reports failed and incomplete streams from their terminal event', () => {
    const failed = openaiAdapter.createParser('responses')
    feed(failed, [{ data: { type: 'response.failed', response: response({ status: 'failed', error: { code: 'server_error', message: 'x' } }) } }])
    expect(failed.result().finishReason).toBe('failed')

    const incomplete = openaiAdapter.createParser('responses')
    feed(incomplete, [
      {
        data: {
          type: 'response.incomplete',
          response: response({ status: 'incomplete', incomplete_details: { reason: 'content_filter' } }),
        },
      },
    ])
    expect(incomplete.result().finishReason).toBe('content_filter')
  })

  it('reads embeddings usage with a known zero output', () => {
    const parser = openaiAdapter.createParser('embeddings')
    parser.onBody({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.0023064255, -0.009327292, -0.0028842222] }],
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 8, total_tokens: 8 },
    })
    expect(parser.result()).toEqual({
      usage: { input_tokens: 8, output_tokens: 0, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null },
      sawUsage: true,
      responseModel: 'text-embedding-3-small',
      finishReason: null,
    })
  })

  it('recognises an embeddings list even when the endpoint was not classified', () => {
    const parser = openaiAdapter.createParser('other')
    parser.onBody({ object: 'list', data: [], model: 'mistral-embed', usage: { prompt_tokens: 4, total_tokens: 4 } })
    expect(parser.result().usage.output_tokens).toBe(0)
  })

  it('leaves embeddings output null when no usage came back', () => {
    const parser = openaiAdapter.createParser('embeddings')
    parser.onBody({ error: { message: 'bad', type: 'invalid_request_error', code: null } })
    expect(parser.result()).toEqual({ usage: NO_USAGE, sawUsage: false, responseModel: null, finishReason: null })
  })
})

describe('anthropic', () => {
  it('sums uncached, cache-write and cache-read input for a non-stream message', () => {
    const parser = anthropicAdapter.createParser('messages')
    parser.onBody({
      id: 'msg_01Aq9w938a90dw8q',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-20250514',
      content: [{ type: 'text', text: 'The key themes are...' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: 21,
        cache_creation_input_tokens: 188086,
        cache_read_input_tokens: 1200,
        cache_creation: { ephemeral_5m_input_tokens: 188086, ephemeral_1h_input_tokens: 0 },
        output_tokens: 393,
        service_tier: 'standard',
      },
    })
    expect(parser.result()).toEqual({
      usage: {
        input_tokens: 21 + 188086 + 1200,
        output_tokens: 393,
        cached_input_tokens: 1200,
        cache_write_tokens: 188086,
        reasoning_tokens: null,
      },
      sawUsage: true,
      responseModel: 'claude-sonnet-4-20250514',
      finishReason: 'end_turn',
    })
  })

  it('treats missing cache fields as no caching in the input sum', () => {
    const parser = anthropicAdapter.createParser('messages')
    parser.onBody({ type: 'message', model: 'claude-3-haiku-20240307', stop_reason: 'max_tokens', usage: { input_tokens: 12, output_tokens: 6 } })
    expect(parser.result().usage).toEqual({
      input_tokens: 12,
      output_tokens: 6,
      cached_input_tokens: null,
      cache_write_tokens: null,
      reasoning_tokens: null,
    })
  })

  const stream: readonly SseEvent[] = [
    {
      event: 'message_start',
      data: {
        type: 'message_start',
        message: {
          id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
          type: 'message',
          role: 'assistant',
          content: [],
          model: 'claude-opus-4-1-20250805',
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 472, cache_creation_input_tokens: 0, cache_read_input_tokens: 2048, output_tokens: 2 },
        },
      },
    },
    { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
    { event: 'ping', data: { type: 'ping' } },
    { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } } },
    { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '!' } } },
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    {
      event: 'message_delta',
      data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 15 } },
    },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ]

  it('reads a stream: message_start input, cumulative message_delta output', () => {
    const parser = anthropicAdapter.createParser('messages')
    expect(feed(parser, stream)).toEqual([false, false, false, true, true, false, false, false])
    expect(parser.result()).toEqual({
      usage: {
        input_tokens: 472 + 2048,
        output_tokens: 15,
        cached_input_tokens: 2048,
        cache_write_tokens: 0,
        reasoning_tokens: null,
      },
      sawUsage: true,
      responseModel: 'claude-opus-4-1-20250805',
      finishReason: 'end_turn',
    })
  })

  it('lets message_delta input and cache counts replace message_start ones', () => {
    const parser = anthropicAdapter.createParser('messages')
    feed(parser, [
      ...stream.slice(0, 6),
      {
        event: 'message_delta',
        data: {
          type: 'message_delta',
          delta: { stop_reason: 'tool_use', stop_sequence: null },
          usage: {
            input_tokens: 10682,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 2048,
            output_tokens: 510,
            server_tool_use: { web_search_requests: 1 },
          },
        },
      },
    ])
    expect(parser.result().usage).toEqual({
      input_tokens: 10682 + 2048,
      output_tokens: 510,
      cached_input_tokens: 2048,
      cache_write_tokens: 0,
      reasoning_tokens: null,
    })
    expect(parser.result().finishReason).toBe('tool_use')
  })

  it('counts thinking and tool-input deltas as content but not signatures', () => {
    const parser = anthropicAdapter.createParser('messages')
    const delta = (d: Record<string, unknown>): SseEvent => ({
      event: 'content_block_delta',
      data: { type: 'content_block_delta', index: 0, delta: d },
    })
    const content = feed(parser, [
      { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } } },
      delta({ type: 'thinking_delta', thinking: 'Let me solve this step by step' }),
      delta({ type: 'signature_delta', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds' }),
      { event: 'content_block_start', data: { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', input: {} } } },
      delta({ type: 'input_json_delta', partial_json: '{"location": "San Fra' }),
    ])
    expect(content).toEqual([false, true, false, false, true])
  })

  it('reads thinking_tokens when the API reports them', () => {
    const parser = anthropicAdapter.createParser('messages')
    parser.onBody({
      type: 'message',
      model: 'claude-sonnet-4-5',
      stop_reason: 'end_turn',
      usage: { input_tokens: 50, output_tokens: 900, output_tokens_details: { thinking_tokens: 700 } },
    })
    expect(parser.result().usage.reasoning_tokens).toBe(700)
  })

  it('survives an error event mid-stream', () => {
    const parser = anthropicAdapter.createParser('messages')
    feed(parser, stream.slice(0, 4))
    const content = feed(parser, [
      { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } },
    ])
    expect(content).toEqual([false])
    expect(parser.result()).toMatchObject({ sawUsage: true, finishReason: null, usage: { input_tokens: 2520, output_tokens: 2 } })
  })

  it('handles a count_tokens body without usage', () => {
    const parser = anthropicAdapter.createParser('other')
    parser.onBody({ input_tokens: 2095 })
    expect(parser.result()).toEqual({ usage: NO_USAGE, sawUsage: false, responseModel: null, finishReason: null })
  })
})

describe('gemini', () => {
  it('reads a generateContent body with thoughts and cached content', () => {
    const parser = geminiAdapter.createParser('generate')
    parser.onBody({
      candidates: [
        {
          content: { parts: [{ text: 'The capital of France is Paris.' }], role: 'model' },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: {
        promptTokenCount: 10443,
        candidatesTokenCount: 212,
        totalTokenCount: 11671,
        cachedContentTokenCount: 8192,
        promptTokensDetails: [{ modality: 'TEXT', tokenCount: 10443 }],
        cacheTokensDetails: [{ modality: 'TEXT', tokenCount: 8192 }],
        thoughtsTokenCount: 1016,
      },
      modelVersion: 'gemini-2.5-flash',
      responseId: 'mAitaLmkHPPlz7IPvtfUqQ4',
    })
    expect(parser.result()).toEqual({
      usage: {
        input_tokens: 10443,
        output_tokens: 212 + 1016,
        cached_input_tokens: 8192,
        cache_write_tokens: null,
        reasoning_tokens: 1016,
      },
      sawUsage: true,
      responseModel: 'gemini-2.5-flash',
      finishReason: 'STOP',
    })
  })

  it('counts thoughts alone when candidatesTokenCount is missing', () => {
    const parser = geminiAdapter.createParser('generate')
    parser.onBody({
      candidates: [{ content: { role: 'model' }, finishReason: 'MAX_TOKENS', index: 0 }],
      usageMetadata: { promptTokenCount: 5, totalTokenCount: 105, thoughtsTokenCount: 100 },
      modelVersion: 'gemini-2.5-pro',
    })
    expect(parser.result().usage).toEqual({
      input_tokens: 5,
      output_tokens: 100,
      cached_input_tokens: null,
      cache_write_tokens: null,
      reasoning_tokens: 100,
    })
  })

  it('reports a blocked prompt with unknown output', () => {
    const parser = geminiAdapter.createParser('generate')
    parser.onBody({
      promptFeedback: { blockReason: 'SAFETY', safetyRatings: [{ category: 'HARM_CATEGORY_HARASSMENT', probability: 'HIGH' }] },
      usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 },
      modelVersion: 'gemini-2.0-flash',
    })
    expect(parser.result()).toEqual({
      usage: { ...NO_USAGE, input_tokens: 8 },
      sawUsage: true,
      responseModel: 'gemini-2.0-flash',
      finishReason: 'SAFETY',
    })
  })

  const streamed = [
    {
      candidates: [{ content: { parts: [{ text: 'The' }], role: 'model' }, index: 0 }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 1, totalTokenCount: 10 },
      modelVersion: 'gemini-2.0-flash',
      responseId: 'resp-1',
    },
    {
      candidates: [{ content: { parts: [{ text: ' sky is blue because' }], role: 'model' }, index: 0 }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 17, totalTokenCount: 26 },
      modelVersion: 'gemini-2.0-flash',
      responseId: 'resp-1',
    },
    {
      candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
      usageMetadata: {
        promptTokenCount: 9,
        candidatesTokenCount: 42,
        totalTokenCount: 51,
        promptTokensDetails: [{ modality: 'TEXT', tokenCount: 9 }],
      },
      modelVersion: 'gemini-2.0-flash',
      responseId: 'resp-1',
    },
  ]
  const streamedResult = {
    usage: { input_tokens: 9, output_tokens: 42, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null },
    sawUsage: true,
    responseModel: 'gemini-2.0-flash',
    finishReason: 'STOP',
  }

  it('reads an alt=sse stream where the latest cumulative usage wins', () => {
    const parser = geminiAdapter.createParser('generate')
    expect(feed(parser, streamed.map((data) => ({ data })))).toEqual([true, true, false])
    expect(parser.result()).toEqual(streamedResult)
  })

  it('merges JSON-array stream elements given to onBody one by one', () => {
    const parser = geminiAdapter.createParser('generate')
    for (const element of streamed) parser.onBody(element)
    expect(parser.result()).toEqual(streamedResult)
  })

  it('merges a whole JSON-array stream given to onBody at once', () => {
    const parser = geminiAdapter.createParser('generate')
    parser.onBody(streamed)
    expect(parser.result()).toEqual(streamedResult)
  })

  it('counts function calls and inline data as content', () => {
    const parser = geminiAdapter.createParser('generate')
    const part = (p: Record<string, unknown>): SseEvent => ({
      data: { candidates: [{ content: { parts: [p], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash' },
    })
    expect(
      feed(parser, [
        part({ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }),
        part({ inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } }),
        part({ text: 'Thinking about it', thought: true }),
        part({ thoughtSignature: 'CiQB0e2Kb' }),
      ]),
    ).toEqual([true, true, true, false])
  })

  it('reports no usage for embedContent', () => {
    const parser = geminiAdapter.createParser('embeddings')
    parser.onBody({ embedding: { values: [0.013168523, -0.008711934, -0.046782676] } })
    expect(parser.result()).toEqual({ usage: NO_USAGE, sawUsage: false, responseModel: null, finishReason: null })
  })
})

describe('edge-only bodies (the tap keeps just model and usage of an oversized body)', () => {
  it('reads each family from { model, modelVersion, usage | usageMetadata }', () => {
    const openai = openaiAdapter.createParser('responses')
    openai.onBody({ model: 'gpt-4.1', modelVersion: 'gpt-4.1', usage: { input_tokens: 90000, output_tokens: 10, total_tokens: 90010 } })
    expect(openai.result()).toMatchObject({ sawUsage: true, responseModel: 'gpt-4.1', usage: { input_tokens: 90000, output_tokens: 10 } })

    const embeddings = openaiAdapter.createParser('embeddings')
    embeddings.onBody({ model: 'text-embedding-3-large', modelVersion: 'text-embedding-3-large', usage: { prompt_tokens: 4000, total_tokens: 4000 } })
    expect(embeddings.result().usage).toMatchObject({ input_tokens: 4000, output_tokens: 0 })

    const anthropic = anthropicAdapter.createParser('messages')
    anthropic.onBody({ model: 'claude-sonnet-4-5', modelVersion: 'claude-sonnet-4-5', usage: { input_tokens: 3, cache_read_input_tokens: 50000, output_tokens: 7 } })
    expect(anthropic.result().usage).toMatchObject({ input_tokens: 50003, cached_input_tokens: 50000, output_tokens: 7 })

    const gemini = geminiAdapter.createParser('generate')
    gemini.onBody({ model: 'gemini-2.5-pro', modelVersion: 'gemini-2.5-pro', usageMetadata: { promptTokenCount: 120000, candidatesTokenCount: 40 } })
    expect(gemini.result()).toMatchObject({ responseModel: 'gemini-2.5-pro', usage: { input_tokens: 120000, output_tokens: 40 } })
  })
})

describe('malformed input', () => {
  const adapters: readonly ProviderAdapter[] = [openaiAdapter, anthropicAdapter, geminiAdapter]
  const endpoints: readonly EndpointKind[] = ['chat', 'responses', 'messages', 'generate', 'other']
  const rawEvents = ['', 'not json', '{"type":', '[DONE]', 'null', '42', '"text"', '[1, {"usage": {}}]', 'true']
  const badShapes: unknown[] = [
    null,
    undefined,
    42,
    'text',
    [],
    [null, 1, 'x'],
    {},
    { usage: null, usageMetadata: null },
    { usage: 'lots', usageMetadata: 7, x_groq: 'x' },
    { choices: 'none', candidates: {}, model: 5, modelVersion: [], stop_reason: {} },
    { choices: [null, 1, { delta: null, finish_reason: 3 }], candidates: [null, { content: { parts: 'x' } }] },
    { type: 'message_delta', delta: null, usage: [] },
    { type: 'message_start', message: 'x' },
    { type: 'content_block_delta', delta: 'x' },
    { type: 'response.completed', response: [] },
    { type: 'response.output_text.delta', delta: 5 },
    { object: 'response', status: 7, incomplete_details: 'x' },
  ]

  for (const adapter of adapters) {
    it(`${adapter.family}: never throws and reports nothing`, () => {
      for (const endpoint of endpoints) {
        const parser = adapter.createParser(endpoint)
        for (const raw of rawEvents) expect(parser.onEvent(raw, undefined)).toBe(false)
        for (const shape of badShapes) {
          expect(parser.onEvent(JSON.stringify(shape) ?? '', 'message_delta')).toBe(false)
          parser.onBody(shape)
        }
        expect(parser.result()).toEqual({ usage: NO_USAGE, sawUsage: false, responseModel: null, finishReason: null })
      }
    })

    it(`${adapter.family}: ignores non-numeric and negative counts`, () => {
      const parser = adapter.createParser('chat')
      parser.onBody({
        usage: { prompt_tokens: '12', completion_tokens: -1, input_tokens: null, output_tokens: Number.NaN },
        usageMetadata: { promptTokenCount: '12', candidatesTokenCount: -3, thoughtsTokenCount: null },
      })
      expect(parser.result().usage).toEqual(NO_USAGE)
    })
  }
})

describe('adapterFor', () => {
  it('returns the adapter of each family', () => {
    expect(adapterFor('openai')).toBe(openaiAdapter)
    expect(adapterFor('anthropic')).toBe(anthropicAdapter)
    expect(adapterFor('gemini')).toBe(geminiAdapter)
    for (const family of ['openai', 'anthropic', 'gemini'] as const) expect(adapterFor(family).family).toBe(family)
  })
})

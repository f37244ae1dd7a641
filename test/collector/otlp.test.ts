import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { deriveSpanId, otlpTracesToSpans } from '../../collector/otlp.ts'
import type { Span } from '../../collector/schema.ts'
import type { BatchResult } from '../../collector/validate.ts'

type AnyValue =
  | { stringValue: string }
  | { intValue: string | number }
  | { doubleValue: number | string }
  | { boolValue: boolean }
  | { arrayValue: { values: AnyValue[] } }

interface OtlpSpan {
  traceId?: string
  spanId?: string
  name: string
  kind?: number
  startTimeUnixNano?: string | number
  endTimeUnixNano?: string | number
  attributes?: { key: string; value: AnyValue }[]
  status?: { code?: number | string; message?: string }
}

const TRACE_ID = '5b8efff798038103d269b633813fc60c'
const START_NS = '1748779200000000000' // 2025-06-01T12:00:00Z

/** JS values → OTLP attributes, the way the OTel JS exporter encodes them (ints as strings). */
function attrs(values: Record<string, string | number | boolean | string[]>): { key: string; value: AnyValue }[] {
  return Object.entries(values).map(([key, value]) => ({ key, value: anyValue(value) }))
}

function anyValue(value: string | number | boolean | string[]): AnyValue {
  if (Array.isArray(value)) return { arrayValue: { values: value.map((v) => ({ stringValue: v })) } }
  if (typeof value === 'string') return { stringValue: value }
  if (typeof value === 'boolean') return { boolValue: value }
  return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value }
}

/** A chat span per the current GenAI semantic conventions (gen_ai.provider.name, cache_read/creation). */
function chatSpan(overrides: Partial<OtlpSpan> = {}, extra: Record<string, string | number | boolean | string[]> = {}): OtlpSpan {
  return {
    traceId: TRACE_ID,
    spanId: '051581bf3cb55c13',
    name: 'chat gpt-4.1',
    kind: 3,
    startTimeUnixNano: START_NS,
    endTimeUnixNano: '1748779201234567000',
    attributes: attrs({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4.1',
      'gen_ai.response.model': 'gpt-4.1-2025-04-14',
      'gen_ai.request.stream': true,
      'gen_ai.response.finish_reasons': ['stop', 'length'],
      'gen_ai.usage.input_tokens': 1200,
      'gen_ai.usage.output_tokens': 340,
      'gen_ai.usage.cache_read.input_tokens': 1024,
      'gen_ai.usage.cache_creation.input_tokens': 0,
      'gen_ai.usage.reasoning.output_tokens': 128,
      'gen_ai.response.time_to_first_chunk': 0.2125,
      'http.response.status_code': 200,
      'server.address': 'api.openai.com',
      'user.id': 'user-42',
      'gen_ai.conversation.id': 'conv-7',
      'client.address': '10.0.0.7',
      ...extra,
    }),
    status: {},
    ...overrides,
  }
}

function exportRequest(spans: OtlpSpan[], resource: Record<string, string> = { 'service.name': 'support-bot' }): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: attrs(resource) },
        scopeSpans: [{ scope: { name: 'opentelemetry.instrumentation.openai_v2', version: '2.1b0' }, spans }],
      },
    ],
  }
}

function ok(result: BatchResult): Extract<BatchResult, { spans: Span[] }> {
  if ('error' in result) throw new Error(`unexpected error: ${result.error}`)
  return result
}

function only(result: BatchResult): Span {
  const { spans, rejected } = ok(result)
  expect(rejected).toEqual([])
  expect(spans).toHaveLength(1)
  const [span] = spans
  if (!span) throw new Error('no span')
  return span
}

describe('otlpTracesToSpans: mapping', () => {
  it('maps a chat span in the current GenAI conventions', () => {
    const span = only(otlpTracesToSpans(exportRequest([chatSpan()])))
    expect(span).toEqual({
      span_id: deriveSpanId(TRACE_ID, '051581bf3cb55c13'),
      started_at: '2025-06-01T12:00:00.000Z',
      ended_at: '2025-06-01T12:00:01.234Z',
      mode: 'reverse',
      provider: 'openai',
      endpoint: 'chat',
      request_model: 'gpt-4.1',
      response_model: 'gpt-4.1-2025-04-14',
      stream: true,
      status_code: 200,
      error_type: 'none',
      duration_ms: 1234.567,
      ttft_ms: 212.5,
      input_tokens: 1200,
      output_tokens: 340,
      cached_input_tokens: 1024,
      cache_write_tokens: 0,
      reasoning_tokens: 128,
      cost_usd: null,
      cost_status: 'unpriced',
      finish_reason: 'stop',
      user: 'user-42',
      session: 'conv-7',
      app: 'support-bot',
      properties: { source: 'otlp', 'otel.trace_id': TRACE_ID, 'otel.span_id': '051581bf3cb55c13' },
      request_bytes: 0,
      response_bytes: 0,
      client_addr: '10.0.0.7',
    } satisfies Span)
  })

  it('maps the older names: gen_ai.system, prompt/completion tokens, Anthropic-style cache names, a string finish reason', () => {
    const old = chatSpan({
      attributes: [
        { key: 'gen_ai.system', value: { stringValue: 'anthropic' } },
        { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
        { key: 'gen_ai.request.model', value: { stringValue: 'claude-3-5-sonnet-20241022' } },
        { key: 'gen_ai.usage.prompt_tokens', value: { intValue: '2048' } },
        { key: 'gen_ai.usage.completion_tokens', value: { intValue: 512 } },
        { key: 'gen_ai.usage.cache_read_input_tokens', value: { intValue: '1500' } },
        { key: 'gen_ai.usage.cache_creation_input_tokens', value: { intValue: '300' } },
        { key: 'gen_ai.usage.reasoning_tokens', value: { doubleValue: 64 } },
        { key: 'gen_ai.response.finish_reasons', value: { stringValue: 'end_turn' } },
        { key: 'session.id', value: { stringValue: 's-1' } },
        { key: 'enduser.id', value: { stringValue: 'alice' } },
      ],
      startTimeUnixNano: 1748779200000000000,
      endTimeUnixNano: 1748779203000000000,
    })
    const span = only(otlpTracesToSpans(exportRequest([old])))
    expect(span).toMatchObject({
      provider: 'anthropic',
      endpoint: 'chat',
      request_model: 'claude-3-5-sonnet-20241022',
      response_model: null,
      stream: false,
      input_tokens: 2048,
      output_tokens: 512,
      cached_input_tokens: 1500,
      cache_write_tokens: 300,
      reasoning_tokens: 64,
      finish_reason: 'end_turn',
      session: 's-1',
      user: 'alice',
      ttft_ms: null,
      status_code: 0,
      duration_ms: 3000,
    })
  })

  it('prefers the new attribute name when both are present', () => {
    const span = only(otlpTracesToSpans(exportRequest([chatSpan({}, { 'gen_ai.usage.prompt_tokens': 9, 'gen_ai.system': 'groq' })])))
    expect(span.input_tokens).toBe(1200)
    expect(span.provider).toBe('openai')
  })

  it.each([
    ['openai', 'openai'],
    ['anthropic', 'anthropic'],
    ['gcp.gemini', 'gemini'],
    ['gcp.vertex_ai', 'gemini'],
    ['gemini', 'gemini'],
    ['groq', 'groq'],
    ['mistral_ai', 'mistral'],
    ['deepseek', 'deepseek'],
    ['openrouter', 'openrouter'],
    ['together_ai', 'together'],
    ['fireworks', 'fireworks'],
    ['x_ai', 'xai'],
    ['azure.ai.openai', 'azure'],
    ['az.ai.openai', 'azure'],
    ['aws.bedrock', 'bedrock'],
    ['IBM.WatsonX.AI', 'ibm.watsonx.ai'],
  ])('provider %s → %s', (name, id) => {
    expect(only(otlpTracesToSpans(exportRequest([chatSpan({}, { 'gen_ai.provider.name': name })]))).provider).toBe(id)
  })

  it('falls back to server.address, then "unknown", when no provider is named', () => {
    const unnamed = (address: string): OtlpSpan =>
      chatSpan({ attributes: attrs({ 'gen_ai.operation.name': 'chat', 'server.address': address }) })
    expect(only(otlpTracesToSpans(exportRequest([unnamed('myres.openai.azure.com')]))).provider).toBe('azure')
    expect(only(otlpTracesToSpans(exportRequest([unnamed('llm.internal')]))).provider).toBe('unknown')
  })

  it.each([
    ['chat', 'chat'],
    ['text_completion', 'chat'],
    ['generate_content', 'generate'],
    ['embeddings', 'embeddings'],
    ['responses', 'responses'],
    ['create_embeddings_batch', 'other'],
  ])('operation %s → endpoint %s', (operation, endpoint) => {
    const span = only(otlpTracesToSpans(exportRequest([chatSpan({}, { 'gen_ai.operation.name': operation })])))
    expect(span.endpoint).toBe(endpoint)
  })

  it('keeps Anthropic chat as "chat" (the operation, not the URL)', () => {
    const span = only(otlpTracesToSpans(exportRequest([chatSpan({}, { 'gen_ai.provider.name': 'anthropic' })])))
    expect(span.endpoint).toBe('chat')
  })

  it('takes app from tollgate.app, then app, then the resource service.name; properties from tollgate.property.*', () => {
    const withApp = chatSpan({}, { 'tollgate.app': 'billing', 'tollgate.property.team': 'growth', 'tollgate.property.source': 'spoof' })
    const span = only(otlpTracesToSpans(exportRequest([withApp], { 'service.name': 'svc', 'tollgate.property.env': 'prod' })))
    expect(span.app).toBe('billing')
    expect(span.properties).toEqual({
      env: 'prod',
      team: 'growth',
      source: 'otlp',
      'otel.trace_id': TRACE_ID,
      'otel.span_id': '051581bf3cb55c13',
    })
    expect(only(otlpTracesToSpans(exportRequest([chatSpan({}, { app: 'a2' })]))).app).toBe('a2')
    expect(only(otlpTracesToSpans(exportRequest([chatSpan()], {}))).app).toBeNull()
  })

  it('accepts gen_ai.server.time_to_first_token (seconds) for TTFT', () => {
    const span = chatSpan({
      attributes: attrs({ 'gen_ai.provider.name': 'openai', 'gen_ai.server.time_to_first_token': 0.05 }),
    })
    expect(only(otlpTracesToSpans(exportRequest([span]))).ttft_ms).toBe(50)
  })
})

describe('otlpTracesToSpans: cost', () => {
  it('keeps a sender-reported gen_ai.usage.cost as priced', () => {
    const span = only(otlpTracesToSpans(exportRequest([chatSpan({}, { 'gen_ai.usage.cost': 0.00412 })])))
    expect(span).toMatchObject({ cost_usd: 0.00412, cost_status: 'priced' })
  })

  it('marks a span without token counts as no_usage', () => {
    const span = only(
      otlpTracesToSpans(exportRequest([chatSpan({ attributes: attrs({ 'gen_ai.provider.name': 'openai', 'gen_ai.operation.name': 'chat' }) })])),
    )
    expect(span).toMatchObject({ input_tokens: null, output_tokens: null, cost_usd: null, cost_status: 'no_usage' })
  })
})

describe('otlpTracesToSpans: errors', () => {
  function errorSpan(extra: Record<string, string | number>, code: number | string = 2): Span {
    return only(otlpTracesToSpans(exportRequest([chatSpan({ status: { code, message: 'boom' } }, extra)])))
  }

  it('classifies rate limits from error.type or the status code', () => {
    expect(errorSpan({ 'error.type': '429', 'http.response.status_code': 429 })).toMatchObject({ status_code: 429, error_type: 'rate_limited' })
    expect(errorSpan({ 'error.type': 'RateLimitError' }).error_type).toBe('rate_limited')
    expect(errorSpan({ 'http.response.status_code': 429 }).error_type).toBe('rate_limited')
  })

  it('classifies timeouts and HTTP classes', () => {
    expect(errorSpan({ 'error.type': 'timeout' }).error_type).toBe('timeout')
    expect(errorSpan({ 'error.type': 'openai.APITimeoutError' }).error_type).toBe('timeout')
    expect(errorSpan({ 'error.type': '503' }).error_type).toBe('http_5xx')
    expect(errorSpan({ 'error.type': '400' }).error_type).toBe('http_4xx')
    expect(errorSpan({ 'error.type': 'InternalServerError', 'http.response.status_code': 500 }).error_type).toBe('http_5xx')
    expect(errorSpan({ 'http.response.status_code': 404 }).error_type).toBe('http_4xx')
  })

  it('calls an error span with nothing more specific a proxy_error', () => {
    expect(errorSpan({ 'http.response.status_code': 0 }).error_type).toBe('proxy_error')
    expect(errorSpan({ 'error.type': 'ConnectionError' }, 0).error_type).toBe('proxy_error')
    expect(errorSpan({}, 'STATUS_CODE_ERROR').error_type).toBe('proxy_error')
  })

  it('leaves a successful span at none', () => {
    expect(errorSpan({}, 1).error_type).toBe('none')
  })
})

describe('otlpTracesToSpans: what is skipped, what is rejected', () => {
  it('skips spans without gen_ai.* attributes and GenAI spans that are not model calls', () => {
    const http: OtlpSpan = { ...chatSpan(), spanId: 'aaaaaaaaaaaaaaaa', name: 'GET /api', attributes: attrs({ 'http.request.method': 'GET' }) }
    const bare: OtlpSpan = { ...chatSpan(), spanId: 'bbbbbbbbbbbbbbbb', name: 'work', attributes: undefined }
    const tool: OtlpSpan = { ...chatSpan(), spanId: 'cccccccccccccccc', attributes: attrs({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' }) }
    const agent: OtlpSpan = {
      ...chatSpan(), spanId: 'dddddddddddddddd', kind: 1,
      attributes: attrs({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.usage.input_tokens': 5000 }),
    }
    const remoteAgent: OtlpSpan = {
      ...chatSpan(), spanId: 'eeeeeeeeeeeeeeee', kind: 3,
      attributes: attrs({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.provider.name': 'aws.bedrock' }),
    }
    const { spans, rejected } = ok(otlpTracesToSpans(exportRequest([http, chatSpan(), bare, tool, agent, remoteAgent])))
    expect(rejected).toEqual([])
    expect(spans.map((s) => [s.provider, s.endpoint])).toEqual([['openai', 'chat'], ['bedrock', 'other']])
  })

  it('rejects bad spans by their index across the whole request and keeps the good ones', () => {
    const body = {
      resourceSpans: [
        {
          resource: { attributes: attrs({ 'service.name': 'a' }) },
          scopeSpans: [
            { spans: [chatSpan({ spanId: '0000000000000001' }), chatSpan({ spanId: '0000000000000002' }, { 'gen_ai.usage.input_tokens': -3 })] },
            { spans: [chatSpan({ spanId: '0000000000000003', endTimeUnixNano: '1748779199000000000' })] },
          ],
        },
        {
          resource: { attributes: attrs({ 'service.name': 'b' }) },
          scopeSpans: [
            {
              spans: [
                chatSpan({ spanId: undefined }),
                chatSpan({ spanId: '0000000000000005' }, { 'gen_ai.usage.output_tokens': 'many' }),
                chatSpan({ spanId: '0000000000000006' }, { 'gen_ai.request.model': 'm'.repeat(300) }),
                chatSpan({ spanId: '0000000000000007', startTimeUnixNano: undefined }),
                chatSpan({ spanId: '0000000000000008' }),
              ],
            },
          ],
        },
      ],
    }
    const { spans, rejected } = ok(otlpTracesToSpans(body))
    expect(spans.map((s) => [s.properties['otel.span_id'], s.app])).toEqual([
      ['0000000000000001', 'a'],
      ['0000000000000008', 'b'],
    ])
    expect(rejected).toEqual([
      { index: 1, field: 'gen_ai.usage.input_tokens', message: 'must not be negative' },
      { index: 2, field: 'endTimeUnixNano', message: 'is before startTimeUnixNano' },
      { index: 3, field: 'spanId', message: 'required: a non-empty id' },
      { index: 4, field: 'gen_ai.usage.output_tokens', message: 'expected a whole number, received "many"' },
      { index: 5, field: 'request_model', message: 'longer than 256 characters' },
      { index: 6, field: 'startTimeUnixNano', message: 'expected Unix nanoseconds, received nothing' },
    ])
  })

  it('rejects an intValue string that is not an integer', () => {
    const span = chatSpan({ attributes: [{ key: 'gen_ai.usage.input_tokens', value: { intValue: '12x' } }] })
    const { rejected } = ok(otlpTracesToSpans(exportRequest([span])))
    expect(rejected).toEqual([{ index: 0, field: 'gen_ai.usage.input_tokens', message: 'expected a whole number, received NaN' }])
  })
})

describe('otlpTracesToSpans: span_id', () => {
  it('derives the same UUID for the same OTLP span, whatever the case of its ids', () => {
    const first = only(otlpTracesToSpans(exportRequest([chatSpan()])))
    const again = only(otlpTracesToSpans(exportRequest([chatSpan({ traceId: TRACE_ID.toUpperCase() })])))
    expect(again.span_id).toBe(first.span_id)
    expect(z.uuid({ version: 'v5' }).safeParse(first.span_id).success).toBe(true)
  })

  it('derives different UUIDs for different spans of one trace and for one span id in another trace', () => {
    const a = deriveSpanId(TRACE_ID, '051581bf3cb55c13')
    expect(deriveSpanId(TRACE_ID, '051581bf3cb55c14')).not.toBe(a)
    expect(deriveSpanId('4bf92f3577b34da6a3ce929d0e0e4736', '051581bf3cb55c13')).not.toBe(a)
    expect(deriveSpanId(TRACE_ID, '051581bf3cb55c13')).toBe(a)
  })
})

describe('otlpTracesToSpans: the request', () => {
  it('refuses a body that is not an export request', () => {
    expect(otlpTracesToSpans([])).toEqual({ error: 'expected an OTLP ExportTraceServiceRequest JSON object, received array' })
    expect(otlpTracesToSpans({ resourceSpans: {} })).toEqual({ error: 'resourceSpans: expected an array, received object' })
    expect(otlpTracesToSpans({ resourceSpans: [{ scopeSpans: [{ spans: 'x' }] }] })).toEqual({
      error: 'resourceSpans[0].scopeSpans[0].spans: expected an array, received string',
    })
  })

  it('treats an empty export as empty', () => {
    expect(otlpTracesToSpans({})).toEqual({ spans: [], rejected: [] })
    expect(otlpTracesToSpans({ resourceSpans: [{ scopeSpans: [] }] })).toEqual({ spans: [], rejected: [] })
  })

  it('refuses a request above maxSpans', () => {
    const spans = [1, 2, 3].map((i) => chatSpan({ spanId: `000000000000000${i}` }))
    expect(otlpTracesToSpans(exportRequest(spans), { maxSpans: 2 })).toHaveProperty('error')
    expect(ok(otlpTracesToSpans(exportRequest(spans), { maxSpans: 3 })).spans).toHaveLength(3)
  })
})

/**
 * Real SDK clients (openai, @anthropic-ai/sdk) and Gemini REST through the
 * reverse proxy to the mock upstream: the calls behave as if made directly,
 * and each yields one span with the mock's known usage, priced by genai-prices.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { expectedCost, expectedUsage, mockFaultHeaders, mockText, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

let upstream: MockUpstream
let tg: TestTollgate

beforeAll(async () => {
  upstream = await startMockUpstream()
  tg = await startTestTollgate({ upstreams: { openai: upstream.url, anthropic: upstream.url, gemini: upstream.url, groq: upstream.url } })
})
afterAll(async () => {
  await tg.close()
  await upstream.close()
})

/** Runs `call`, then returns the one span it produced. */
async function spanOf(call: () => Promise<unknown>): Promise<Span> {
  const before = (await tg.spans()).length
  await call()
  const spans = await tg.waitForSpans(before + 1)
  expect(spans).toHaveLength(before + 1)
  return spans[0]!
}

function usageOf(span: Span) {
  return {
    input_tokens: span.input_tokens,
    output_tokens: span.output_tokens,
    cached_input_tokens: span.cached_input_tokens,
    cache_write_tokens: span.cache_write_tokens,
    reasoning_tokens: span.reasoning_tokens,
  }
}


describe('openai SDK through /openai/v1', () => {
  const client = () =>
    new OpenAI({
      apiKey: 'sk-test-secret-key-0123456789',
      baseURL: `${tg.proxyUrl}/openai/v1`,
      defaultHeaders: { 'x-tollgate-user': 'alice', 'x-tollgate-app': 'checkout', 'x-tollgate-property-team': 'growth' },
      maxRetries: 0,
    })

  it('chat, non-stream: same answer, one priced span with every token kind', async () => {
    let content: string | null | undefined
    const span = await spanOf(async () => {
      const completion = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      content = completion.choices[0]?.message.content
    })
    expect(content).toBe(mockText())
    expect(span).toMatchObject({
      mode: 'reverse',
      provider: 'openai',
      endpoint: 'chat',
      request_model: 'gpt-4o-mini',
      response_model: 'gpt-4o-mini',
      stream: false,
      status_code: 200,
      error_type: 'none',
      cost_status: 'priced',
      finish_reason: 'stop',
      user: 'alice',
      app: 'checkout',
      session: null,
      properties: { team: 'growth' },
      client_addr: '127.0.0.1',
    })
    expect(usageOf(span)).toEqual(expectedUsage('chat'))
    expect(span.cost_usd).toBeCloseTo(expectedCost('chat', 'gpt-4o-mini', 'openai'), 12)
    expect(span.ttft_ms).not.toBeNull()
    expect(span.ttft_ms!).toBeLessThanOrEqual(span.duration_ms)
    expect(span.request_bytes).toBeGreaterThan(0)
    expect(span.response_bytes).toBeGreaterThan(0)
    expect(Date.parse(span.ended_at) - Date.parse(span.started_at)).toBeGreaterThanOrEqual(Math.floor(span.duration_ms) - 1)

    // Attribution never reaches the upstream; the client's own credentials do.
    const seen = upstream.requests.at(-1)!
    expect(Object.keys(seen.headers).filter((h) => h.startsWith('x-tollgate-'))).toEqual([])
    expect(seen.headers.authorization).toBe('Bearer sk-test-secret-key-0123456789')
    expect(JSON.stringify(span)).not.toContain('sk-test-secret')
  })

  it('chat stream with include_usage: chunks arrive, usage from the final chunk', async () => {
    let text = ''
    const span = await spanOf(async () => {
      const stream = await client().chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        stream_options: { include_usage: true },
      }, { headers: mockFaultHeaders({ chunks: 7, chunkIntervalMs: 5 }) })
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    })
    expect(text).toBe(mockText(7))
    expect(span).toMatchObject({ endpoint: 'chat', stream: true, status_code: 200, error_type: 'none', cost_status: 'priced', finish_reason: 'stop' })
    expect(usageOf(span)).toEqual(expectedUsage('chat'))
    expect(span.cost_usd).toBeCloseTo(expectedCost('chat', 'gpt-4o', 'openai'), 12)
    // First content comes before the 6 paced chunks that follow it.
    expect(span.ttft_ms!).toBeLessThan(span.duration_ms - 20)
  })

  it('chat stream without include_usage: tokens unknown, no_usage, never a guess', async () => {
    const span = await spanOf(async () => {
      const stream = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true })
      for await (const _ of stream) void _
    })
    expect(span).toMatchObject({ stream: true, error_type: 'none', cost_status: 'no_usage', cost_usd: null, input_tokens: null, output_tokens: null })
    expect(span.ttft_ms).not.toBeNull()
  })

  it('responses API, non-stream and stream', async () => {
    const plain = await spanOf(() => client().responses.create({ model: 'gpt-4.1', input: 'hi' }))
    expect(plain).toMatchObject({ endpoint: 'responses', stream: false, response_model: 'gpt-4.1', cost_status: 'priced', finish_reason: 'completed' })
    expect(usageOf(plain)).toEqual(expectedUsage('responses'))
    expect(plain.cost_usd).toBeCloseTo(expectedCost('responses', 'gpt-4.1', 'openai'), 12)

    let text = ''
    const streamed = await spanOf(async () => {
      const stream = await client().responses.create({ model: 'gpt-4.1', input: 'hi', stream: true })
      for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta
    })
    expect(text).toBe(mockText())
    expect(streamed).toMatchObject({ endpoint: 'responses', stream: true, cost_status: 'priced' })
    expect(usageOf(streamed)).toEqual(expectedUsage('responses'))
  })

  it('embeddings', async () => {
    const span = await spanOf(() => client().embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }))
    expect(span).toMatchObject({ endpoint: 'embeddings', stream: false, cost_status: 'priced', input_tokens: 8, output_tokens: 0 })
    expect(span.cost_usd).toBeCloseTo(expectedCost('embeddings', 'text-embedding-3-small', 'openai'), 12)
  })

  it('a dated response model is priced and kept as response_model', async () => {
    const span = await spanOf(() =>
      client().chat.completions.create(
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
        { headers: mockFaultHeaders({ responseModelSuffix: '-2024-08-06' }) },
      ),
    )
    expect(span).toMatchObject({ request_model: 'gpt-4o', response_model: 'gpt-4o-2024-08-06', cost_status: 'priced' })
  })

  it('an unknown model is unpriced, not $0', async () => {
    const span = await spanOf(() => client().chat.completions.create({ model: 'my-private-finetune-xyz', messages: [{ role: 'user', content: 'hi' }] }))
    expect(span).toMatchObject({ cost_status: 'unpriced', cost_usd: null })
    expect(usageOf(span)).toEqual(expectedUsage('chat'))
  })

  it('an OpenAI-compatible provider by prefix (Groq)', async () => {
    const groq = new OpenAI({ apiKey: 'gsk_test', baseURL: `${tg.proxyUrl}/groq/openai/v1`, maxRetries: 0 })
    const span = await spanOf(() => groq.chat.completions.create({ model: 'llama-3.3-70b-versatile', messages: [{ role: 'user', content: 'hi' }] }))
    expect(span).toMatchObject({ provider: 'groq', endpoint: 'chat', cost_status: 'priced' })
    expect(upstream.requests.at(-1)!.path).toBe('/openai/v1/chat/completions')
  })
})

describe('@anthropic-ai/sdk through /anthropic', () => {
  const client = () =>
    new Anthropic({ apiKey: 'sk-ant-test-secret-0123456789', baseURL: `${tg.proxyUrl}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-tollgate-session': 'sess-9' } })

  it('messages, non-stream: cache read and cache write tokens', async () => {
    let text = ''
    const span = await spanOf(async () => {
      const message = await client().messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      const block = message.content[0]
      text = block?.type === 'text' ? block.text : ''
    })
    expect(text).toBe(mockText())
    expect(span).toMatchObject({ provider: 'anthropic', endpoint: 'messages', stream: false, finish_reason: 'end_turn', session: 'sess-9', cost_status: 'priced' })
    expect(usageOf(span)).toEqual(expectedUsage('messages'))
    expect(span.cost_usd).toBeCloseTo(expectedCost('messages', 'claude-sonnet-4-20250514', 'anthropic'), 12)
    // SDK 1.x sends the key as a bearer token; older ones as x-api-key. Either way it reaches the upstream.
    const seen = upstream.requests.at(-1)!.headers
    expect(seen['x-api-key'] ?? seen.authorization).toMatch(/sk-ant-test-secret-0123456789$/)
    expect(JSON.stringify(span)).not.toContain('sk-ant-test')
  })

  it('messages stream: message_start usage plus cumulative message_delta', async () => {
    let text = ''
    const span = await spanOf(async () => {
      const stream = client().messages.stream({ model: 'claude-3-5-haiku-latest', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      stream.on('text', (t) => (text += t))
      await stream.finalMessage()
    })
    expect(text).toBe(mockText())
    expect(span).toMatchObject({ endpoint: 'messages', stream: true, finish_reason: 'end_turn', cost_status: 'priced' })
    expect(usageOf(span)).toEqual(expectedUsage('messages'))
  })
})

describe('Gemini REST through /gemini', () => {
  const base = () => `${tg.proxyUrl}/gemini/v1beta/models/gemini-2.5-flash`
  const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] })

  it('generateContent with ?key=: usage incl. thoughts and cached, key kept out of the span', async () => {
    const span = await spanOf(async () => {
      const res = await fetch(`${base()}:generateContent?key=AIzaSyTESTKEY0123456789abcdefghij`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
      expect(res.status).toBe(200)
      await res.json()
    })
    expect(span).toMatchObject({ provider: 'gemini', endpoint: 'generate', request_model: 'gemini-2.5-flash', stream: false, finish_reason: 'STOP', cost_status: 'priced' })
    expect(usageOf(span)).toEqual(expectedUsage('generate'))
    expect(span.cost_usd).toBeCloseTo(expectedCost('generate', 'gemini-2.5-flash', 'google'), 12)
    expect(upstream.requests.at(-1)!.path).toContain('key=AIzaSyTESTKEY')
    expect(JSON.stringify(span)).not.toContain('AIzaSy')
  })

  it('streamGenerateContent?alt=sse and the JSON-array stream', async () => {
    for (const query of ['?alt=sse', '']) {
      const span = await spanOf(async () => {
        const res = await fetch(`${base()}:streamGenerateContent${query}`, { method: 'POST', body, headers: { 'x-goog-api-key': 'AIzaSyHEADERKEY0123456789abcdefghij' } })
        await res.text()
      })
      expect(span, query).toMatchObject({ endpoint: 'generate', stream: true, finish_reason: 'STOP', cost_status: 'priced' })
      expect(usageOf(span), query).toEqual(expectedUsage('generate'))
      expect(JSON.stringify(span)).not.toContain('AIzaSy')
    }
  })
})

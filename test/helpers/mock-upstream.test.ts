import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliDecompressSync, constants as zlibConstants, gunzipSync, inflateSync } from 'node:zlib'
import Anthropic from '@anthropic-ai/sdk'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MOCK_DEFAULT_CHUNKS,
  MOCK_USAGE,
  expectedUsage,
  mockChunkText,
  mockFaultHeaders,
  mockText,
  startMockUpstream,
  type MockEncoding,
  type MockFaults,
  type MockUpstream,
} from './mock-upstream.ts'

// Just the fields these tests read; the mock's output is checked against them.
interface ChatChunk {
  model: string
  choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>
  usage?: unknown
}
interface ResponsesEvent {
  type: string
  delta?: string
  response?: { status: string; usage: unknown; output: Array<{ content: Array<{ text: string }> }> }
}
interface AnthropicEvent {
  type: string
  message?: { usage: Record<string, number> }
  delta?: { text?: string; stop_reason?: string }
  usage?: Record<string, number>
}
interface GeminiChunk {
  candidates: Array<{ content: { parts: Array<{ text: string }> }; finishReason?: string }>
  usageMetadata: Record<string, number>
  modelVersion: string
}

interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  /** Body pieces as the client's 'data' events delivered them. */
  chunks: Buffer[]
  body: Buffer
  /** Set when the body ended early (reset); the headers had arrived. */
  error: Error | null
}

/** node:http, because fetch would decode content-encoding and merge chunks. */
function rawRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const options = {
      method: init.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      agent: false,
    }
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = []
      let settled = false
      const finish = (error: Error | null): void => {
        if (settled) return
        settled = true
        resolve({ status: res.statusCode ?? 0, headers: res.headers, chunks, body: Buffer.concat(chunks), error })
      }
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => finish(null))
      res.on('error', (err) => finish(err))
      res.on('close', () => finish(res.complete ? null : new Error('response closed before its end')))
    }
    const req =
      target.protocol === 'https:'
        ? httpsRequest(target, { ...options, ca: init.ca }, onResponse)
        : httpRequest(target, options, onResponse)
    req.on('error', reject)
    req.end(init.body)
  })
}

function parseSse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (event) => events.push(event) })
  parser.feed(text)
  return events
}

function postJson(upstream: MockUpstream, path: string, body: unknown, faults: MockFaults = {}): Promise<Response> {
  return fetch(`${upstream.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...mockFaultHeaders(faults) },
    body: JSON.stringify(body),
  })
}

/** Reads a fetch body until it ends or fails, keeping what arrived. */
async function readUntilError(res: Response): Promise<{ text: string; error: unknown }> {
  if (!res.body) throw new Error('no body')
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { text, error: null }
      text += decoder.decode(value, { stream: true })
    }
  } catch (error) {
    return { text, error }
  }
}

/** Ids differ per request; everything else must be byte-identical. */
function withoutIds(events: EventSourceMessage[]): string[] {
  return events.map((event) => `${event.event ?? ''}|${event.data.replace(/mock[-_]\d+/g, 'mock-N')}`)
}

const chatBody = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }
const messagesBody = { model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] }
const geminiBody = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }

let upstream: MockUpstream
beforeAll(async () => {
  upstream = await startMockUpstream()
})
afterAll(async () => {
  await upstream.close()
})

describe('routing and recording', () => {
  it('answers /health and 404s anything else with JSON', async () => {
    const health = await fetch(`${upstream.url}/health`)
    expect(health.status).toBe(200)
    expect(await health.text()).toBe('ok')

    const missing = await fetch(`${upstream.url}/v1/nothing`, { method: 'POST', body: '{}' })
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } })
  })

  it('records method, path with query, headers and the whole body', async () => {
    const body = JSON.stringify({ ...chatBody, note: 'héllo 🚀' })
    await fetch(`${upstream.url}/openai/v1/chat/completions?trace=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test-marker': 'record-me' },
      body,
    })
    const recorded = upstream.requests.find((r) => r.headers['x-test-marker'] === 'record-me')
    expect(recorded).toMatchObject({ method: 'POST', path: '/openai/v1/chat/completions?trace=1' })
    expect(recorded?.body.equals(Buffer.from(body))).toBe(true)
  })

  it('takes the model from an Azure deployment path when the body has none', async () => {
    const res = await postJson(upstream, '/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21', {
      messages: [],
    })
    expect(await res.json()).toMatchObject({ model: 'my-gpt' })
  })

  it('answers a body that is not a JSON object with the provider-shaped 400', async () => {
    const openai = await fetch(`${upstream.url}/v1/chat/completions`, { method: 'POST', body: 'not json' })
    expect(openai.status).toBe(400)
    expect(await openai.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_request' } })

    const anthropic = await fetch(`${upstream.url}/v1/messages`, { method: 'POST', body: '[1,2]' })
    expect(anthropic.status).toBe(400)
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } })

    const gemini = await fetch(`${upstream.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', body: '' })
    expect(gemini.status).toBe(400)
    expect(await gemini.json()).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } })
  })
})

describe('expectedUsage', () => {
  it('normalises every kind with the contract semantics', () => {
    expect(expectedUsage('chat')).toEqual({
      input_tokens: 120,
      output_tokens: 48,
      cached_input_tokens: 64,
      cache_write_tokens: null,
      reasoning_tokens: 16,
    })
    expect(expectedUsage('responses')).toEqual({
      input_tokens: 150,
      output_tokens: 60,
      cached_input_tokens: 96,
      cache_write_tokens: null,
      reasoning_tokens: 20,
    })
    expect(expectedUsage('embeddings')).toEqual({
      input_tokens: 8,
      output_tokens: 0,
      cached_input_tokens: null,
      cache_write_tokens: null,
      reasoning_tokens: null,
    })
    expect(expectedUsage('messages')).toEqual({
      input_tokens: 120,
      output_tokens: 70,
      cached_input_tokens: 50,
      cache_write_tokens: 30,
      reasoning_tokens: null,
    })
    expect(expectedUsage('generate')).toEqual({
      input_tokens: 110,
      output_tokens: 60,
      cached_input_tokens: 40,
      cache_write_tokens: null,
      reasoning_tokens: 25,
    })
  })

  it('has non-ASCII answer text', () => {
    expect(mockText()).toBe('héllo wörld 🚀 日本 naïve')
    expect(mockText(2)).toBe(mockChunkText(0) + mockChunkText(1))
  })
})

describe('OpenAI chat completions', () => {
  it('answers non-stream with text and usage', async () => {
    const res = await postJson(upstream, '/v1/chat/completions', chatBody)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-request-id')).toMatch(/^req_mock_/)
    expect(await res.json()).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o',
      choices: [{ message: { role: 'assistant', content: mockText() }, finish_reason: 'stop' }],
      usage: MOCK_USAGE.chat,
    })
  })

  it('streams role, content, finish and [DONE] without usage unless asked', async () => {
    const res = await postJson(upstream, '/v1/chat/completions', { ...chatBody, stream: true })
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = parseSse(await res.text())
    expect(events.at(-1)?.data).toBe('[DONE]')
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as ChatChunk)
    expect(chunks).toHaveLength(1 + MOCK_DEFAULT_CHUNKS + 1)
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' })
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(mockText())
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop')
    expect(chunks.every((c) => c.usage === undefined)).toBe(true)
  })

  it('adds a final usage chunk with empty choices when include_usage is set', async () => {
    const res = await postJson(upstream, '/v1/chat/completions', {
      ...chatBody,
      stream: true,
      stream_options: { include_usage: true },
    })
    const events = parseSse(await res.text())
    const last = JSON.parse(events.at(-2)?.data ?? '') as ChatChunk
    expect(last.choices).toEqual([])
    expect(last.usage).toEqual(MOCK_USAGE.chat)
  })

  it('works with the OpenAI SDK, stream and non-stream', async () => {
    const client = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: 'test', maxRetries: 0 })
    const completion = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
    expect(completion.choices[0]?.message.content).toBe(mockText())
    expect(completion.usage?.prompt_tokens_details?.cached_tokens).toBe(64)

    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let completionTokens: number | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      completionTokens = chunk.usage?.completion_tokens ?? completionTokens
    }
    expect(text).toBe(mockText())
    expect(completionTokens).toBe(48)
  })
})

describe('OpenAI responses', () => {
  it('answers non-stream with output_text and usage', async () => {
    const res = await postJson(upstream, '/v1/responses', { model: 'gpt-5', input: 'hi' })
    expect(await res.json()).toMatchObject({
      object: 'response',
      status: 'completed',
      model: 'gpt-5',
      output: [{ type: 'message', content: [{ type: 'output_text', text: mockText() }] }],
      usage: MOCK_USAGE.responses,
    })
  })

  it('streams created, deltas and completed with usage', async () => {
    const res = await postJson(upstream, '/v1/responses', { model: 'gpt-5', input: 'hi', stream: true })
    const events = parseSse(await res.text())
    for (const event of events) expect((JSON.parse(event.data) as ResponsesEvent).type).toBe(event.event)
    const payloads = events.map((e) => JSON.parse(e.data) as ResponsesEvent)
    expect(payloads[0]?.type).toBe('response.created')
    const deltas = payloads.filter((p) => p.type === 'response.output_text.delta')
    expect(deltas).toHaveLength(MOCK_DEFAULT_CHUNKS)
    expect(deltas.map((d) => d.delta).join('')).toBe(mockText())
    const completed = payloads.at(-1)
    expect(completed?.type).toBe('response.completed')
    expect(completed?.response?.usage).toEqual(MOCK_USAGE.responses)
  })

  it('works with the OpenAI SDK', async () => {
    const client = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: 'test', maxRetries: 0 })
    const response = await client.responses.create({ model: 'gpt-5', input: 'hi' })
    expect(response.output_text).toBe(mockText())
    const stream = await client.responses.create({ model: 'gpt-5', input: 'hi', stream: true })
    let outputTokens: number | undefined
    for await (const event of stream) {
      if (event.type === 'response.completed') outputTokens = event.response.usage?.output_tokens
    }
    expect(outputTokens).toBe(60)
  })
})

describe('OpenAI embeddings', () => {
  it('answers with 8 floats per input and prompt usage', async () => {
    const res = await postJson(upstream, '/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'b'] })
    const body = (await res.json()) as { data: Array<{ embedding: number[] }>; usage: unknown; model: string }
    expect(body.model).toBe('text-embedding-3-small')
    expect(body.data).toHaveLength(2)
    expect(body.data[0]?.embedding).toHaveLength(8)
    expect(body.usage).toEqual(MOCK_USAGE.embeddings)
  })

  it('serves the base64 form the OpenAI SDK asks for by default', async () => {
    const client = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: 'test', maxRetries: 0 })
    const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' })
    expect(result.data[0]?.embedding).toHaveLength(8)
    expect(result.usage.prompt_tokens).toBe(8)
  })
})

describe('Anthropic messages', () => {
  it('answers non-stream with content and cache usage', async () => {
    const res = await postJson(upstream, '/v1/messages', messagesBody)
    expect(res.headers.get('request-id')).toMatch(/^req_mock_/)
    expect(await res.json()).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'claude-haiku-4-5',
      content: [{ type: 'text', text: mockText() }],
      stop_reason: 'end_turn',
      usage: MOCK_USAGE.messages,
    })
  })

  it('streams message_start with input counts and message_delta with the final output count', async () => {
    const res = await postJson(upstream, '/v1/messages', { ...messagesBody, stream: true })
    const events = parseSse(await res.text())
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      ...Array<string>(MOCK_DEFAULT_CHUNKS).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ])
    const payloads = events.map((e) => JSON.parse(e.data) as AnthropicEvent)
    expect(payloads[0]?.message?.usage).toEqual({
      input_tokens: 40,
      cache_creation_input_tokens: 30,
      cache_read_input_tokens: 50,
      output_tokens: 1,
    })
    const text = payloads.map((p) => (p.type === 'content_block_delta' ? (p.delta?.text ?? '') : '')).join('')
    expect(text).toBe(mockText())
    const delta = payloads.find((p) => p.type === 'message_delta')
    expect(delta?.delta?.stop_reason).toBe('end_turn')
    expect(delta?.usage).toEqual({ output_tokens: 70 })
  })

  it('works with the Anthropic SDK', async () => {
    const client = new Anthropic({ baseURL: upstream.url, apiKey: 'test', maxRetries: 0 })
    const message = await client.messages.create(messagesBody)
    expect(message.usage.cache_read_input_tokens).toBe(50)
    const final = await client.messages.stream(messagesBody).finalMessage()
    expect(final.content[0]?.type === 'text' ? final.content[0].text : null).toBe(mockText())
    expect(final.usage.output_tokens).toBe(70)
    expect(final.usage.cache_creation_input_tokens).toBe(30)
  })
})

describe('Gemini', () => {
  const path = (method: string): string => `/v1beta/models/gemini-2.5-flash:${method}`

  it('answers generateContent with usageMetadata and modelVersion', async () => {
    const res = await postJson(upstream, path('generateContent'), geminiBody)
    expect(await res.json()).toMatchObject({
      candidates: [{ content: { parts: [{ text: mockText() }], role: 'model' }, finishReason: 'STOP' }],
      usageMetadata: MOCK_USAGE.generate,
      modelVersion: 'gemini-2.5-flash',
    })
  })

  it('streams CRLF-framed SSE with cumulative usage ending at the final numbers', async () => {
    const res = await postJson(upstream, `${path('streamGenerateContent')}?alt=sse`, geminiBody)
    const text = await res.text()
    expect(text).toContain('\r\n\r\n')
    const chunks = parseSse(text).map((e) => JSON.parse(e.data) as GeminiChunk)
    expect(chunks).toHaveLength(MOCK_DEFAULT_CHUNKS + 1)
    expect(chunks.map((c) => c.candidates[0]?.content.parts[0]?.text ?? '').join('')).toBe(mockText())
    const candidates = chunks.map((c) => c.usageMetadata.candidatesTokenCount ?? 0)
    expect(candidates).toEqual([...candidates].sort((a, b) => a - b))
    expect(chunks.at(-1)?.usageMetadata).toEqual(MOCK_USAGE.generate)
    expect(chunks.at(-1)?.candidates[0]?.finishReason).toBe('STOP')
    expect(chunks.slice(0, -1).every((c) => c.candidates[0]?.finishReason === undefined)).toBe(true)
  })

  it('streams a JSON array in pieces without alt=sse', async () => {
    const raw = await rawRequest(`${upstream.url}${path('streamGenerateContent')}`, {
      body: JSON.stringify(geminiBody),
      headers: mockFaultHeaders({ chunkIntervalMs: 5 }),
    })
    expect(raw.chunks.length).toBeGreaterThan(1)
    const array = JSON.parse(raw.body.toString('utf8')) as GeminiChunk[]
    expect(array).toHaveLength(MOCK_DEFAULT_CHUNKS + 1)
    expect(array.at(-1)?.usageMetadata).toEqual(MOCK_USAGE.generate)
  })
})

describe('x-mock-status', () => {
  it('sends 429 with retry-after and the OpenAI error shape', async () => {
    const res = await postJson(upstream, '/v1/chat/completions', { ...chatBody, stream: true }, { status: 429 })
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await res.json()).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } })

    const server = await postJson(upstream, '/v1/chat/completions', chatBody, { status: 500 })
    expect(await server.json()).toMatchObject({ error: { type: 'server_error', code: 'server_error' } })
  })

  it('uses the Anthropic error types', async () => {
    for (const [status, type] of [
      [429, 'rate_limit_error'],
      [529, 'overloaded_error'],
      [500, 'api_error'],
    ] as const) {
      const res = await postJson(upstream, '/v1/messages', messagesBody, { status })
      expect(res.status).toBe(status)
      expect(await res.json()).toMatchObject({ type: 'error', error: { type } })
      if (status === 429) expect(res.headers.get('retry-after')).toBe('1')
    }
  })

  it('uses the Gemini error shape', async () => {
    const res = await postJson(upstream, '/v1beta/models/gemini-2.5-flash:generateContent', geminiBody, { status: 429 })
    expect(await res.json()).toMatchObject({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } })
  })
})

describe('x-mock-chunks, x-mock-latency-ms, x-mock-chunk-interval-ms, x-mock-response-model-suffix', () => {
  it('streams the asked number of content chunks', async () => {
    const res = await postJson(upstream, '/v1/messages', { ...messagesBody, stream: true }, { chunks: 3 })
    const deltas = parseSse(await res.text()).filter((e) => e.event === 'content_block_delta')
    expect(deltas).toHaveLength(3)

    const none = await postJson(upstream, '/v1/chat/completions', { ...chatBody, stream: true }, { chunks: 0 })
    const events = parseSse(await none.text())
    expect(events.at(-1)?.data).toBe('[DONE]')
  })

  it('delays the headers and spaces the chunks (lower bounds only)', async () => {
    const started = performance.now()
    const res = await postJson(upstream, '/v1/chat/completions', { ...chatBody, stream: true }, {
      latencyMs: 100,
      chunkIntervalMs: 20,
      chunks: 3,
    })
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    await res.text()
    // 100 ms latency, then 2 gaps between 3 chunks and 1 before the closing events.
    expect(performance.now() - started).toBeGreaterThanOrEqual(95 + 3 * 19)
  })

  it('appends the suffix to the response model', async () => {
    const res = await postJson(upstream, '/v1/chat/completions', chatBody, { responseModelSuffix: '-2024-08-06' })
    expect(await res.json()).toMatchObject({ model: 'gpt-4o-2024-08-06' })
    const gemini = await postJson(upstream, '/v1beta/models/gemini-2.5-flash:generateContent', geminiBody, {
      responseModelSuffix: '-001',
    })
    expect(await gemini.json()).toMatchObject({ modelVersion: 'gemini-2.5-flash-001' })
  })
})

describe('x-mock-reset-after-chunks', () => {
  it('cuts a stream after n content chunks: fetch errors after partial data', async () => {
    const res = await postJson(upstream, '/v1/chat/completions', { ...chatBody, stream: true }, { resetAfterChunks: 2 })
    expect(res.status).toBe(200)
    const { text, error } = await readUntilError(res)
    expect(error).toBeInstanceOf(Error)
    const chunks = parseSse(text).map((e) => JSON.parse(e.data) as ChatChunk)
    expect(chunks).toHaveLength(3)
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(mockText(2))
  })

  it('cuts a compressed stream after its flushed data reached node:http', async () => {
    const raw = await rawRequest(`${upstream.url}/v1/messages`, {
      body: JSON.stringify({ ...messagesBody, stream: true }),
      headers: mockFaultHeaders({ resetAfterChunks: 1, encoding: 'gzip' }),
    })
    expect(raw.error).not.toBeNull()
    const text = gunzipSync(raw.body, { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('utf8')
    expect(parseSse(text).map((e) => e.event)).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_delta'])
  })

  it('non-stream: 0 resets before any response, 1 after headers and half the body', async () => {
    await expect(postJson(upstream, '/v1/chat/completions', chatBody, { resetAfterChunks: 0 })).rejects.toThrow()
    const res = await postJson(upstream, '/v1/chat/completions', chatBody, { resetAfterChunks: 1 })
    expect(res.status).toBe(200)
    await expect(res.text()).rejects.toThrow()
  })
})

describe('x-mock-encoding', () => {
  const decoders: Record<MockEncoding, (bytes: Buffer) => Buffer> = {
    gzip: (bytes) => gunzipSync(bytes, { finishFlush: zlibConstants.Z_SYNC_FLUSH }),
    deflate: (bytes) => inflateSync(bytes, { finishFlush: zlibConstants.Z_SYNC_FLUSH }),
    br: (bytes) => brotliDecompressSync(bytes, { finishFlush: zlibConstants.BROTLI_OPERATION_FLUSH }),
  }

  for (const encoding of ['gzip', 'br', 'deflate'] as const) {
    it(`${encoding}: non-stream body decodes to the usual JSON`, async () => {
      const raw = await rawRequest(`${upstream.url}/v1/chat/completions`, {
        body: JSON.stringify(chatBody),
        headers: mockFaultHeaders({ encoding }),
      })
      expect(raw.headers['content-encoding']).toBe(encoding)
      expect(JSON.parse(decoders[encoding](raw.body).toString('utf8'))).toMatchObject({ usage: MOCK_USAGE.chat })
    })

    it(`${encoding}: a stream trickles, every piece decodable as it arrives`, async () => {
      const raw = await rawRequest(`${upstream.url}/v1/chat/completions`, {
        body: JSON.stringify({ ...chatBody, stream: true, stream_options: { include_usage: true } }),
        headers: mockFaultHeaders({ encoding, chunkIntervalMs: 10 }),
      })
      expect(raw.headers['content-encoding']).toBe(encoding)
      expect(raw.chunks.length).toBeGreaterThan(MOCK_DEFAULT_CHUNKS)
      // Everything but the last piece already holds whole events: the flushes worked.
      const early = parseSse(decoders[encoding](Buffer.concat(raw.chunks.slice(0, -1))).toString('utf8'))
      expect(early.length).toBeGreaterThanOrEqual(1 + MOCK_DEFAULT_CHUNKS)
      const events = parseSse(decoders[encoding](raw.body).toString('utf8'))
      expect(events.at(-1)?.data).toBe('[DONE]')
      expect((JSON.parse(events.at(-2)?.data ?? '') as ChatChunk).usage).toEqual(MOCK_USAGE.chat)
    })
  }

  it('fetch decodes a gzip stream transparently', async () => {
    const res = await postJson(upstream, '/v1/responses', { model: 'gpt-5', input: 'hi', stream: true }, { encoding: 'gzip' })
    const events = parseSse(await res.text())
    expect(events.at(-1)?.event).toBe('response.completed')
  })
})

describe('x-mock-split', () => {
  const fatalDecoder = new TextDecoder('utf-8', { fatal: true })
  const isValidUtf8 = (bytes: Buffer): boolean => {
    try {
      fatalDecoder.decode(bytes)
      return true
    } catch {
      return false
    }
  }

  for (const [name, path, body] of [
    ['chat', '/v1/chat/completions', { ...chatBody, stream: true }],
    ['messages', '/v1/messages', { ...messagesBody, stream: true }],
    ['gemini', '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', geminiBody],
  ] as const) {
    it(`${name}: cuts events mid-event and mid-character, and they reassemble`, async () => {
      const url = `${upstream.url}${path}`
      const whole = await rawRequest(url, { body: JSON.stringify(body) })
      const split = await rawRequest(url, { body: JSON.stringify(body), headers: mockFaultHeaders({ split: true }) })
      const wholeEvents = parseSse(whole.body.toString('utf8'))
      expect(split.chunks.length).toBeGreaterThan(2 * wholeEvents.length)
      expect(split.chunks.some((chunk) => !isValidUtf8(chunk))).toBe(true)

      // Fed piece by piece, as a tap sees them.
      const decoder = new TextDecoder()
      const events: EventSourceMessage[] = []
      const parser = createParser({ onEvent: (event) => events.push(event) })
      for (const chunk of split.chunks) parser.feed(decoder.decode(chunk, { stream: true }))
      expect(withoutIds(events)).toEqual(withoutIds(wholeEvents))
    })
  }

  it('splits a non-stream body too', async () => {
    const raw = await rawRequest(`${upstream.url}/v1/messages`, {
      body: JSON.stringify(messagesBody),
      headers: mockFaultHeaders({ split: true }),
    })
    expect(raw.chunks.length).toBeGreaterThan(1)
    expect(JSON.parse(raw.body.toString('utf8'))).toMatchObject({ content: [{ text: mockText() }] })
  })
})

describe('x-mock-hang and client aborts', () => {
  it('sends one content chunk and then nothing until the client gives up', async () => {
    const controller = new AbortController()
    const res = await fetch(`${upstream.url}/v1/chat/completions`, {
      method: 'POST',
      headers: mockFaultHeaders({ hang: true }),
      body: JSON.stringify({ ...chatBody, stream: true }),
      signal: controller.signal,
    })
    if (!res.body) throw new Error('no body')
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let text = ''
    while (parseSse(text).length < 2) {
      const { value, done } = await reader.read()
      if (done) throw new Error('a hung stream ended')
      text += decoder.decode(value, { stream: true })
    }
    const more = await Promise.race([
      reader.read().then(() => 'data' as const, () => 'error' as const),
      new Promise<'silence'>((resolve) => setTimeout(() => resolve('silence'), 200)),
    ])
    expect(more).toBe('silence')
    controller.abort()
    expect((await fetch(`${upstream.url}/health`)).status).toBe(200)
  })

  it('close() ends hung, slow and idle keep-alive connections without waiting', async () => {
    const own = await startMockUpstream()
    const hung = fetch(`${own.url}/v1/chat/completions`, {
      method: 'POST',
      headers: mockFaultHeaders({ hang: true }),
      body: JSON.stringify(chatBody),
    })
    const hungHeaders = await hung
    expect(hungHeaders.status).toBe(200)
    const slow = await postJson(own, '/v1/messages', { ...messagesBody, stream: true }, { chunkIntervalMs: 60_000 })
    const slowBody = readUntilError(slow)
    await (await fetch(`${own.url}/health`)).text()

    await own.close()
    await expect(hungHeaders.text()).rejects.toThrow()
    expect((await slowBody).error).toBeInstanceOf(Error)
  })

  it('survives a client that aborts mid-stream and while waiting for headers', async () => {
    const controller = new AbortController()
    const res = await postJson(upstream, '/v1/chat/completions', { ...chatBody, stream: true }, { chunkIntervalMs: 60_000 })
    void res.body?.cancel()
    const early = fetch(`${upstream.url}/v1/chat/completions`, {
      method: 'POST',
      headers: mockFaultHeaders({ latencyMs: 60_000 }),
      body: JSON.stringify(chatBody),
      signal: controller.signal,
    })
    setTimeout(() => controller.abort(), 20)
    await expect(early).rejects.toThrow()
    expect((await fetch(`${upstream.url}/health`)).status).toBe(200)
  })
})

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!hasOpenssl)('tls', () => {
  let dir: string
  let cert: string
  let secure: MockUpstream

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mock-upstream-tls-'))
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    )
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
    secure = await startMockUpstream({ tls: { key: readFileSync(join(dir, 'key.pem')), cert } })
  })
  afterAll(async () => {
    await secure.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves HTTPS streams', async () => {
    expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const raw = await rawRequest(`${secure.url}/v1/messages`, { body: JSON.stringify({ ...messagesBody, stream: true }), ca: cert })
    expect(raw.status).toBe(200)
    expect(parseSse(raw.body.toString('utf8')).at(-1)?.event).toBe('message_stop')
  })
})

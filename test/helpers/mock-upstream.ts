/**
 * A mock LLM upstream for tests and benchmarks. It speaks just enough of the
 * OpenAI (Chat Completions, Responses, Embeddings), Anthropic (Messages) and
 * Gemini (generateContent, streamGenerateContent) wire formats for the real
 * SDKs and the proxy's parsers, with fixed usage numbers (`MOCK_USAGE`) so a
 * test can compare a captured span with `expectedUsage(kind)`.
 *
 * Routes match on the path's end, so any prefix works (`/v1/chat/completions`,
 * `/openai/v1/chat/completions`, `/openai/deployments/x/chat/completions`):
 *   POST …/chat/completions   POST …/responses   POST …/embeddings
 *   POST …/messages           POST …/models/<m>:generateContent
 *   POST …/models/<m>:streamGenerateContent[?alt=sse]
 *   GET  /health → 200 "ok";  anything else → 404 JSON.
 * A body that is not a JSON object gets a 400 in the provider's error shape.
 *
 * Faults are chosen per request with `x-mock-*` request headers, so a test sets
 * them on its client and the proxy under test forwards them like any header
 * (`mockFaultHeaders()` builds them):
 *
 * - `x-mock-latency-ms: <ms>` — wait before sending the status line, for
 *   latency and first-byte timeouts.
 * - `x-mock-chunk-interval-ms: <ms>` (default 0) — in a stream, every content
 *   chunk after the first, and the closing events, wait this long after the
 *   previous one; the opening events go out with the headers, so TTFT is the
 *   latency alone.
 * - `x-mock-chunks: <n>` (default 5) — content pieces of the answer; the
 *   non-stream text is the same n words joined.
 * - `x-mock-status: <code ≥ 400>` — reply with this status and the provider's
 *   error body (OpenAI `{error:{message,type,code}}`, Anthropic
 *   `{type:"error",error:{type,message}}`, Gemini `{error:{code,message,status}}`);
 *   429 also sends `retry-after: 1`.
 * - `x-mock-reset-after-chunks: <n>` — stream: send the opening events and n
 *   content chunks, then destroy the socket mid-body (the client sees a
 *   truncated chunked body: an upstream reset). Non-stream: 0 destroys the
 *   socket before any response byte; n ≥ 1 sends the headers and half the body
 *   first.
 * - `x-mock-encoding: gzip | br | deflate` — compress the body; a stream is
 *   flushed after every event so it still trickles.
 * - `x-mock-split: 1` — write every event (or non-stream body) in several small
 *   writes 1 ms apart, cut inside a multi-byte UTF-8 character, mid-event and
 *   between the event's final newlines, so reassembly bugs show.
 * - `x-mock-hang: 1` — send the headers (stream: the opening events and one
 *   content chunk) and never finish, for timeout tests.
 * - `x-mock-stall-ms: <ms>` — with `x-mock-hang`, block this whole process's
 *   event loop for <ms> right after the last write (a starved test process);
 *   only meaningful for a proxy running in the same process as the mock.
 * - `x-mock-id: <n>` — use n as the response id instead of the next counter
 *   value, so two answers are byte-identical.
 * - `x-mock-response-model-suffix: <s>` — append s to the model the response
 *   names (`gpt-4o` → `gpt-4o-2024-08-06`), as providers resolve aliases.
 *
 * The answer text mixes in non-ASCII ("héllo wörld 🚀 日本 …") so byte/char
 * confusion in a tap shows up. A reset wins over a hang; a status fault wins
 * over both.
 */
import { calcPrice } from '@pydantic/genai-prices'
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import {
  brotliCompressSync,
  constants as zlibConstants,
  createBrotliCompress,
  createDeflate,
  createGzip,
  deflateSync,
  gzipSync,
  type BrotliCompress,
  type Deflate,
  type Gzip,
} from 'node:zlib'
import type { UsageCounts } from '../../proxy/types.ts'

export interface RecordedRequest {
  method: string
  /** Path with query string, as the client sent it. */
  path: string
  headers: IncomingHttpHeaders
  /** The whole request body, as received (not decoded). */
  body: Buffer
}

export interface MockUpstream {
  /** `http://127.0.0.1:<port>` (or `https://` with `tls`), no trailing slash. */
  url: string
  port: number
  /** Every request in arrival order, appended once its body has been read. */
  requests: RecordedRequest[]
  /** TCP connections currently open to the mock (a leaked upstream socket shows here). */
  openSockets(): number
  /** Stops listening and destroys every open socket, hung streams included. */
  close(): Promise<void>
}

export interface MockUpstreamOptions {
  /** Serve HTTPS with this key pair instead of HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer }
  /** @default 0 (any free port) */
  port?: number
  /**
   * Keep every request in `requests`. A benchmark turns this off so a long run
   * does not grow the heap.
   * @default true
   */
  record?: boolean
}

/** API kinds the mock speaks, named like the span's `endpoint`. */
export type MockApiKind = 'chat' | 'responses' | 'embeddings' | 'messages' | 'generate'

/**
 * Usage every response reports, in each provider's own shape. Cached,
 * reasoning and cache-write counts are non-zero so normalisation is exercised.
 * In an Anthropic stream `message_start` says `output_tokens: 1` and
 * `message_delta` the final 70; in a Gemini stream `candidatesTokenCount`
 * grows chunk by chunk and the last chunk carries these numbers.
 */
export const MOCK_USAGE = {
  chat: {
    prompt_tokens: 120,
    completion_tokens: 48,
    total_tokens: 168,
    prompt_tokens_details: { cached_tokens: 64 },
    completion_tokens_details: { reasoning_tokens: 16 },
  },
  responses: {
    input_tokens: 150,
    output_tokens: 60,
    total_tokens: 210,
    input_tokens_details: { cached_tokens: 96 },
    output_tokens_details: { reasoning_tokens: 20 },
  },
  embeddings: { prompt_tokens: 8, total_tokens: 8 },
  messages: {
    input_tokens: 40,
    cache_creation_input_tokens: 30,
    cache_read_input_tokens: 50,
    output_tokens: 70,
  },
  generate: {
    promptTokenCount: 110,
    cachedContentTokenCount: 40,
    candidatesTokenCount: 35,
    thoughtsTokenCount: 25,
    totalTokenCount: 170,
  },
} as const

/**
 * The usage a correct parser derives from `MOCK_USAGE`, with the contract's
 * semantics (shared/DESIGN.md "Token semantics"): input counts cached and
 * cache-write tokens, output counts reasoning, and a count the provider does
 * not report is null.
 * @example expect(span.input_tokens).toBe(expectedUsage('messages').input_tokens) // 120
 */
export function expectedUsage(kind: MockApiKind): UsageCounts {
  switch (kind) {
    case 'chat': {
      const u = MOCK_USAGE.chat
      return {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens,
        cached_input_tokens: u.prompt_tokens_details.cached_tokens,
        cache_write_tokens: null,
        reasoning_tokens: u.completion_tokens_details.reasoning_tokens,
      }
    }
    case 'responses': {
      const u = MOCK_USAGE.responses
      return {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cached_input_tokens: u.input_tokens_details.cached_tokens,
        cache_write_tokens: null,
        reasoning_tokens: u.output_tokens_details.reasoning_tokens,
      }
    }
    case 'embeddings':
      // An embedding produces no output tokens: a known zero, not an unknown.
      return {
        input_tokens: MOCK_USAGE.embeddings.prompt_tokens,
        output_tokens: 0,
        cached_input_tokens: null,
        cache_write_tokens: null,
        reasoning_tokens: null,
      }
    case 'messages': {
      const u = MOCK_USAGE.messages
      return {
        input_tokens: u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens,
        output_tokens: u.output_tokens,
        cached_input_tokens: u.cache_read_input_tokens,
        cache_write_tokens: u.cache_creation_input_tokens,
        reasoning_tokens: null,
      }
    }
    case 'generate': {
      const u = MOCK_USAGE.generate
      return {
        input_tokens: u.promptTokenCount,
        output_tokens: u.candidatesTokenCount + u.thoughtsTokenCount,
        cached_input_tokens: u.cachedContentTokenCount,
        cache_write_tokens: null,
        reasoning_tokens: u.thoughtsTokenCount,
      }
    }
  }
}

/** Content chunks per answer unless `x-mock-chunks` says otherwise. */
export const MOCK_DEFAULT_CHUNKS = 5

// Multi-byte on purpose: 2-, 3- and 4-byte UTF-8 sequences.
const WORDS = ['héllo', 'wörld', '🚀', '日本', 'naïve', 'café', 'Ωmega', '✓'] as const

/** The text of content chunk `index` (0-based) as the mock streams it. */
export function mockChunkText(index: number): string {
  const word = WORDS[index % WORDS.length] ?? ''
  return index === 0 ? word : ` ${word}`
}

/**
 * The whole answer text for `chunks` content chunks.
 * @example mockText() // 'héllo wörld 🚀 日本 naïve'
 */
export function mockText(chunks: number = MOCK_DEFAULT_CHUNKS): string {
  let text = ''
  for (let i = 0; i < chunks; i++) text += mockChunkText(i)
  return text
}

export type MockEncoding = 'gzip' | 'br' | 'deflate'

/** Faults for one request; see the header list at the top of this file. */
export interface MockFaults {
  latencyMs?: number
  chunkIntervalMs?: number
  chunks?: number
  status?: number
  resetAfterChunks?: number
  encoding?: MockEncoding
  split?: boolean
  hang?: boolean
  stallMs?: number
  responseModelSuffix?: string
}

/**
 * The `x-mock-*` request headers that ask for `faults`.
 * @example fetch(url, { method: 'POST', headers: { ...mockFaultHeaders({ status: 429 }) }, body })
 */
export function mockFaultHeaders(faults: MockFaults): Record<string, string> {
  const headers: Record<string, string> = {}
  if (faults.latencyMs !== undefined) headers['x-mock-latency-ms'] = String(faults.latencyMs)
  if (faults.chunkIntervalMs !== undefined) headers['x-mock-chunk-interval-ms'] = String(faults.chunkIntervalMs)
  if (faults.chunks !== undefined) headers['x-mock-chunks'] = String(faults.chunks)
  if (faults.status !== undefined) headers['x-mock-status'] = String(faults.status)
  if (faults.resetAfterChunks !== undefined) headers['x-mock-reset-after-chunks'] = String(faults.resetAfterChunks)
  if (faults.encoding !== undefined) headers['x-mock-encoding'] = faults.encoding
  if (faults.split) headers['x-mock-split'] = '1'
  if (faults.hang) headers['x-mock-hang'] = '1'
  if (faults.stallMs !== undefined) headers['x-mock-stall-ms'] = String(faults.stallMs)
  if (faults.responseModelSuffix !== undefined) headers['x-mock-response-model-suffix'] = faults.responseModelSuffix
  return headers
}

/**
 * Starts the mock on 127.0.0.1; every test closes what it started.
 * @example
 * const upstream = await startMockUpstream()
 * try { await fetch(`${upstream.url}/v1/chat/completions`, …) } finally { await upstream.close() }
 */
export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const requests: RecordedRequest[] = []
  const record = options.record ?? true
  const sockets = new Set<Socket>()
  let nextId = 1

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const exchange = new Exchange(res)
    // A client that vanishes mid-write must not surface as an unhandled 'error'.
    res.on('error', noop)
    req.on('error', noop)
    handleRequest(req, res, exchange, {
      record: (entry) => {
        if (record) requests.push(entry)
      },
      nextId: () => nextId++,
    }).catch((err: unknown) => failRequest(res, err))
  }

  const serverOptions: ServerOptions = {
    keepAlive: true,
    noDelay: true,
    // A hung stream is a feature here; Node's default 300 s cap would cut it.
    requestTimeout: 0,
  }
  const server: Server = options.tls
    ? createHttpsServer({ ...serverOptions, key: options.tls.key, cert: options.tls.cert }, onRequest)
    : createHttpServer(serverOptions, onRequest)
  // Longer than any client pool's idle timeout, so a benchmark never reuses a
  // socket the mock is closing at that very moment (a spurious ECONNRESET).
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000

  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('mock upstream: no TCP address')
  const port = address.port

  let closing: Promise<void> | null = null
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    openSockets: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        // server.close() alone waits for keep-alive and hung sockets forever.
        for (const socket of sockets) socket.destroy()
      })
      return closing
    },
  }
}

function noop(): void {}

interface RequestContext {
  record(entry: RecordedRequest): void
  nextId(): number
}

/**
 * One request/response pair's lifetime. Every wait goes through it so that a
 * client that goes away (or close()) clears the pending timer at once.
 */
class Exchange {
  closed = false
  private readonly closeListeners = new Set<() => void>()

  constructor(res: ServerResponse) {
    res.once('close', () => {
      this.closed = true
      for (const listener of this.closeListeners) listener()
      this.closeListeners.clear()
    })
  }

  /** Calls `listener` once the response closes; returns an unsubscribe. */
  onClose(listener: () => void): () => void {
    if (this.closed) {
      listener()
      return noop
    }
    this.closeListeners.add(listener)
    return () => this.closeListeners.delete(listener)
  }

  /** Resolves true after `ms`, or false as soon as the client is gone. */
  wait(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    if (ms <= 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        off()
        resolve(true)
      }, ms)
      const off = this.onClose(() => {
        clearTimeout(timer)
        resolve(false)
      })
    })
  }

  /** Settles with `promise`, or early when the client is gone. */
  until(promise: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const off = this.onClose(resolve)
      void promise.then(() => {
        off()
        resolve()
      })
    })
  }
}

interface Faults {
  latencyMs: number
  chunkIntervalMs: number
  chunks: number
  status: number | null
  resetAfterChunks: number | null
  encoding: MockEncoding | null
  split: boolean
  hang: boolean
  stallMs: number
  responseModelSuffix: string
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

function headerInt(headers: IncomingHttpHeaders, name: string): number | null {
  const value = headerValue(headers, name)?.trim()
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null
}

function headerFlag(headers: IncomingHttpHeaders, name: string): boolean {
  const value = headerValue(headers, name)?.trim().toLowerCase()
  return value === '1' || value === 'true'
}

function readFaults(headers: IncomingHttpHeaders): Faults {
  const status = headerInt(headers, 'x-mock-status')
  const encoding = headerValue(headers, 'x-mock-encoding')?.trim().toLowerCase()
  return {
    latencyMs: headerInt(headers, 'x-mock-latency-ms') ?? 0,
    chunkIntervalMs: headerInt(headers, 'x-mock-chunk-interval-ms') ?? 0,
    chunks: headerInt(headers, 'x-mock-chunks') ?? MOCK_DEFAULT_CHUNKS,
    status: status !== null && status >= 400 && status <= 599 ? status : null,
    resetAfterChunks: headerInt(headers, 'x-mock-reset-after-chunks'),
    encoding: encoding === 'gzip' || encoding === 'br' || encoding === 'deflate' ? encoding : null,
    split: headerFlag(headers, 'x-mock-split'),
    hang: headerFlag(headers, 'x-mock-hang'),
    stallMs: headerInt(headers, 'x-mock-stall-ms') ?? 0,
    responseModelSuffix: headerValue(headers, 'x-mock-response-model-suffix') ?? '',
  }
}

type ErrorFamily = 'openai' | 'anthropic' | 'gemini'

interface Route {
  kind: MockApiKind
  /** From the path: a Gemini model, or an Azure deployment. */
  pathModel: string | null
  /** Gemini only: streamGenerateContent. */
  geminiStream: boolean
}

function matchRoute(method: string, pathname: string): Route | null {
  if (method !== 'POST') return null
  const gemini = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(pathname)
  if (gemini) {
    return {
      kind: 'generate',
      pathModel: decodeURIComponent(gemini[1] ?? ''),
      geminiStream: gemini[2] === 'streamGenerateContent',
    }
  }
  // Azure puts the model in the path and may leave it out of the body.
  const deployment = /\/deployments\/([^/]+)\//.exec(pathname)?.[1]
  const pathModel = deployment === undefined ? null : decodeURIComponent(deployment)
  if (pathname.endsWith('/chat/completions')) return { kind: 'chat', pathModel, geminiStream: false }
  if (pathname.endsWith('/responses')) return { kind: 'responses', pathModel, geminiStream: false }
  if (pathname.endsWith('/embeddings')) return { kind: 'embeddings', pathModel, geminiStream: false }
  if (pathname.endsWith('/messages')) return { kind: 'messages', pathModel, geminiStream: false }
  return null
}

function errorFamily(kind: MockApiKind): ErrorFamily {
  if (kind === 'messages') return 'anthropic'
  if (kind === 'generate') return 'gemini'
  return 'openai'
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function parseJsonObject(body: Buffer): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'))
    return isRecord(parsed) ? parsed : null
  } catch {
    return null
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let complete = false
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.once('end', () => {
      complete = true
      resolve(Buffer.concat(chunks))
    })
    req.once('error', reject)
    req.once('close', () => {
      if (!complete) reject(new Error('client went away while sending the body'))
    })
  })
}

/** What one successful call answers with, built from its request. */
interface Call {
  kind: MockApiKind
  id: number
  /** The model the response names: request model + suffix. */
  model: string
  request: Record<string, unknown>
  faults: Faults
  texts: string[]
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  exchange: Exchange,
  context: RequestContext,
): Promise<void> {
  const method = req.method ?? 'GET'
  const path = req.url ?? '/'
  const body = await readBody(req)
  context.record({ method, path, headers: { ...req.headers }, body })
  const url = new URL(path, 'http://mock.invalid')

  if (method === 'GET' && url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 2 })
    res.end('ok')
    return
  }
  const route = matchRoute(method, url.pathname)
  if (!route) {
    sendPlainJson(res, 404, {
      error: { message: `mock upstream has no route for ${method} ${url.pathname}`, type: 'not_found_error', code: 'not_found' },
    })
    return
  }

  const faults = readFaults(req.headers)
  const family = errorFamily(route.kind)
  // A fixed id makes two answers byte-identical, so a test can compare direct and proxied bytes.
  const fixedId = Number(req.headers['x-mock-id'])
  const id = Number.isInteger(fixedId) && fixedId > 0 ? fixedId : context.nextId()
  if (!(await exchange.wait(faults.latencyMs))) return

  if (faults.status !== null) {
    const error = providerError(family, faults.status, `mock upstream: injected status ${faults.status}`, id)
    sendJson(res, exchange, error.status, error.body, error.headers, { ...faults, split: false, hang: false, resetAfterChunks: null })
    return
  }
  const request = parseJsonObject(body)
  if (!request) {
    const error = providerError(family, 400, 'mock upstream: request body is not a JSON object', id)
    sendJson(res, exchange, error.status, error.body, error.headers, { ...faults, split: false, hang: false, resetAfterChunks: null })
    return
  }

  const requestModel = typeof request.model === 'string' ? request.model : (route.pathModel ?? 'mock-model')
  const call: Call = {
    kind: route.kind,
    id,
    model: `${route.kind === 'generate' ? (route.pathModel ?? requestModel) : requestModel}${faults.responseModelSuffix}`,
    request,
    faults,
    texts: Array.from({ length: faults.chunks }, (_, i) => mockChunkText(i)),
  }
  const stream = route.kind === 'generate' ? route.geminiStream : route.kind !== 'embeddings' && request.stream === true

  if (!stream) {
    if (faults.resetAfterChunks === 0) {
      res.destroy()
      return
    }
    sendJson(res, exchange, 200, nonStreamBody(call), providerHeaders(family, id), faults)
    return
  }
  const script =
    route.kind === 'chat'
      ? chatStream(call)
      : route.kind === 'responses'
        ? responsesStream(call)
        : route.kind === 'messages'
          ? messagesStream(call)
          : geminiStream(call, url.searchParams.get('alt') === 'sse')
  await sendStream(res, exchange, script, providerHeaders(family, id), faults)
}

function failRequest(res: ServerResponse, err: unknown): void {
  if (res.headersSent || res.destroyed || !res.socket || res.socket.destroyed) {
    res.destroy()
    return
  }
  sendPlainJson(res, 500, {
    error: { message: `mock upstream bug: ${err instanceof Error ? err.message : String(err)}`, type: 'server_error', code: 'mock_bug' },
  })
}

function providerHeaders(family: ErrorFamily, id: number): OutgoingHttpHeaders {
  if (family === 'openai') return { 'x-request-id': `req_mock_${id}` }
  if (family === 'anthropic') return { 'request-id': `req_mock_${id}` }
  return {}
}

// ---------------------------------------------------------------- errors

const OPENAI_ERRORS: Record<number, [type: string, code: string]> = {
  400: ['invalid_request_error', 'invalid_request'],
  401: ['invalid_request_error', 'invalid_api_key'],
  403: ['invalid_request_error', 'permission_denied'],
  404: ['invalid_request_error', 'not_found'],
  429: ['requests', 'rate_limit_exceeded'],
}
// https://docs.anthropic.com/en/api/errors
const ANTHROPIC_ERRORS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  503: 'overloaded_error',
  529: 'overloaded_error',
}
// https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
const GEMINI_ERRORS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
}

function providerError(
  family: ErrorFamily,
  status: number,
  message: string,
  id: number,
): { status: number; body: unknown; headers: OutgoingHttpHeaders } {
  const headers: OutgoingHttpHeaders = providerHeaders(family, id)
  if (status === 429) headers['retry-after'] = '1'
  if (family === 'openai') {
    const [type, code] = OPENAI_ERRORS[status] ?? (status >= 500 ? ['server_error', 'server_error'] : ['invalid_request_error', 'invalid_request'])
    return { status, headers, body: { error: { message, type, param: null, code } } }
  }
  if (family === 'anthropic') {
    const type = ANTHROPIC_ERRORS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error')
    return { status, headers, body: { type: 'error', error: { type, message }, request_id: `req_mock_${id}` } }
  }
  const geminiStatus = GEMINI_ERRORS[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT')
  return { status, headers, body: { error: { code: status, message, status: geminiStatus } } }
}

// ---------------------------------------------------------------- bodies

/** Fixed so that two runs produce the same bytes. */
const CREATED_AT = 1_700_000_000

function nonStreamBody(call: Call): unknown {
  const text = call.texts.join('')
  switch (call.kind) {
    case 'chat':
      return {
        id: `chatcmpl-mock-${call.id}`,
        object: 'chat.completion',
        created: CREATED_AT,
        model: call.model,
        system_fingerprint: 'fp_mock',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text, refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage: MOCK_USAGE.chat,
      }
    case 'responses':
      return responseObject(call, 'completed', text)
    case 'embeddings':
      return embeddingsBody(call)
    case 'messages':
      return {
        id: `msg_mock_${call.id}`,
        type: 'message',
        role: 'assistant',
        model: call.model,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: MOCK_USAGE.messages,
      }
    case 'generate':
      return geminiChunk(call, text, MOCK_USAGE.generate, 'STOP')
  }
}

function responseObject(call: Call, status: 'in_progress' | 'completed', text: string): Record<string, unknown> {
  const completed = status === 'completed'
  return {
    id: `resp_mock_${call.id}`,
    object: 'response',
    created_at: CREATED_AT,
    status,
    error: null,
    incomplete_details: null,
    model: call.model,
    output: completed ? [responseMessageItem(call, 'completed', text)] : [],
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: completed ? MOCK_USAGE.responses : null,
  }
}

function responseMessageItem(call: Call, status: 'in_progress' | 'completed', text: string | null): Record<string, unknown> {
  return {
    id: `msg_mock_${call.id}`,
    type: 'message',
    status,
    role: 'assistant',
    content: text === null ? [] : [{ type: 'output_text', text, annotations: [] }],
  }
}

function embeddingsBody(call: Call): unknown {
  const input = call.request.input
  const count = Array.isArray(input) && input.length > 0 ? input.length : 1
  // The OpenAI SDK asks for base64 by default and decodes it itself.
  const base64 = call.request.encoding_format === 'base64'
  return {
    object: 'list',
    data: Array.from({ length: count }, (_, index) => {
      const vector = Array.from({ length: 8 }, (_, j) => Math.round(Math.sin(index * 8 + j + 1) * 1000) / 1000)
      return {
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
      }
    }),
    model: call.model,
    usage: MOCK_USAGE.embeddings,
  }
}

type GeminiUsage = { [K in keyof typeof MOCK_USAGE.generate]: number }

function geminiChunk(call: Call, text: string, usage: GeminiUsage, finishReason: 'STOP' | null): unknown {
  return {
    candidates: [
      {
        content: { parts: [{ text }], role: 'model' },
        ...(finishReason === null ? {} : { finishReason }),
        index: 0,
      },
    ],
    usageMetadata: usage,
    modelVersion: call.model,
    responseId: `mock-${call.id}`,
  }
}

// ---------------------------------------------------------------- streams

/** A stream as protocol units: each string is one SSE event (or JSON array piece). */
interface StreamScript {
  contentType: string
  /** Sent with the headers: role chunk, message_start, response.created … */
  opening: string[]
  /** One per content chunk. */
  content: string[]
  /** finish_reason, usage, [DONE], message_stop … */
  closing: string[]
}

function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`
}

function sseEvent(type: string, payload: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`
}

const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8'

function chatStream(call: Call): StreamScript {
  const streamOptions = call.request.stream_options
  const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true
  const chunk = (choices: unknown[], usage?: unknown): string =>
    sseData({
      id: `chatcmpl-mock-${call.id}`,
      object: 'chat.completion.chunk',
      created: CREATED_AT,
      model: call.model,
      system_fingerprint: 'fp_mock',
      choices,
      // OpenAI sends `usage: null` on every chunk once usage was asked for.
      ...(includeUsage ? { usage: usage ?? null } : {}),
    })
  const delta = (content: string): unknown[] => [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }]
  return {
    contentType: SSE_CONTENT_TYPE,
    opening: [chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])],
    content: call.texts.map((text) => chunk(delta(text))),
    closing: [
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]),
      ...(includeUsage ? [chunk([], MOCK_USAGE.chat)] : []),
      'data: [DONE]\n\n',
    ],
  }
}

function responsesStream(call: Call): StreamScript {
  let sequenceNumber = 0
  const event = (type: string, fields: Record<string, unknown>): string =>
    sseEvent(type, { type, sequence_number: sequenceNumber++, ...fields })
  const itemId = `msg_mock_${call.id}`
  const text = call.texts.join('')
  const part = (partText: string): unknown => ({ type: 'output_text', text: partText, annotations: [] })
  return {
    contentType: SSE_CONTENT_TYPE,
    opening: [
      event('response.created', { response: responseObject(call, 'in_progress', '') }),
      event('response.in_progress', { response: responseObject(call, 'in_progress', '') }),
      event('response.output_item.added', { output_index: 0, item: responseMessageItem(call, 'in_progress', null) }),
      event('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: part('') }),
    ],
    content: call.texts.map((delta) =>
      event('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta, logprobs: [] }),
    ),
    closing: [
      event('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] }),
      event('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part: part(text) }),
      event('response.output_item.done', { output_index: 0, item: responseMessageItem(call, 'completed', text) }),
      event('response.completed', { response: responseObject(call, 'completed', text) }),
    ],
  }
}

// https://docs.anthropic.com/en/docs/build-with-claude/streaming#event-types
function messagesStream(call: Call): StreamScript {
  const usage = MOCK_USAGE.messages
  return {
    contentType: SSE_CONTENT_TYPE,
    opening: [
      sseEvent('message_start', {
        type: 'message_start',
        message: {
          id: `msg_mock_${call.id}`,
          type: 'message',
          role: 'assistant',
          model: call.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: {
            input_tokens: usage.input_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            output_tokens: 1,
          },
        },
      }),
      sseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      sseEvent('ping', { type: 'ping' }),
    ],
    content: call.texts.map((text) =>
      sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
    ),
    closing: [
      sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
      // Only the output count: a parser must keep message_start's input counts.
      sseEvent('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: usage.output_tokens },
      }),
      sseEvent('message_stop', { type: 'message_stop' }),
    ],
  }
}

function geminiStream(call: Call, sse: boolean): StreamScript {
  const final = MOCK_USAGE.generate
  const chunkCount = call.texts.length
  // Gemini reports usage on every chunk, cumulative, thoughts counted up front.
  const usageAfter = (done: number): GeminiUsage => {
    const candidates = Math.round((final.candidatesTokenCount * done) / chunkCount)
    return {
      promptTokenCount: final.promptTokenCount,
      cachedContentTokenCount: final.cachedContentTokenCount,
      candidatesTokenCount: candidates,
      thoughtsTokenCount: final.thoughtsTokenCount,
      totalTokenCount: final.promptTokenCount + candidates + final.thoughtsTokenCount,
    }
  }
  const elements = [
    ...call.texts.map((text, i) => geminiChunk(call, text, usageAfter(i + 1), null)),
    geminiChunk(call, '', final, 'STOP'),
  ]
  // Gemini frames SSE with CRLF, and the array form as `[{…}\n,\r\n{…}\n]`.
  const pieces = elements.map((element, i) =>
    sse ? `data: ${JSON.stringify(element)}\r\n\r\n` : `${i === 0 ? '[' : '\n,\r\n'}${JSON.stringify(element)}`,
  )
  const closing = pieces.slice(chunkCount)
  if (!sse) closing.push('\n]')
  return {
    contentType: sse ? 'text/event-stream' : 'application/json; charset=UTF-8',
    opening: [],
    content: pieces.slice(0, chunkCount),
    closing,
  }
}

// ---------------------------------------------------------------- writing

/** 1 ms, not setImmediate, so the pieces reach the client as separate reads. */
const SPLIT_DELAY_MS = 1

/**
 * Cut points: inside the first multi-byte UTF-8 character, mid-buffer, and
 * before the last byte (between an SSE event's two terminating newlines).
 */
function splitPieces(bytes: Buffer): Buffer[] {
  const cuts = new Set<number>([Math.floor(bytes.length / 2), bytes.length - 1])
  const leadByte = bytes.findIndex((byte) => byte >= 0xc0)
  if (leadByte >= 0) cuts.add(leadByte + 1)
  const sorted = [...cuts].filter((cut) => cut > 0 && cut < bytes.length).sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let start = 0
  for (const cut of sorted) {
    pieces.push(bytes.subarray(start, cut))
    start = cut
  }
  pieces.push(bytes.subarray(start))
  return pieces
}

function encodeSync(bytes: Buffer, encoding: MockEncoding | null): Buffer {
  if (encoding === 'gzip') return gzipSync(bytes)
  if (encoding === 'br') return brotliCompressSync(bytes)
  if (encoding === 'deflate') return deflateSync(bytes)
  return bytes
}

function sendPlainJson(res: ServerResponse, status: number, payload: unknown): void {
  const bytes = Buffer.from(JSON.stringify(payload))
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length })
  res.end(bytes)
}

function sendJson(
  res: ServerResponse,
  exchange: Exchange,
  status: number,
  payload: unknown,
  headers: OutgoingHttpHeaders,
  faults: Faults,
): void {
  const bytes = encodeSync(Buffer.from(JSON.stringify(payload)), faults.encoding)
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': bytes.length,
    ...(faults.encoding ? { 'content-encoding': faults.encoding } : {}),
  })
  if (faults.resetAfterChunks !== null) {
    // Half a body under a content-length: the client must see it as cut short.
    res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => res.destroy())
    return
  }
  if (faults.hang) {
    res.flushHeaders()
    return
  }
  if (!faults.split) {
    res.end(bytes)
    return
  }
  void (async () => {
    for (const [i, piece] of splitPieces(bytes).entries()) {
      if (i > 0 && !(await exchange.wait(SPLIT_DELAY_MS))) return
      res.write(piece)
    }
    res.end()
  })()
}

async function sendStream(
  res: ServerResponse,
  exchange: Exchange,
  script: StreamScript,
  headers: OutgoingHttpHeaders,
  faults: Faults,
): Promise<void> {
  res.writeHead(200, {
    ...headers,
    'content-type': script.contentType,
    'cache-control': 'no-cache',
    ...(faults.encoding ? { 'content-encoding': faults.encoding } : {}),
  })
  res.flushHeaders()
  const writer = new StreamWriter(res, exchange, faults.encoding, faults.split)

  for (const event of script.opening) if (!(await writer.write(event))) return
  for (const [i, event] of script.content.entries()) {
    if (faults.resetAfterChunks === i) return writer.reset()
    if (faults.hang && faults.resetAfterChunks === null && i === 1) return stallEventLoop(faults.stallMs)
    if (i > 0 && !(await exchange.wait(faults.chunkIntervalMs))) return
    if (!(await writer.write(event))) return
  }
  if (faults.resetAfterChunks !== null) return writer.reset()
  if (faults.hang) return
  if (script.content.length > 0 && !(await exchange.wait(faults.chunkIntervalMs))) return
  for (const event of script.closing) if (!(await writer.write(event))) return
  writer.end()
}

/** Blocks this process for `ms`: the event loop, every server in it, its timers. */
function stallEventLoop(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // busy: nothing else in this process may run
  }
}

/**
 * Writes a stream event by event, through a compressor when asked. Tracks
 * writes not yet handed to the socket, so a reset happens only after the
 * partial data really left; otherwise the client might see no data at all.
 */
class StreamWriter {
  private readonly compressor: Gzip | Deflate | BrotliCompress | null
  private readonly flushKind: number
  private pendingWrites = 0
  private readonly drained = new Set<() => void>()

  constructor(
    private readonly res: ServerResponse,
    private readonly exchange: Exchange,
    encoding: MockEncoding | null,
    private readonly split: boolean,
  ) {
    this.compressor =
      encoding === 'gzip' ? createGzip() : encoding === 'br' ? createBrotliCompress() : encoding === 'deflate' ? createDeflate() : null
    // A sync flush ends the deflate block so the client can decode what it has.
    this.flushKind = encoding === 'br' ? zlibConstants.BROTLI_OPERATION_FLUSH : zlibConstants.Z_SYNC_FLUSH
    const compressor = this.compressor
    if (compressor) {
      compressor.on('data', (chunk: Buffer) => this.writeRaw(chunk))
      compressor.once('end', () => res.end())
      compressor.on('error', () => res.destroy())
      exchange.onClose(() => compressor.destroy())
    }
  }

  /** One event, split if asked; false once the client is gone. */
  async write(text: string): Promise<boolean> {
    const bytes = Buffer.from(text, 'utf8')
    const pieces = this.split ? splitPieces(bytes) : [bytes]
    for (const [i, piece] of pieces.entries()) {
      if (i > 0 && !(await this.exchange.wait(SPLIT_DELAY_MS))) return false
      if (this.exchange.closed) return false
      await this.writeBytes(piece)
    }
    return !this.exchange.closed
  }

  end(): void {
    if (this.compressor) this.compressor.end()
    else this.res.end()
  }

  /** Destroys the connection once everything written so far has left. */
  async reset(): Promise<void> {
    await this.settle()
    this.res.destroy()
  }

  private writeBytes(piece: Buffer): Promise<void> {
    const compressor = this.compressor
    if (!compressor) {
      this.writeRaw(piece)
      return Promise.resolve()
    }
    compressor.write(piece)
    const flushed = new Promise<void>((resolve) => compressor.flush(this.flushKind, resolve))
    return this.exchange.until(flushed)
  }

  private writeRaw(chunk: Buffer): void {
    if (this.exchange.closed) return
    this.pendingWrites++
    this.res.write(chunk, () => {
      this.pendingWrites--
      if (this.pendingWrites === 0) {
        for (const resolve of this.drained) resolve()
        this.drained.clear()
      }
    })
  }

  private async settle(): Promise<void> {
    // Compressed output may still be on its way to writeRaw via 'data'.
    await new Promise<void>((resolve) => setImmediate(resolve))
    if (this.pendingWrites === 0) return
    await this.exchange.until(new Promise<void>((resolve) => this.drained.add(resolve)))
  }
}

/**
 * What `expectedUsage(kind)` costs on `model` at genai-prices' rates: the
 * figure a captured span's cost_usd must equal.
 */
export function expectedCost(kind: MockApiKind, model: string, providerId: string): number {
  const u = expectedUsage(kind)
  const price = calcPrice(
    {
      input_tokens: u.input_tokens ?? 0,
      output_tokens: u.output_tokens ?? 0,
      ...(u.cached_input_tokens ? { cache_read_tokens: u.cached_input_tokens } : {}),
      ...(u.cache_write_tokens ? { cache_write_tokens: u.cache_write_tokens } : {}),
    },
    model,
    { providerId },
  )
  if (!price) throw new Error(`genai-prices has no price for ${providerId}/${model}`)
  return price.total_price
}

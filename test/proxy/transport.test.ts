/**
 * The transport through the proxy, driven by curl and node:http against the
 * mock upstream: bytes pass unchanged and unbuffered, encodings and split
 * chunks are read correctly, and every way a call can fail becomes the right
 * span (and never a hung client or a leaked socket).
 */
import { execFile } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { expectedUsage, mockFaultHeaders, mockText, startMockUpstream, type MockFaults, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const run = promisify(execFile)

let upstream: MockUpstream
let tg: TestTollgate
// Long enough that a test process starved by the rest of the suite (2 cores,
// chDB inserting beside it) does not look like a silent upstream: at 400 ms a
// stall between the mock's first events and its first content chunk once cut
// the stream before its content, and the span had no TTFT.
const UPSTREAM_TIMEOUT_MS = 1000

/** A JSON body this large, written as fast as the socket takes it, by a plain upstream counting what it got to write. */
const BULK_BYTES = 48 * 1024 * 1024
const bulk = { server: null as http.Server | null, url: '', written: 0, ended: false }

beforeAll(async () => {
  upstream = await startMockUpstream()
  bulk.server = http.createServer((req, res) => {
    req.resume()
    if (req.url?.includes('headers-then-silence')) {
      // The head goes out, then nothing: the proxy's upstream timeout must still answer the client.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-upstream': 'yes' })
      res.flushHeaders()
      return
    }
    bulk.written = 0
    bulk.ended = false
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BULK_BYTES })
    const piece = Buffer.alloc(64 * 1024, 0x20)
    const pump = (): void => {
      while (bulk.written < BULK_BYTES) {
        bulk.written += piece.length
        if (!res.write(piece)) return void res.once('drain', pump)
      }
      bulk.ended = true
      res.end()
    }
    pump()
  })
  await new Promise<void>((resolve) => bulk.server!.listen(0, '127.0.0.1', resolve))
  bulk.url = `http://127.0.0.1:${(bulk.server.address() as net.AddressInfo).port}`
  tg = await startTestTollgate({
    upstreams: { openai: upstream.url, anthropic: upstream.url, gemini: upstream.url, mistral: 'http://127.0.0.1:1', groq: bulk.url },
    upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS,
  })
})
afterAll(async () => {
  await tg.close()
  await upstream.close()
  await new Promise((resolve) => bulk.server?.close(resolve))
})

const chatBody = (extra: object = {}) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...extra })
const streamBody = chatBody({ stream: true, stream_options: { include_usage: true } })
const anthropicStreamBody = JSON.stringify({ model: 'claude-sonnet-4-20250514', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'hi' }] })

/** curl's raw bytes (no decoding), status and headers. */
async function curl(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: string; body: Buffer }> {
  const args = ['-sS', '--no-buffer', '-D', '-', '-o', '-', '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', body]
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`)
  args.push(url)
  const { stdout } = await run('curl', args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
  const split = stdout.indexOf('\r\n\r\n')
  const head = stdout.subarray(0, split).toString('latin1')
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(head)?.[1]), headers: head, body: stdout.subarray(split + 4) }
}

async function newSpan(call: () => Promise<unknown>): Promise<Span> {
  const before = (await tg.spans()).length
  await call()
  return (await tg.waitForSpans(before + 1))[0]!
}

/** A streaming request through node:http that records each chunk and how it ended. */
function streamRequest(url: string, body: string, headers: Record<string, string>, opts: { abortAfterChunks?: number } = {}) {
  return new Promise<{ status: number; chunks: Buffer[]; ended: 'end' | 'error' | 'aborted' }>((resolve) => {
    const chunks: Buffer[] = []
    let status = 0
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false }, (res) => {
      status = res.statusCode ?? 0
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        if (opts.abortAfterChunks !== undefined && chunks.length >= opts.abortAfterChunks) {
          req.destroy()
          resolve({ status, chunks, ended: 'aborted' })
        }
      })
      res.on('end', () => resolve({ status, chunks, ended: 'end' }))
      res.on('error', () => resolve({ status, chunks, ended: 'error' }))
    })
    req.on('error', () => resolve({ status, chunks, ended: 'error' }))
    req.end(body)
  })
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('bytes pass through unchanged', () => {
  const cases: [string, string, string, MockFaults][] = [
    ['openai stream', '/v1/chat/completions', streamBody, {}],
    ['openai stream, split mid-UTF-8', '/v1/chat/completions', streamBody, { split: true }],
    ['openai stream, gzip', '/v1/chat/completions', streamBody, { encoding: 'gzip' }],
    ['anthropic stream, br, split', '/v1/messages', anthropicStreamBody, { encoding: 'br', split: true }],
    ['openai non-stream, deflate', '/v1/chat/completions', chatBody(), { encoding: 'deflate' }],
  ]
  for (const [name, path, body, faults] of cases) {
    it(`${name}: same status, headers and body bytes as direct; usage still read`, async () => {
      const prefix = path === '/v1/messages' ? '/anthropic' : '/openai'
      const headers = { ...mockFaultHeaders(faults), 'x-mock-id': '4242' }
      const direct = await curl(`${upstream.url}${path}`, body, headers)
      let proxied!: Awaited<ReturnType<typeof curl>>
      const span = await newSpan(async () => {
        proxied = await curl(`${tg.proxyUrl}${prefix}${path}`, body, headers)
      })
      expect(direct.body.length).toBeGreaterThan(100)
      expect(proxied.status).toBe(direct.status)
      expect(proxied.body.equals(direct.body)).toBe(true)
      for (const header of ['content-type', 'content-encoding', 'x-request-id', 'request-id']) {
        const pick = (h: string) => new RegExp(`^${header}: (.*)$`, 'im').exec(h)?.[1]
        expect(pick(proxied.headers), header).toBe(pick(direct.headers))
      }
      expect(span.error_type).toBe('none')
      expect(span.response_bytes).toBe(direct.body.length)
      expect(span.input_tokens).toBe(expectedUsage(path === '/v1/messages' ? 'messages' : 'chat').input_tokens)
      expect(span.output_tokens).toBe(expectedUsage(path === '/v1/messages' ? 'messages' : 'chat').output_tokens)
      if (faults.encoding === 'gzip') expect(zlib.gunzipSync(proxied.body).toString()).toContain('héllo')
    })
  }

  it('the path and query reach the upstream as the client sent them, escapes and dot segments alike', async () => {
    // Written on a raw socket: clients differ in what they escape, and the upstream must see what the client sent.
    const target = `/v1/./chat/completions?q=it's&quote="x"&name=caf%C3%A9&slash=%2F&curly={a}`
    const send = (port: number, path: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1')
        const body = chatBody()
        socket.write(Buffer.from(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, 'latin1'))
        let head = ''
        socket.on('data', (chunk: Buffer) => (head += chunk.toString('latin1')))
        socket.on('end', () => resolve(head.split('\r\n', 1)[0] ?? ''))
        socket.on('error', reject)
      })
    expect(await send(Number(new URL(upstream.url).port), target)).toMatch(/^HTTP\/1\.1 200/)
    const direct = upstream.requests.at(-1)!.path
    expect(direct).toBe(target)
    expect(await send(Number(new URL(tg.proxyUrl).port), `/openai${target}`)).toMatch(/^HTTP\/1\.1 200/)
    expect(upstream.requests.at(-1)!.path).toBe(direct)
  })

  it('streams chunk by chunk: the first chunk reaches the client long before the last is sent', async () => {
    const started = Date.now()
    const arrivals: number[] = []
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${tg.proxyUrl}/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...mockFaultHeaders({ chunks: 6, chunkIntervalMs: 100 }) },
      }, (res) => {
        res.on('data', () => arrivals.push(Date.now() - started))
        res.on('end', resolve)
      })
      req.on('error', reject)
      req.end(streamBody)
    })
    // 5 paced intervals of 100 ms: a buffering proxy would deliver everything at ≥ 500 ms.
    expect(arrivals[0]!).toBeLessThan(300)
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(400)
    expect(arrivals.length).toBeGreaterThanOrEqual(5)
  })
})

describe('backpressure', () => {
  it('a client that stops reading stops the upstream: the proxy holds no more than socket buffers', async () => {
    let received = 0
    const done = new Promise<void>((resolve, reject) => {
      const req = http.request(`${tg.proxyUrl}/groq/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.pause()
        // Not a byte read for 250 ms (under the 400 ms upstream timeout, which a stalled upstream socket would hit):
        // a proxy that does not pass the client's backpressure on would have read the whole body by then.
        setTimeout(() => {
          expect(bulk.ended).toBe(false)
          expect(bulk.written).toBeLessThan(BULK_BYTES / 2)
          res.on('data', (chunk: Buffer) => {
            received += chunk.length
          })
          res.on('end', resolve)
          res.resume()
        }, 250)
      })
      req.on('error', reject)
      req.end(chatBody())
    })
    await done
    expect(received).toBe(BULK_BYTES)
    expect(bulk.ended).toBe(true)
  })
})

describe('TTFT is the first content, not the first header byte', () => {
  it('a first content chunk delayed after the opening events moves TTFT', async () => {
    // Opening (role-only) chunk goes out with headers; content chunks are 150 ms apart after the first.
    const span = await newSpan(() => curl(`${tg.proxyUrl}/anthropic/v1/messages`, anthropicStreamBody, mockFaultHeaders({ latencyMs: 120, chunks: 3, chunkIntervalMs: 150 })))
    expect(span.ttft_ms!).toBeGreaterThanOrEqual(115)
    expect(span.duration_ms).toBeGreaterThanOrEqual(span.ttft_ms! + 290)
  })
})

describe('error statuses', () => {
  it('429 → rate_limited, body and retry-after passed through', async () => {
    let res!: Awaited<ReturnType<typeof curl>>
    const span = await newSpan(async () => {
      res = await curl(`${tg.proxyUrl}/openai/v1/chat/completions`, chatBody(), mockFaultHeaders({ status: 429 }))
    })
    expect(res.status).toBe(429)
    expect(res.headers).toMatch(/^retry-after: 1/im)
    expect(JSON.parse(res.body.toString()).error.code).toBe('rate_limit_exceeded')
    expect(span).toMatchObject({ status_code: 429, error_type: 'rate_limited', cost_status: 'no_usage', ttft_ms: null })
  })
  it('4xx and 5xx', async () => {
    const s400 = await newSpan(() => curl(`${tg.proxyUrl}/anthropic/v1/messages`, anthropicStreamBody, mockFaultHeaders({ status: 400 })))
    expect(s400).toMatchObject({ status_code: 400, error_type: 'http_4xx' })
    const s529 = await newSpan(() => curl(`${tg.proxyUrl}/anthropic/v1/messages`, anthropicStreamBody, mockFaultHeaders({ status: 529 })))
    expect(s529).toMatchObject({ status_code: 529, error_type: 'http_5xx' })
  })
  it('a malformed JSON body is forwarded untouched and the upstream judges it', async () => {
    const broken = '{"model": "gpt-4o", "messages": [ oops'
    let res!: Awaited<ReturnType<typeof curl>>
    const span = await newSpan(async () => {
      res = await curl(`${tg.proxyUrl}/openai/v1/chat/completions`, broken)
    })
    expect(upstream.requests.at(-1)!.body.toString()).toBe(broken)
    expect(res.status).toBe(400)
    expect(span).toMatchObject({ status_code: 400, error_type: 'http_4xx', request_model: null, request_bytes: Buffer.byteLength(broken) })
  })
})

describe('transport failures', () => {
  it('upstream reset mid-stream → upstream_reset, partial usage kept, client sees the cut', async () => {
    let result!: Awaited<ReturnType<typeof streamRequest>>
    const span = await newSpan(async () => {
      result = await streamRequest(`${tg.proxyUrl}/anthropic/v1/messages`, anthropicStreamBody, mockFaultHeaders({ resetAfterChunks: 2, chunkIntervalMs: 10 }))
    })
    expect(result.ended).toBe('error')
    expect(Buffer.concat(result.chunks).toString()).toContain('message_start')
    expect(span).toMatchObject({ status_code: 200, error_type: 'upstream_reset', stream: true })
    // message_start's input and cache counts arrived before the cut.
    expect(span.input_tokens).toBe(expectedUsage('messages').input_tokens)
    expect(span.cached_input_tokens).toBe(expectedUsage('messages').cached_input_tokens)
    expect(span.ttft_ms).not.toBeNull()
  })

  it('upstream reset before any response → 502 with a code, span upstream_reset', async () => {
    let res!: Awaited<ReturnType<typeof curl>>
    const span = await newSpan(async () => {
      res = await curl(`${tg.proxyUrl}/openai/v1/chat/completions`, chatBody(), mockFaultHeaders({ resetAfterChunks: 0 }))
    })
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body.toString()).error.code).toBe('TG_ERR_UPSTREAM_RESET')
    expect(span).toMatchObject({ status_code: 0, error_type: 'upstream_reset' })
  })

  it('client abort mid-stream → client_aborted, upstream request cancelled, no leaked socket', async () => {
    const openBefore = upstream.openSockets()
    let result!: Awaited<ReturnType<typeof streamRequest>>
    const span = await newSpan(async () => {
      result = await streamRequest(`${tg.proxyUrl}/openai/v1/chat/completions`, streamBody, mockFaultHeaders({ chunks: 50, chunkIntervalMs: 50 }), { abortAfterChunks: 2 })
    })
    expect(result.ended).toBe('aborted')
    expect(span).toMatchObject({ status_code: 200, error_type: 'client_aborted', stream: true })
    expect(span.duration_ms).toBeLessThan(2000)
    // The proxy's upstream socket for that call is closed, not left streaming into the void.
    await until(() => upstream.openSockets() <= openBefore)
    await until(() => /tollgate_in_flight_requests\{provider="openai"\} 0/.test(lastMetrics))
  })

  let lastMetrics = ''
  beforeAll(() => {
    const timer = setInterval(() => void tg.metricsText().then((t) => (lastMetrics = t)), 25)
    return () => clearInterval(timer)
  })

  it('client abort while the upstream hangs before headers → client_aborted, socket freed', async () => {
    const openBefore = upstream.openSockets()
    const span = await newSpan(async () => {
      const req = http.request(`${tg.proxyUrl}/openai/v1/chat/completions`, { method: 'POST', agent: false, headers: mockFaultHeaders({ latencyMs: 5000 }) })
      req.on('error', () => {})
      req.end(chatBody())
      await until(() => upstream.openSockets() > openBefore)
      req.destroy()
    })
    expect(span).toMatchObject({ status_code: 0, error_type: 'client_aborted' })
    await until(() => upstream.openSockets() <= openBefore)
  })

  it('no bytes before the upstream timeout → 504 and a timeout span', async () => {
    let res!: Awaited<ReturnType<typeof curl>>
    const span = await newSpan(async () => {
      res = await curl(`${tg.proxyUrl}/openai/v1/chat/completions`, chatBody(), mockFaultHeaders({ latencyMs: UPSTREAM_TIMEOUT_MS * 5 }))
    })
    expect(res.status).toBe(504)
    expect(JSON.parse(res.body.toString()).error.code).toBe('TG_ERR_UPSTREAM_TIMEOUT')
    expect(span).toMatchObject({ status_code: 0, error_type: 'timeout' })
    expect(span.duration_ms).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 5)
    expect(span.duration_ms).toBeLessThan(UPSTREAM_TIMEOUT_MS * 4)
  })

  it('a response head and then silence → 504 with the upstream head overridden by the error, as before the relay', async () => {
    const res = await fetch(`${tg.proxyUrl}/groq/v1/headers-then-silence/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody() })
    expect(res.status).toBe(504)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(res.headers.get('x-tollgate-error')).toBe('TG_ERR_UPSTREAM_TIMEOUT')
    // http-proxy set the upstream's headers before the error answer; it still carries them.
    expect(res.headers.get('x-upstream')).toBe('yes')
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TG_ERR_UPSTREAM_TIMEOUT')
  })

  it('a stream that goes silent → cut at the timeout, client not left hanging', async () => {
    let result!: Awaited<ReturnType<typeof streamRequest>>
    const span = await newSpan(async () => {
      result = await streamRequest(`${tg.proxyUrl}/openai/v1/chat/completions`, streamBody, mockFaultHeaders({ hang: true }))
    })
    expect(result.ended).toBe('error')
    expect(span).toMatchObject({ status_code: 200, error_type: 'timeout', stream: true })
    expect(span.ttft_ms).not.toBeNull()
  })

  it('a stalled process does not cut a stream whose bytes arrived in time; real silence after them still does', async () => {
    // The mock shares this process with the proxy: it writes the head, the
    // opening events and a content chunk, then blocks the event loop past the
    // timeout. Timers run before the poll phase reads the sockets, so a
    // timeout judged at once would cut bytes that were already waiting.
    let result!: Awaited<ReturnType<typeof streamRequest>>
    const span = await newSpan(async () => {
      result = await streamRequest(`${tg.proxyUrl}/openai/v1/chat/completions`, streamBody, mockFaultHeaders({ hang: true, stallMs: UPSTREAM_TIMEOUT_MS * 1.5 }))
    })
    expect(result.ended).toBe('error')
    expect(span).toMatchObject({ status_code: 200, error_type: 'timeout', stream: true })
    expect(span.ttft_ms).not.toBeNull()
    // Cut a timeout after the bytes were read, not during the stall.
    expect(span.duration_ms).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS * 2.5 - 5)
  })

  it('a stream that keeps flowing outlives the upstream timeout (the old http-proxy SSE cut-off)', async () => {
    let result!: Awaited<ReturnType<typeof streamRequest>>
    const span = await newSpan(async () => {
      result = await streamRequest(`${tg.proxyUrl}/openai/v1/chat/completions`, streamBody, mockFaultHeaders({ chunks: 8, chunkIntervalMs: UPSTREAM_TIMEOUT_MS / 4 }))
    })
    expect(result.ended).toBe('end')
    expect(span.duration_ms).toBeGreaterThan(UPSTREAM_TIMEOUT_MS * 1.5)
    expect(span).toMatchObject({ error_type: 'none', input_tokens: expectedUsage('chat').input_tokens })
  })

  it('unreachable upstream → 502 JSON and a proxy_error span', async () => {
    let res!: Awaited<ReturnType<typeof curl>>
    const span = await newSpan(async () => {
      res = await curl(`${tg.proxyUrl}/mistral/v1/chat/completions`, chatBody())
    })
    expect(res.status).toBe(502)
    expect(res.headers).toMatch(/^content-type: application\/json/im)
    expect(JSON.parse(res.body.toString()).error).toMatchObject({ code: 'TG_ERR_UPSTREAM_UNREACHABLE' })
    expect(span).toMatchObject({ provider: 'mistral', status_code: 0, error_type: 'proxy_error', request_model: 'gpt-4o-mini' })
  })

  it('unknown provider prefix → 404 JSON naming the known prefixes, no span', async () => {
    const before = (await tg.spans()).length
    const res = await curl(`${tg.proxyUrl}/nosuch/v1/chat/completions`, chatBody())
    expect(res.status).toBe(404)
    const error = JSON.parse(res.body.toString()).error
    expect(error.code).toBe('TG_ERR_UNKNOWN_PROVIDER')
    expect(error.known_prefixes).toEqual(expect.arrayContaining(['/openai/', '/anthropic/', '/gemini/', '/groq/']))
    expect((await tg.spans()).length).toBe(before)
  })

  it('reserved paths are served, never forwarded', async () => {
    const health = await fetch(`${tg.proxyUrl}/healthz`)
    expect(await health.json()).toMatchObject({ status: 'ok', in_flight: expect.any(Number), spans_dropped: 0 })
    const metrics = await fetch(`${tg.proxyUrl}/metrics`)
    expect(metrics.headers.get('content-type')).toContain('text/plain')
    expect(upstream.requests.some((r) => r.path.includes('metrics') || r.path.includes('healthz'))).toBe(false)
  })

  it('garbage on the socket gets a 400 and the proxy keeps serving', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(new URL(tg.proxyUrl).port), '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'))
      let data = ''
      socket.on('data', (d) => (data += d.toString()))
      socket.on('close', () => resolve(data))
      socket.on('error', () => resolve(data))
    })
    expect(reply).toMatch(/^HTTP\/1\.1 400/)
    expect((await fetch(`${tg.proxyUrl}/healthz`)).status).toBe(200)
  })
})

describe('streamed text survives split chunks', () => {
  it('split SSE events and UTF-8 characters reassemble for the client and the tap', async () => {
    const res = await curl(`${tg.proxyUrl}/openai/v1/chat/completions`, streamBody, mockFaultHeaders({ split: true, chunks: 4 }))
    const text = res.body
      .toString('utf8')
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => (JSON.parse(l.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? '')
      .join('')
    expect(text).toBe(mockText(4))
  })
})

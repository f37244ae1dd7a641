/**
 * Bad input in bulk, credentials in logs, and /metrics against known usage.
 */
import { Writable } from 'node:stream'
import http from 'node:http'
import net from 'node:net'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Tollgate } from '../../cli/start.ts'
import { expectedUsage, mockFaultHeaders, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

let upstream: MockUpstream
let main: TestTollgate
let tollgate: Tollgate
const logLines: string[] = []

beforeAll(async () => {
  upstream = await startMockUpstream({ record: false })
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString())
      done()
    },
  })
  main = await startTestTollgate(
    { upstreamTimeoutMs: 300, upstreams: { openai: upstream.url, anthropic: upstream.url, gemini: 'http://127.0.0.1:1' }, maxModelLabels: 20 },
    { log: pino({ level: 'debug' }, sink) },
  )
  tollgate = main.tollgate
})
afterAll(async () => {
  await main.close()
  await upstream.close()
})

const SECRETS = ['sk-live-SECRET-0123456789abcdef', 'AIzaSyLEAKED0123456789abcdefghijk', 'session=COOKIESECRET']

function send(path: string, init: { method?: string; headers?: Record<string, string>; body?: string; abortAfterMs?: number } = {}): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(`${tollgate.proxy.url}${path}`, { method: init.method ?? 'POST', headers: init.headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(-1))
    })
    req.on('error', () => resolve(-1))
    if (init.abortAfterMs !== undefined) setTimeout(() => req.destroy(), init.abortAfterMs)
    req.end(init.body)
  })
}

function rawSocket(bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(tollgate.proxy.url).port), '127.0.0.1', () => socket.end(bytes))
    socket.on('data', () => {})
    socket.on('close', () => resolve())
    socket.on('error', () => resolve())
  })
}

describe('1,000 mixed bad requests', () => {
  it('leave the proxy serving, with nothing leaked into logs or spans', async () => {
    const auth = { authorization: `Bearer ${SECRETS[0]}`, cookie: SECRETS[2]!, 'x-api-key': SECRETS[0]! }
    const kinds = [
      () => send('/nosuch/v1/chat/completions', { body: '{}' }),
      () => send('/openai/v1/chat/completions', { headers: auth, body: '{"model": "gpt-4o", oops' }),
      () => send(`/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=${SECRETS[1]}`, { body: '{}' }),
      () => send('/openai/v1/chat/completions', { headers: { ...auth, ...mockFaultHeaders({ chunks: 30, chunkIntervalMs: 5 }) }, body: '{"model":"gpt-4o","stream":true}', abortAfterMs: 15 }),
      () => send('/anthropic/v1/messages', { headers: { ...auth, ...mockFaultHeaders({ resetAfterChunks: 1 }) }, body: '{"model":"claude-sonnet-4-5","stream":true}' }),
      () => send('/openai/v1/chat/completions', { headers: mockFaultHeaders({ status: 500 }), body: '{"model":"gpt-4o"}' }),
      () => send('/openai/v1/chat/completions', { body: JSON.stringify({ model: `invented-${Math.random()}` }) }),
      () => send('/openai/v1/chat/completions', { method: 'GET' }),
      () => send('/azure/not.a.resource/openai/x', { body: '{}' }),
      () => rawSocket('GET /openai/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'),
      () => rawSocket('\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03'),
      () => send('/openai/v1/chat/completions', { headers: mockFaultHeaders({ hang: true }), body: '{"model":"gpt-4o","stream":true}' }),
    ]
    const total = 1000
    const concurrency = 50
    let next = 0
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++
          await kinds[i % kinds.length]!()
        }
      }),
    )

    // Still serving, correctly.
    const res = await fetch(`${tollgate.proxy.url}/openai/v1/chat/completions`, { method: 'POST', body: '{"model":"gpt-4o-mini"}' })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(expectedUsage('chat').input_tokens)

    // In-flight returns to zero once the hung streams hit the 300 ms upstream timeout.
    const deadline = Date.now() + 10_000
    let metrics = ''
    for (;;) {
      metrics = await (await fetch(`${tollgate.proxy.url}/metrics`)).text()
      const inFlight = [...metrics.matchAll(/^tollgate_in_flight_requests\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0)
      if (inFlight === 0) break
      if (Date.now() > deadline) throw new Error(`in-flight stuck at ${inFlight}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    // Invented model names were folded: the model label stays bounded (cap + other + unknown).
    const models = new Set([...metrics.matchAll(/^tollgate_requests_total\{[^}]*model="([^"]*)"/gm)].map((m) => m[1]))
    expect(models.size).toBeLessThanOrEqual(22)
    expect(models.has('other')).toBe(true)

    await main.waitForSpans(1)
    await tollgate.collector.batcher.forceFlush()
    const spans = JSON.stringify(await main.spans())
    const logs = logLines.join('')
    expect(logs.length).toBeGreaterThan(0)
    for (const secret of SECRETS) {
      expect(spans).not.toContain(secret)
      expect(logs).not.toContain(secret)
    }
    expect(logs).not.toContain('COOKIESECRET')
    expect(spans).toContain('"error_type":"client_aborted"')
    expect(spans).toContain('"error_type":"upstream_reset"')
    expect(spans).toContain('"error_type":"timeout"')
    expect(spans).toContain('"error_type":"proxy_error"')
  }, 120_000)
})

describe('/metrics', () => {
  let tg: TestTollgate
  beforeAll(async () => {
    tg = await startTestTollgate({ upstreams: { openai: upstream.url } })
  })
  afterAll(() => tg.close())

  it('counts requests, tokens by kind and cost from known usage', async () => {
    const tollgate = tg.tollgate
    await fetch(`${tollgate.proxy.url}/openai/v1/chat/completions`, { method: 'POST', body: '{"model":"gpt-4o"}', headers: mockFaultHeaders({ status: 503 }) }).then((r) => r.text())
    const body = JSON.stringify({ model: 'gpt-4o', stream: true, stream_options: { include_usage: true } })
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${tollgate.proxy.url}/openai/v1/chat/completions`, { method: 'POST', body })
      await res.text()
    }
    await tg.waitForSpans(4)
    const spans = (await tg.spans({ model: 'gpt-4o', status: 'ok' })).filter((s) => s.stream)
    const deadline = Date.now() + 5000
    let text = ''
    for (;;) {
      text = await (await fetch(`${tollgate.proxy.url}/metrics`)).text()
      if (/tollgate_requests_total\{provider="openai",model="gpt-4o",endpoint="chat",status_class="2xx"\} 3/.test(text) || Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const u = expectedUsage('chat')
    const value = (re: RegExp) => Number(re.exec(text)?.[1])
    expect(value(/tollgate_requests_total\{provider="openai",model="gpt-4o",endpoint="chat",status_class="2xx"\} (\S+)/)).toBe(3)
    expect(value(/tollgate_tokens_total\{provider="openai",model="gpt-4o",kind="input"\} (\S+)/)).toBe(3 * u.input_tokens!)
    expect(value(/tollgate_tokens_total\{provider="openai",model="gpt-4o",kind="output"\} (\S+)/)).toBe(3 * u.output_tokens!)
    expect(value(/tollgate_tokens_total\{provider="openai",model="gpt-4o",kind="cached_input"\} (\S+)/)).toBe(3 * u.cached_input_tokens!)
    expect(value(/tollgate_tokens_total\{provider="openai",model="gpt-4o",kind="reasoning"\} (\S+)/)).toBe(3 * u.reasoning_tokens!)
    expect(value(/tollgate_cost_usd_total\{provider="openai",model="gpt-4o"\} (\S+)/)).toBeCloseTo(3 * spans[0]!.cost_usd!, 10)
    // The 503 is timed too, but carries no first token.
    expect(value(/tollgate_request_duration_seconds_count\{provider="openai",model="gpt-4o",endpoint="chat"\} (\S+)/)).toBe(4)
    expect(value(/tollgate_time_to_first_token_seconds_count\{provider="openai",model="gpt-4o",endpoint="chat"\} (\S+)/)).toBe(3)
    expect(text).toMatch(/tollgate_request_duration_seconds_bucket\{le="600",/)
    expect(text).toMatch(/tollgate_upstream_bytes_total\{provider="openai",direction="received"\} \d+/)
    expect(text).toMatch(/tollgate_errors_total\{provider="openai",model="gpt-4o",endpoint="chat",error_type="http_5xx"\} 1$/m)
    expect(text).toMatch(/gen_ai_client_token_usage_bucket\{le="\d+",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_token_type="input"\}/)
  })
})

/**
 * The standalone proxy's HTTP sink against a real HTTP server on 127.0.0.1
 * standing in for the collector: it records every attempt and can answer
 * 503/500/400, hang or reset on demand. Real sockets and small real intervals
 * throughout; no fake timers, which would fight the sockets.
 */
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { createHttpSink, type HttpSinkOptions, type HttpSpanSink, type SpanDropCounter } from '../../proxy/sink.ts'

/** What the fake collector does with one request. */
type Answer =
  | 'ok'
  | 'hang'
  | 'reset'
  /** Stores the batch, then cuts the connection: the sink cannot know it landed. */
  | 'land-then-reset'
  | { status: number; body?: unknown; headers?: Record<string, string> }

interface Attempt {
  batchId: string
  spanIds: string[]
  contentType: string | undefined
  path: string | undefined
  answer: Answer
}

interface FakeCollector {
  url: string
  port: number
  /** Every request, in arrival order. */
  attempts: Attempt[]
  /** Stored batches, deduped by batch id as the real collector does. */
  stored: Map<string, string[]>
  /** Decides the answer to the n-th request (0-based); 'ok' by default. */
  answer: (n: number) => Answer
  close(): Promise<void>
}

const opened: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close()
})

async function startFakeCollector(port = 0): Promise<FakeCollector> {
  const collector: FakeCollector = {
    url: '',
    port: 0,
    attempts: [],
    stored: new Map(),
    answer: () => 'ok',
    close: async () => {},
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const spans = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Span[]
      const batchId = String(req.headers['x-tollgate-batch-id'])
      const answer = collector.answer(collector.attempts.length)
      collector.attempts.push({ batchId, spanIds: spans.map((s) => s.span_id), contentType: req.headers['content-type'], path: req.url, answer })
      if (answer === 'hang') return
      if (answer === 'reset') return req.socket.destroy()
      if (answer === 'ok' || answer === 'land-then-reset') {
        if (!collector.stored.has(batchId)) collector.stored.set(batchId, spans.map((s) => s.span_id))
        if (answer === 'land-then-reset') return req.socket.destroy()
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ accepted: spans.length, rejected: [] }))
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  collector.port = (server.address() as AddressInfo).port
  collector.url = `http://127.0.0.1:${collector.port}`
  collector.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  opened.push(collector)
  return collector
}

/** A port nothing listens on: connections are refused. */
async function deadPort(): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function recordingDrops(): SpanDropCounter & { calls: { reason: string; count: number }[]; total(reason: string): number } {
  const calls: { reason: string; count: number }[] = []
  return {
    calls,
    spansDropped(reason, count) {
      calls.push({ reason, count })
    },
    total: (reason) => calls.filter((c) => c.reason === reason).reduce((sum, c) => sum + c.count, 0),
  }
}

function recordingLog() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = []
  const log = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { log, lines }
}

let spanCounter = 0
function span(): Span {
  spanCounter++
  return {
    span_id: randomUUID(), started_at: '2025-01-01T00:00:00.000Z', ended_at: '2025-01-01T00:00:00.100Z', mode: 'reverse',
    provider: 'openai', endpoint: 'chat', request_model: 'gpt-4o-mini', response_model: null, stream: false, status_code: 200,
    error_type: 'none', duration_ms: 100, ttft_ms: null, input_tokens: spanCounter, output_tokens: 1, cached_input_tokens: null,
    cache_write_tokens: null, reasoning_tokens: null, cost_usd: null, cost_status: 'unpriced', finish_reason: 'stop', user: null,
    session: null, app: null, properties: {}, request_bytes: 1, response_bytes: 1, client_addr: '127.0.0.1',
  }
}

function spans(count: number): Span[] {
  return Array.from({ length: count }, span)
}

function sink(options: Partial<HttpSinkOptions> & Pick<HttpSinkOptions, 'urls' | 'drops'>): HttpSpanSink {
  const created = createHttpSink({ flushIntervalMs: 20, retryInitialDelayMs: 10, retryMaxDelayMs: 40, closeTimeoutMs: 1000, ...options })
  opened.push(created)
  return created
}

async function until(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe('batching', () => {
  it('sends every span in order, maxBatchSpans per POST, as a JSON array with a batch id', async () => {
    const collector = await startFakeCollector()
    const drops = recordingDrops()
    const s = sink({ urls: [collector.url], drops, maxBatchSpans: 10, concurrency: 1 })
    const sent = spans(35)
    for (const x of sent) s.add(x)
    await s.flush()

    expect(collector.attempts.map((a) => a.spanIds.length)).toEqual([10, 10, 10, 5])
    expect(collector.attempts.flatMap((a) => a.spanIds)).toEqual(sent.map((x) => x.span_id))
    for (const a of collector.attempts) {
      expect(a.path).toBe('/v1/spans')
      expect(a.contentType).toBe('application/json')
      expect(a.batchId).toMatch(UUID)
    }
    expect(new Set(collector.attempts.map((a) => a.batchId)).size).toBe(4)
    expect(s.queuedSpanCount()).toBe(0)
    expect(drops.calls).toEqual([])
  })

  it('drops only a span that cannot be serialised, counted as rejected; its neighbours are sent', async () => {
    const collector = await startFakeCollector()
    const drops = recordingDrops()
    const { log, lines } = recordingLog()
    const s = sink({ urls: [collector.url], drops, log })
    const [before, after] = spans(2)
    const broken = { ...span(), input_tokens: 10n } as unknown as Span
    s.add(before!)
    s.add(broken)
    s.add(after!)
    await s.flush()
    expect(collector.attempts.flatMap((a) => a.spanIds)).toEqual([before!.span_id, after!.span_id])
    expect(drops.calls).toEqual([{ reason: 'rejected', count: 1 }])
    expect(lines.some((l) => l.msg.includes('could not be serialised'))).toBe(true)
  })

  it('keeps a collector path prefix', async () => {
    const collector = await startFakeCollector()
    const s = sink({ urls: [`${collector.url}/tollgate/`], drops: recordingDrops() })
    s.add(span())
    await s.flush()
    expect(collector.attempts[0]?.path).toBe('/tollgate/v1/spans')
  })
})

describe('flushIntervalMs', () => {
  it('sends a partial batch once the interval elapses, without flush()', async () => {
    const collector = await startFakeCollector()
    const s = sink({ urls: [collector.url], drops: recordingDrops(), flushIntervalMs: 20 })
    s.add(span())
    s.add(span())
    expect(collector.attempts).toHaveLength(0)
    await until(() => collector.attempts.length === 1)
    expect(collector.attempts[0]?.spanIds).toHaveLength(2)
  })

  it('sends a full batch at once, not waiting for the interval', async () => {
    const collector = await startFakeCollector()
    const s = sink({ urls: [collector.url], drops: recordingDrops(), flushIntervalMs: 60_000, maxBatchSpans: 5 })
    for (const x of spans(5)) s.add(x)
    await until(() => collector.attempts.length === 1)
    expect(collector.attempts[0]?.spanIds).toHaveLength(5)
  })
})

describe('retries', () => {
  it('retries after 503 and 500 with the same batch id', async () => {
    const collector = await startFakeCollector()
    collector.answer = (n) => (n === 0 ? { status: 503 } : n === 1 ? { status: 500 } : 'ok')
    const drops = recordingDrops()
    const s = sink({ urls: [collector.url], drops })
    const sent = spans(3)
    for (const x of sent) s.add(x)
    await s.flush()

    expect(collector.attempts).toHaveLength(3)
    expect(new Set(collector.attempts.map((a) => a.batchId)).size).toBe(1)
    expect([...collector.stored.values()]).toEqual([sent.map((x) => x.span_id)])
    expect(drops.calls).toEqual([])
  })

  it('retries after a connection reset with the same batch id, so a landed first attempt is deduped', async () => {
    const collector = await startFakeCollector()
    collector.answer = (n) => (n === 0 ? 'reset' : n === 1 ? 'land-then-reset' : 'ok')
    const s = sink({ urls: [collector.url], drops: recordingDrops() })
    s.add(span())
    await s.flush()

    expect(collector.attempts.map((a) => a.answer)).toEqual(['reset', 'land-then-reset', 'ok'])
    expect(new Set(collector.attempts.map((a) => a.batchId)).size).toBe(1)
    expect(collector.stored.size).toBe(1)
  })

  it('gives up on an attempt after requestTimeoutMs and retries it', async () => {
    const collector = await startFakeCollector()
    collector.answer = (n) => (n === 0 ? 'hang' : 'ok')
    const s = sink({ urls: [collector.url], drops: recordingDrops(), requestTimeoutMs: 100 })
    s.add(span())
    await s.flush()
    expect(collector.attempts.map((a) => a.answer)).toEqual(['hang', 'ok'])
    expect(collector.attempts[0]?.batchId).toBe(collector.attempts[1]?.batchId)
  })

  it('honours 429 like 503 and logs the outage once, then the recovery', async () => {
    const collector = await startFakeCollector()
    collector.answer = (n) => (n < 3 ? { status: 429 } : 'ok')
    const { log, lines } = recordingLog()
    const s = sink({ urls: [collector.url], drops: recordingDrops(), log })
    s.add(span())
    await s.flush()
    expect(collector.attempts).toHaveLength(4)
    expect(lines.filter((l) => l.msg.includes('attempt failed'))).toHaveLength(1)
    expect(lines.filter((l) => l.msg.includes('reachable again'))).toEqual([expect.objectContaining({ failedAttempts: 3 })])
  })
})

describe('several collectors', () => {
  it('spreads batches round-robin', async () => {
    const a = await startFakeCollector()
    const b = await startFakeCollector()
    const s = sink({ urls: [a.url, b.url], drops: recordingDrops(), maxBatchSpans: 5, concurrency: 1 })
    for (const x of spans(20)) s.add(x)
    await s.flush()
    expect(a.attempts).toHaveLength(2)
    expect(b.attempts).toHaveLength(2)
  })

  it('fails over to the next URL, keeping the batch id', async () => {
    const down = await startFakeCollector()
    down.answer = () => ({ status: 503 })
    const up = await startFakeCollector()
    const drops = recordingDrops()
    const s = sink({ urls: [down.url, up.url], drops, maxBatchSpans: 5, retryInitialDelayMs: 5_000, retryMaxDelayMs: 5_000 })
    const sent = spans(20)
    for (const x of sent) s.add(x)
    // A backoff of 5 s would blow the test's time: failover to the healthy URL happens without waiting.
    await s.flush()

    expect([...up.stored.values()].flat().sort()).toEqual(sent.map((x) => x.span_id).sort())
    expect(down.attempts.length).toBeGreaterThan(0)
    const upIds = new Set(up.attempts.map((x) => x.batchId))
    for (const attempt of down.attempts) expect(upIds.has(attempt.batchId)).toBe(true)
    expect(drops.calls).toEqual([])
  })

  it('rests a failing collector instead of trying it first for every batch', async () => {
    const down = await startFakeCollector()
    down.answer = () => ({ status: 503 })
    const up = await startFakeCollector()
    const { log, lines } = recordingLog()
    const s = sink({ urls: [down.url, up.url], drops: recordingDrops(), log, maxBatchSpans: 5, concurrency: 1, retryInitialDelayMs: 5_000, retryMaxDelayMs: 5_000 })
    for (const x of spans(50)) s.add(x)
    await s.flush()
    expect(up.stored.size).toBe(10)
    expect(down.attempts).toHaveLength(1)
    expect(lines.filter((l) => l.msg.includes('attempt failed'))).toHaveLength(1)
  })

  it('fails over from a refused connection', async () => {
    const up = await startFakeCollector()
    const s = sink({ urls: [`http://127.0.0.1:${await deadPort()}`, up.url], drops: recordingDrops(), retryInitialDelayMs: 5_000 })
    for (const x of spans(3)) s.add(x)
    await s.flush()
    expect([...up.stored.values()].flat()).toHaveLength(3)
  })
})

describe('rejection (400)', () => {
  it('counts rejected.length as dropped and does not retry', async () => {
    const collector = await startFakeCollector()
    collector.answer = () => ({
      status: 400,
      body: { accepted: 3, rejected: [{ index: 1, message: 'span_id: invalid uuid' }, { index: 4, message: 'mode: invalid' }] },
    })
    const drops = recordingDrops()
    const { log, lines } = recordingLog()
    const s = sink({ urls: [collector.url], drops, log })
    for (const x of spans(5)) s.add(x)
    await s.flush()

    expect(collector.attempts).toHaveLength(1)
    expect(drops.calls).toEqual([{ reason: 'rejected', count: 2 }])
    expect(lines.find((l) => l.msg.includes('rejected'))).toMatchObject({ firstRejection: 'span_id: invalid uuid', rejected: 2 })
  })

  it('counts the whole batch when the answer has no rejected list', async () => {
    const collector = await startFakeCollector()
    collector.answer = () => ({ status: 400, body: { error: { code: 'TG_ERR_BAD_SPAN_BATCH', message: 'not a JSON array' } } })
    const drops = recordingDrops()
    const s = sink({ urls: [collector.url], drops })
    for (const x of spans(4)) s.add(x)
    await s.flush()
    expect(collector.attempts).toHaveLength(1)
    expect(drops.calls).toEqual([{ reason: 'rejected', count: 4 }])
  })
})

describe('maxQueueSpans', () => {
  it('drops new spans when full, counted, with add() synchronous throughout', async () => {
    const collector = await startFakeCollector()
    collector.answer = () => 'hang'
    const drops = recordingDrops()
    const { log, lines } = recordingLog()
    const s = sink({ urls: [collector.url], drops, log, maxQueueSpans: 100, maxBatchSpans: 10, requestTimeoutMs: 150 })
    for (let i = 0; i < 1000; i++) expect(s.add(span())).toBeUndefined()
    // Counted before anything was awaited: add() never waits for room.
    expect(drops.total('queue_full')).toBe(900)
    expect(s.queuedSpanCount()).toBe(100)
    expect(lines.filter((l) => l.msg.includes('queue full'))).toHaveLength(1)

    // The collector answers again: the timed-out batches are retried and everything queued arrives.
    collector.answer = () => 'ok'
    await s.flush()
    expect([...collector.stored.values()].flat()).toHaveLength(100)
    s.add(span())
    expect(lines.filter((l) => l.msg.includes('room again'))).toEqual([expect.objectContaining({ droppedSpans: 900 })])
    expect(drops.calls.every((c) => c.reason === 'queue_full')).toBe(true)
  })

  it('logs the episode total once room returns', async () => {
    const collector = await startFakeCollector()
    collector.answer = (n) => (n < 2 ? { status: 503 } : 'ok')
    const drops = recordingDrops()
    const { log, lines } = recordingLog()
    const s = sink({ urls: [collector.url], drops, log, maxQueueSpans: 10, maxBatchSpans: 10, retryInitialDelayMs: 30 })
    for (const x of spans(15)) s.add(x)
    await s.flush()
    s.add(span())
    await s.flush()
    expect(drops.calls).toEqual(Array.from({ length: 5 }, () => ({ reason: 'queue_full', count: 1 })))
    expect(lines.filter((l) => l.msg.includes('room again'))).toEqual([expect.objectContaining({ droppedSpans: 5 })])
    expect([...collector.stored.values()].flat()).toHaveLength(11)
  })
})

describe('close', () => {
  it('sends what is left before resolving', async () => {
    const collector = await startFakeCollector()
    const drops = recordingDrops()
    const s = sink({ urls: [collector.url], drops, flushIntervalMs: 60_000 })
    for (const x of spans(7)) s.add(x)
    await s.close()
    expect([...collector.stored.values()].flat()).toHaveLength(7)
    s.add(span())
    expect(drops.calls).toEqual([{ reason: 'shutdown', count: 1 }])
  })

  it('counts what is still undelivered at closeTimeoutMs as shutdown drops', async () => {
    const collector = await startFakeCollector()
    collector.answer = () => 'hang'
    const drops = recordingDrops()
    const s = sink({ urls: [collector.url], drops, closeTimeoutMs: 100, maxBatchSpans: 5, concurrency: 1, requestTimeoutMs: 60_000 })
    for (const x of spans(12)) s.add(x)
    const started = Date.now()
    await s.close()
    expect(Date.now() - started).toBeLessThan(2000)
    expect(drops.calls).toEqual([{ reason: 'shutdown', count: 12 }])
    expect(s.queuedSpanCount()).toBe(0)
  })
})

describe('outage', () => {
  it('loses nothing while the queue had room when a collector is down for a while, then back', async () => {
    const port = await deadPort()
    const drops = recordingDrops()
    const s = sink({ urls: [`http://127.0.0.1:${port}`], drops, maxBatchSpans: 50, maxQueueSpans: 1000, retryMaxDelayMs: 30 })
    const sent: Span[] = []
    for (let round = 0; round < 10; round++) {
      for (const x of spans(40)) {
        sent.push(x)
        s.add(x)
      }
      await new Promise((r) => setTimeout(r, 15))
    }
    expect(s.queuedSpanCount()).toBe(400)
    const collector = await startFakeCollector(port)
    await s.flush()
    expect([...collector.stored.values()].flat().sort()).toEqual(sent.map((x) => x.span_id).sort())
    expect(drops.calls).toEqual([])
  })
})

describe('transport', () => {
  it('goes straight to the collector whatever HTTP(S)_PROXY says', async () => {
    const collector = await startFakeCollector()
    const proxy = await startFakeCollector()
    const saved = { HTTP_PROXY: process.env['HTTP_PROXY'], HTTPS_PROXY: process.env['HTTPS_PROXY'] }
    process.env['HTTP_PROXY'] = proxy.url
    process.env['HTTPS_PROXY'] = proxy.url
    try {
      const s = sink({ urls: [collector.url], drops: recordingDrops() })
      s.add(span())
      await s.flush()
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key]
        else process.env[key] = value
      }
    }
    expect(collector.attempts).toHaveLength(1)
    expect(proxy.attempts).toHaveLength(0)
  })

  it('rejects a bad collector URL at construction with a code', () => {
    expect(() => createHttpSink({ urls: ['ftp://x'], drops: recordingDrops() })).toThrow(expect.objectContaining({ code: 'TG_ERR_CONFIG_INVALID' }))
    expect(() => createHttpSink({ urls: [], drops: recordingDrops() })).toThrow(expect.objectContaining({ code: 'TG_ERR_CONFIG_INVALID' }))
  })
})

/**
 * Streaming chat completions (stream: true, stream_options.include_usage) with
 * the mock sending content chunks at a fixed interval. The client parses the
 * SSE `data:` lines as they arrive and timestamps, with performance.now(), the
 * socket read that completed each content chunk (a chunk whose
 * choices[0].delta.content is a non-empty string):
 *
 * - TTFT: request start → first content chunk;
 * - inter-chunk gap: between consecutive content chunks of one stream.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { summarize, type Summary } from './stats.ts'
import type { Endpoint } from './latency.ts'

export const STREAM_BODY = Buffer.from(
  JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
    stream: true,
    stream_options: { include_usage: true },
  }),
)

export function streamHeaders(chunks: number, intervalMs: number): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'text/event-stream',
    'x-mock-chunks': String(chunks),
    'x-mock-chunk-interval-ms': String(intervalMs),
  }
}

export interface StreamTiming {
  status: number
  /** ms from request start to the first content chunk; NaN if none came. */
  ttft: number
  /** ms between consecutive content chunks. */
  gaps: number[]
  contentChunks: number
  /** A final chunk with a `usage` object arrived. */
  usage: boolean
  done: boolean
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The delta content of an OpenAI chat.completion.chunk, or null. */
function deltaContent(chunk: unknown): string | null {
  if (!isRecord(chunk) || !Array.isArray(chunk.choices)) return null
  const first: unknown = chunk.choices[0]
  if (!isRecord(first) || !isRecord(first.delta)) return null
  return typeof first.delta.content === 'string' ? first.delta.content : null
}

/** One streaming call, timed chunk by chunk. */
export function timedStream(
  agent: http.Agent,
  endpoint: Endpoint,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<StreamTiming> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const timing: StreamTiming = { status: 0, ttft: Number.NaN, gaps: [], contentChunks: 0, usage: false, done: false }
    let last = Number.NaN
    let pending = ''
    const onLine = (line: string, at: number): void => {
      if (!line.startsWith('data:')) return
      const data = line.slice(5).trim()
      if (data === '[DONE]') {
        timing.done = true
        return
      }
      let json: unknown
      try {
        json = JSON.parse(data)
      } catch {
        return
      }
      if (isRecord(json) && isRecord(json.usage)) timing.usage = true
      const content = deltaContent(json)
      if (content === null || content.length === 0) return
      timing.contentChunks++
      if (Number.isNaN(last)) timing.ttft = at - t0
      else timing.gaps.push(at - last)
      last = at
    }
    const req = http.request(
      {
        agent,
        host: endpoint.host,
        port: endpoint.port,
        path: endpoint.chatPath,
        method: 'POST',
        headers: { ...headers, 'content-length': String(STREAM_BODY.length) },
      },
      (res) => {
        timing.status = res.statusCode ?? 0
        res.setEncoding('utf8')
        res.on('data', (text: string) => {
          const at = performance.now()
          pending += text
          let nl = pending.indexOf('\n')
          while (nl !== -1) {
            onLine(pending.slice(0, nl).replace(/\r$/, ''), at)
            pending = pending.slice(nl + 1)
            nl = pending.indexOf('\n')
          }
        })
        res.once('end', () => resolve(timing))
        res.once('error', reject)
      },
    )
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`stream from ${endpoint.name} silent for ${timeoutMs} ms`)))
    req.once('error', reject)
    req.end(STREAM_BODY)
  })
}

export interface StreamingOptions {
  streams: number
  /** Streams in flight at once (each on its own keep-alive connection). */
  concurrency: number
  chunks: number
  intervalMs: number
  /** Stops starting new streams past this wall time. */
  maxMs: number
}

export interface StreamingResult {
  ttft: Summary
  gap: Summary
  streams: number
  /** Streams that failed, ended without [DONE], without usage, or with a wrong number of content chunks. */
  bad: number
}

/**
 * `streams` timed streams, `concurrency` at a time, starts staggered across one
 * chunk interval. Each worker's first stream (which opens its connection) is
 * left out of the figures.
 */
export async function streamingLatency(endpoint: Endpoint, options: StreamingOptions): Promise<StreamingResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency, scheduling: 'fifo' })
  const headers = streamHeaders(options.chunks, options.intervalMs)
  const ttfts: number[] = []
  const gaps: number[] = []
  let bad = 0
  let started = 0
  const t0 = performance.now()
  const worker = async (index: number): Promise<void> => {
    // Spread the workers so their chunks do not all land in the same millisecond.
    await new Promise((r) => setTimeout(r, (index * options.intervalMs) / options.concurrency))
    let first = true
    while (started < options.streams && performance.now() - t0 < options.maxMs) {
      started++
      try {
        const t = await timedStream(agent, endpoint, headers, 10_000)
        const ok = t.status === 200 && t.done && t.usage && t.contentChunks === options.chunks
        if (!ok) bad++
        // A worker's first stream also opens its connection: not counted.
        if (!first && t.status === 200 && !Number.isNaN(t.ttft)) {
          ttfts.push(t.ttft)
          gaps.push(...t.gaps)
        }
      } catch {
        bad++
      }
      first = false
    }
  }
  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)))
  } finally {
    agent.destroy()
  }
  return { ttft: summarize(ttfts), gap: summarize(gaps), streams: started, bad }
}

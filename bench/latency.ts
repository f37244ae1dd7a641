/**
 * Non-streaming latency without queueing, from a node:http keep-alive client:
 *
 * - sequential: one connection, one request at a time, each timed from just
 *   before `http.request` to the response's 'end' with performance.now();
 * - open-loop: a fixed total request rate well below saturation over a pool of
 *   pre-opened connections used round-robin (FIFO), each request timed from
 *   its *scheduled* send time, so a late send or a queue shows up in the
 *   figure instead of being hidden (no coordinated omission).
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { summarize, type Summary } from './stats.ts'

/** One thing to measure: the mock directly, or a proxy in front of it. */
export interface Endpoint {
  name: string
  host: string
  port: number
  /** Path of the chat completions route on this endpoint. */
  chatPath: string
}

export const CHAT_BODY = Buffer.from(
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }] }),
)

export const JSON_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'application/json' }

export interface PostResult {
  status: number
  bytes: number
}

/** One POST on `agent`, resolved when the whole response body has arrived. */
export function post(
  agent: http.Agent,
  endpoint: Endpoint,
  body: Buffer,
  headers: Readonly<Record<string, string>> = JSON_HEADERS,
  timeoutMs = 10_000,
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: endpoint.host,
        port: endpoint.port,
        path: endpoint.chatPath,
        method: 'POST',
        headers: { ...headers, 'content-length': String(body.length) },
      },
      (res) => {
        let bytes = 0
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length
        })
        res.once('end', () => resolve({ status: res.statusCode ?? 0, bytes }))
        res.once('error', reject)
      },
    )
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no response from ${endpoint.name} in ${timeoutMs} ms`)))
    req.once('error', reject)
    req.end(body)
  })
}

export interface SequentialOptions {
  warmup: number
  count: number
  /** Stops early (with fewer samples) past this wall time. */
  maxMs: number
}

export interface SequentialResult {
  /** Milliseconds per request. */
  latency: Summary
  errors: number
  wallMs: number
}

/** One keep-alive connection, requests back to back. */
export async function sequentialLatency(endpoint: Endpoint, options: SequentialOptions): Promise<SequentialResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const samples: number[] = []
  let errors = 0
  const started = performance.now()
  try {
    for (let i = 0; i < options.warmup + options.count; i++) {
      if (performance.now() - started > options.maxMs) break
      const t0 = performance.now()
      try {
        const { status } = await post(agent, endpoint, CHAT_BODY)
        const dt = performance.now() - t0
        if (status !== 200) errors++
        else if (i >= options.warmup) samples.push(dt)
      } catch {
        errors++
      }
    }
  } finally {
    agent.destroy()
  }
  return { latency: summarize(samples), errors, wallMs: performance.now() - started }
}

export interface OpenLoopOptions {
  connections: number
  /** Total requests per second across all connections. */
  rate: number
  /** Measured part; the warm-up part before it runs at the same rate and is discarded. */
  durationMs: number
  warmupMs: number
}

export interface OpenLoopResult {
  /** Scheduled send time → whole response received, ms. The figure the targets use. */
  fromScheduled: Summary
  /** Actual `http.request` call → whole response received, ms (excludes the client's timer lateness). */
  fromSend: Summary
  /** How late the client's timer fired relative to the schedule, ms. */
  sendLag: Summary
  /** Requests per second actually completed in the measured part. */
  achievedRate: number
  /** Most connections the agent had open at once. */
  socketsOpened: number
  errors: number
}

/**
 * Sends `rate` requests per second on a pool of `connections` keep-alive
 * sockets, opened up front and reused oldest-idle first so all of them carry
 * traffic. A request that finds every socket busy waits in the agent's queue,
 * and that wait counts: latency runs from the scheduled send time.
 */
export async function openLoopLatency(endpoint: Endpoint, options: OpenLoopOptions): Promise<OpenLoopResult> {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: options.connections,
    maxFreeSockets: options.connections,
    scheduling: 'fifo',
  })
  try {
    // Open every connection first: as many concurrent requests as sockets.
    await Promise.all(Array.from({ length: options.connections }, () => post(agent, endpoint, CHAT_BODY)))
    let socketsOpened = 0
    for (const list of Object.values(agent.freeSockets)) socketsOpened += list?.length ?? 0

    const intervalMs = 1000 / options.rate
    const total = Math.round(((options.warmupMs + options.durationMs) / 1000) * options.rate)
    const warmupCount = Math.round((options.warmupMs / 1000) * options.rate)
    const fromScheduled: number[] = []
    const fromSend: number[] = []
    const sendLag: number[] = []
    let errors = 0
    let completed = 0
    let next = 0
    const start = performance.now() + 5

    await new Promise<void>((resolve) => {
      const finishOne = (): void => {
        completed++
        if (completed === total) resolve()
      }
      const fire = (i: number, scheduledAt: number): void => {
        const sentAt = performance.now()
        post(agent, endpoint, CHAT_BODY).then(
          ({ status }) => {
            const endAt = performance.now()
            if (status !== 200) errors++
            else if (i >= warmupCount) {
              fromScheduled.push(endAt - scheduledAt)
              fromSend.push(endAt - sentAt)
              sendLag.push(sentAt - scheduledAt)
            }
            finishOne()
          },
          () => {
            errors++
            finishOne()
          },
        )
      }
      const tick = (): void => {
        const now = performance.now()
        while (next < total) {
          const scheduledAt = start + next * intervalMs
          if (scheduledAt > now) break
          fire(next, scheduledAt)
          next++
        }
        if (next < total) {
          // libuv timers have 1 ms resolution: wake at the floor and send what is due.
          setTimeout(tick, Math.max(0, Math.floor(start + next * intervalMs - performance.now())))
        }
      }
      setTimeout(tick, 5)
    })

    return {
      fromScheduled: summarize(fromScheduled),
      fromSend: summarize(fromSend),
      sendLag: summarize(sendLag),
      achievedRate: (fromScheduled.length / options.durationMs) * 1000,
      socketsOpened,
      errors,
    }
  } finally {
    agent.destroy()
  }
}

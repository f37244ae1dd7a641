/**
 * Memory under many open streams: `streams` long-lived streaming calls opened
 * in batches (so the listen backlog never overflows), held open while the
 * mock trickles chunks, RSS of the watched processes sampled from
 * /proc/<pid>/status throughout; then, once every stream has ended, RSS
 * sampled again for `settleMs` to see it come back down.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { rssBytes } from './processes.ts'
import { STREAM_BODY, streamHeaders } from './streaming.ts'
import { sleep } from './stats.ts'
import type { Endpoint } from './latency.ts'

export interface MemoryOptions {
  streams: number
  chunks: number
  intervalMs: number
  /** Streams opened per batch, and the pause between batches. */
  batch: number
  batchGapMs: number
  sampleMs: number
  settleMs: number
  /** Hard stop: streams still open then are destroyed. */
  maxMs: number
}

export interface RssSample {
  /** ms since the first stream was opened. */
  t: number
  open: number
  /** Bytes, by process name. */
  rss: Record<string, number>
}

export interface MemoryResult {
  opened: number
  completed: number
  failed: number
  /** Most streams open at once (all headers received, body not yet ended). */
  peakOpen: number
  /** Highest RSS seen from the first stream opened to the last one ended, bytes by process. */
  peakRss: Record<string, number>
  /** Streams open at the sample where Tollgate's (the first watched process's) RSS peaked. */
  openAtPeak: number
  /** RSS `settleMs` after the last stream ended, bytes by process. */
  rssAfter: Record<string, number>
  /** From the first stream opened to the last one ended, ms. */
  holdMs: number
  samples: RssSample[]
}

function sampleAll(watch: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(watch).map(([name, pid]) => [name, rssBytes(pid)]))
}

export async function holdManyStreams(
  endpoint: Endpoint,
  options: MemoryOptions,
  watch: Record<string, number>,
): Promise<MemoryResult> {
  // One agent, enough sockets for every stream (the default global agent would also
  // allow it, but say so explicitly); no keep-alive, so sockets go away with their stream.
  const agent = new http.Agent({ keepAlive: false, maxSockets: options.streams + 100 })
  const headers = streamHeaders(options.chunks, options.intervalMs)
  const requests = new Set<http.ClientRequest>()
  const samples: RssSample[] = []
  const peakRss: Record<string, number> = Object.fromEntries(Object.keys(watch).map((name) => [name, 0]))
  let open = 0
  let peakOpen = 0
  let openAtPeak = 0
  let holding = true
  const firstName = Object.keys(watch)[0] ?? ''
  let completed = 0
  let failed = 0
  let opened = 0
  const t0 = performance.now()
  let lastEnd = t0

  const sample = (): void => {
    const rss = sampleAll(watch)
    samples.push({ t: Math.round(performance.now() - t0), open, rss })
    if (!holding) return
    for (const [name, bytes] of Object.entries(rss)) {
      if (!Number.isFinite(bytes) || bytes <= (peakRss[name] ?? 0)) continue
      peakRss[name] = bytes
      if (name === firstName) openAtPeak = open
    }
  }

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      let counted = false
      const finish = (ok: boolean): void => {
        if (counted) return
        counted = true
        if (ok) completed++
        else failed++
        lastEnd = performance.now()
        resolve()
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
          open++
          peakOpen = Math.max(peakOpen, open)
          let tail = ''
          let closed = false
          const close = (ok: boolean): void => {
            if (closed) return
            closed = true
            open--
            finish(ok)
          }
          res.setEncoding('utf8')
          res.on('data', (text: string) => {
            tail = (tail + text).slice(-32)
          })
          res.once('end', () => close(res.statusCode === 200 && tail.includes('[DONE]')))
          res.once('error', () => close(false))
          res.once('close', () => close(false))
        },
      )
      requests.add(req)
      req.once('close', () => requests.delete(req))
      req.once('error', () => finish(false))
      req.setTimeout(30_000, () => req.destroy(new Error('stream silent for 30 s')))
      req.end(STREAM_BODY)
    })

  const sampler = setInterval(sample, options.sampleMs)
  const hardStop = setTimeout(() => {
    for (const req of requests) req.destroy(new Error('memory phase time limit'))
  }, options.maxMs)
  try {
    const all: Promise<void>[] = []
    while (opened < options.streams) {
      const n = Math.min(options.batch, options.streams - opened)
      for (let i = 0; i < n; i++) all.push(one())
      opened += n
      await sleep(options.batchGapMs)
    }
    await Promise.all(all)
  } finally {
    clearInterval(sampler)
    clearTimeout(hardStop)
  }
  const holdMs = lastEnd - t0
  holding = false
  agent.destroy()

  // Let the processes settle; keep sampling so the series shows the way down.
  const settleStart = performance.now()
  while (performance.now() - settleStart < options.settleMs) {
    await sleep(Math.min(options.sampleMs * 2, options.settleMs))
    sample()
  }
  const rssAfter = sampleAll(watch)
  samples.push({ t: Math.round(performance.now() - t0), open, rss: rssAfter })
  return { opened, completed, failed, peakOpen, peakRss, openAtPeak, rssAfter, holdMs, samples }
}

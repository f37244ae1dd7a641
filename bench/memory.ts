/**
 * Memory under many open streams. `streams` long-lived streaming calls (the
 * mock trickles `chunks` content chunks `intervalMs` apart, longer than the
 * phase lasts) are opened at most `maxOpening` at a time — a stream counts as
 * opening until its response headers arrive — so the ramp goes as fast as the
 * proxy takes new calls and never overflows its listen backlog (a dropped SYN
 * is only retried after 1 s, 3 s, 7 s…). Once all are open (or `maxRampMs`
 * has passed) they are held `holdMs`, then the client closes them all, as
 * users who stop reading would. RSS of the watched processes is sampled from
 * /proc/<pid>/status throughout, then for `settleMs` after the last stream
 * closed to see it come back down. CPU time of the watched processes over the
 * hold, divided by the SSE events the client received, gives CPU per event.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { cpuSeconds, rssBytes } from './processes.ts'
import { STREAM_BODY, streamHeaders } from './streaming.ts'
import { sleep } from './stats.ts'
import type { Endpoint } from './latency.ts'

export interface MemoryOptions {
  streams: number
  /** Content chunks per stream: enough that no stream ends on its own during the phase. */
  chunks: number
  intervalMs: number
  /** Most streams waiting for their response headers at once. */
  maxOpening: number
  /** Longest the ramp may take before the hold starts anyway. */
  maxRampMs: number
  /** How long all streams are held open once the ramp is done. */
  holdMs: number
  sampleMs: number
  settleMs: number
}

export interface RssSample {
  /** ms since the first stream was opened. */
  t: number
  open: number
  /** Bytes, by process name. */
  rss: Record<string, number>
}

export interface MemoryResult {
  requested: number
  /** Streams whose response headers arrived. */
  opened: number
  /** Streams that failed before the client closed them (error, non-200, or ended early). */
  failed: number
  /** Most streams open at once. */
  peakOpen: number
  /** ms from the first stream started to the last one open (or to `maxRampMs`). */
  rampMs: number
  /** Highest RSS seen while streams were open, bytes by process. */
  peakRss: Record<string, number>
  /** Streams open at the sample where the first watched process's RSS peaked. */
  openAtPeak: number
  /** RSS `settleMs` after the streams were closed, bytes by process. */
  rssAfter: Record<string, number>
  /** SSE events (`data:` lines) the client received during the hold, per second. */
  eventsPerSecond: number
  /** CPU µs per SSE event during the hold, by process. */
  cpuUsPerEvent: Record<string, number>
  /** Cores busy during the hold, by process. */
  cpuCores: Record<string, number>
  samples: RssSample[]
}

function sampleAll(watch: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(watch).map(([name, pid]) => [name, rssBytes(pid)]))
}

function countDataLines(text: string): number {
  let n = 0
  for (let i = text.indexOf('data:'); i !== -1; i = text.indexOf('data:', i + 5)) n++
  return n
}

export async function holdManyStreams(
  endpoint: Endpoint,
  options: MemoryOptions,
  watch: Record<string, number>,
): Promise<MemoryResult> {
  // One agent with a socket for every stream (say so explicitly rather than rely
  // on the default); no keep-alive, so sockets go away with their stream.
  const agent = new http.Agent({ keepAlive: false, maxSockets: options.streams + 100 })
  const headers = streamHeaders(options.chunks, options.intervalMs)
  const requests = new Set<http.ClientRequest>()
  const samples: RssSample[] = []
  const peakRss: Record<string, number> = Object.fromEntries(Object.keys(watch).map((name) => [name, 0]))
  const firstName = Object.keys(watch)[0] ?? ''
  let open = 0
  let peakOpen = 0
  let openAtPeak = 0
  let opened = 0
  let failed = 0
  let events = 0
  let closing = false
  const t0 = performance.now()

  const sample = (): void => {
    const rss = sampleAll(watch)
    samples.push({ t: Math.round(performance.now() - t0), open, rss })
    if (open === 0) return
    for (const [name, bytes] of Object.entries(rss)) {
      if (!Number.isFinite(bytes) || bytes <= (peakRss[name] ?? 0)) continue
      peakRss[name] = bytes
      if (name === firstName) openAtPeak = open
    }
  }

  let opening = 0
  let wakeOpener: (() => void) | null = null
  const openingDone = (): void => {
    opening--
    const wake = wakeOpener
    wakeOpener = null
    wake?.()
  }

  /** Resolves once the stream is closed, by the client or otherwise. */
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      let waitingForHeaders = true
      let isOpen = false
      const headersDone = (): void => {
        if (!waitingForHeaders) return
        waitingForHeaders = false
        openingDone()
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
          headersDone()
          if (res.statusCode !== 200) failed++
          opened++
          open++
          isOpen = true
          peakOpen = Math.max(peakOpen, open)
          res.setEncoding('utf8')
          res.on('data', (text: string) => {
            events += countDataLines(text)
          })
          // Any end before the client closes it is a failure: the mock's stream outlasts the phase.
          res.once('end', () => {
            if (!closing) failed++
          })
          res.on('error', () => {})
        },
      )
      requests.add(req)
      req.once('close', () => {
        requests.delete(req)
        headersDone()
        if (isOpen) open--
        else if (!closing) failed++
        resolve()
      })
      req.on('error', () => {})
      req.setTimeout(30_000, () => req.destroy(new Error('stream silent for 30 s')))
      req.end(STREAM_BODY)
    })

  const sampler = setInterval(sample, options.sampleMs)
  const all: Promise<void>[] = []
  let started = 0
  let rampMs = 0
  const cpuBefore: Record<string, number> = {}
  let eventsBefore = 0
  let holdStart = 0
  try {
    // Ramp: keep `maxOpening` streams waiting for headers until all are started.
    while (started < options.streams && performance.now() - t0 < options.maxRampMs) {
      if (opening >= options.maxOpening) {
        await Promise.race([new Promise<void>((resolve) => (wakeOpener = resolve)), sleep(250)])
        continue
      }
      opening++
      started++
      all.push(one())
    }
    while (opened + failed < started && performance.now() - t0 < options.maxRampMs) await sleep(20)
    rampMs = performance.now() - t0

    // Hold, measuring CPU per SSE event.
    for (const [name, pid] of Object.entries(watch)) cpuBefore[name] = cpuSeconds(pid)
    eventsBefore = events
    holdStart = performance.now()
    await sleep(options.holdMs)
  } finally {
    clearInterval(sampler)
  }
  const holdSeconds = (performance.now() - holdStart) / 1000
  const holdEvents = events - eventsBefore
  const cpuUsPerEvent: Record<string, number> = {}
  const cpuCores: Record<string, number> = {}
  for (const [name, pid] of Object.entries(watch)) {
    const used = cpuSeconds(pid) - (cpuBefore[name] ?? Number.NaN)
    cpuUsPerEvent[name] = holdEvents > 0 ? (used * 1e6) / holdEvents : Number.NaN
    cpuCores[name] = used / holdSeconds
  }
  sample()

  // Close every stream from the client side and wait for the sockets to go.
  closing = true
  for (const req of requests) req.destroy()
  await Promise.race([Promise.all(all), sleep(10_000)])
  agent.destroy()

  // Let the processes settle; keep sampling so the series shows the way down.
  const settleStart = performance.now()
  while (performance.now() - settleStart < options.settleMs) {
    await sleep(Math.min(options.sampleMs * 2, options.settleMs))
    samples.push({ t: Math.round(performance.now() - t0), open, rss: sampleAll(watch) })
  }
  const rssAfter = sampleAll(watch)
  samples.push({ t: Math.round(performance.now() - t0), open, rss: rssAfter })
  return {
    requested: options.streams,
    opened,
    failed,
    peakOpen,
    rampMs,
    peakRss,
    openAtPeak,
    rssAfter,
    eventsPerSecond: holdEvents / holdSeconds,
    cpuUsPerEvent,
    cpuCores,
    samples,
  }
}

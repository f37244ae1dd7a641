/**
 * Ingest benchmark: a standalone collector on a fresh temp data dir, and a
 * load generator in this process (one thread) POSTing realistic span batches
 * to /v1/spans from N concurrent senders (closed loop) for a fixed time after
 * a warm-up. The same generator against a trivial Node sink gives its own
 * ceiling in the same run.
 *
 * Measured per case: acknowledged spans/s (200 answers in the window),
 * stored spans/s (ClickHouse's count through /api/summary once every
 * acknowledged span is in, over the wall time from the window's start until
 * then), POST latency p50/p99, collector RSS (idle, peak, after), collector CPU
 * (all threads, and split by thread name), the generator's CPU, and the
 * batcher's queue and spool over time.
 */
import { randomUUID } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  RssSampler,
  cpuSeconds,
  diffThreads,
  dist,
  health,
  log,
  machineBusySeconds,
  makeAgent,
  makeTempDir,
  removeTempDir,
  request,
  round,
  sleep,
  spawnNode,
  startCollectorProcess,
  storedSpans,
  threadCpu,
  type CollectorLaunch,
} from './common.ts'
import { BatchPool, SpanGenerator } from './spans.ts'

export interface Timing {
  warmupS: number
  measureS: number
}

export interface DriveResult {
  /** Spans acknowledged by 200 answers that arrived inside the window, per second. */
  ackedPerS: number
  /** Requests answered inside the window, per second. */
  postsPerS: number
  /** POST latency (ms) of requests started inside the window. */
  latency: { p50: number; p99: number; max: number; n: number }
  /** Non-200 answers and errors, whole run. */
  failures: number
  statuses: Record<string, number>
  /** Spans acknowledged over the whole run (warm-up included). */
  ackedTotal: number
  /** This process's CPU over the window, cores (the generator is one thread). */
  generatorCores: number
  measureStart: number
  measureEnd: number
  /** Epoch ms of the run's first and last span start times. */
  firstSpanMs: number
  lastSpanMs: number
  /** When the generator had no free buffer (all in flight) — never expected. */
  starved: number
}

/**
 * Closed-loop load: `concurrency` senders, each POSTing a `postBatch`-span body
 * and waiting for the answer, for warm-up + window. `onMeasureStart` runs when
 * the window opens.
 */
export async function drive(
  url: string,
  postBatch: number,
  concurrency: number,
  timing: Timing,
  onMeasureStart?: () => void,
): Promise<DriveResult> {
  const gen = new SpanGenerator({ seed: 7 })
  const pool = new BatchPool(gen, postBatch, concurrency + 2)
  const agent = makeAgent(concurrency)
  const begin = performance.now()
  const measureStart = begin + timing.warmupS * 1000
  const measureEnd = measureStart + timing.measureS * 1000
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  let ackedInWindow = 0
  let postsInWindow = 0
  let ackedTotal = 0
  let failures = 0
  let starved = 0
  let firstSpanMs = Number.NaN
  let lastSpanMs = Number.NaN
  let cpuAtStart: NodeJS.CpuUsage | null = null
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage()
    onMeasureStart?.()
  }, measureStart - performance.now())
  // Bounded in time (the window) and in count (no sender can do more than this many requests).
  const maxRequests = Math.ceil(((timing.warmupS + timing.measureS) * 1_000_000) / postBatch) + 10
  async function sender(): Promise<void> {
    for (let i = 0; i < maxRequests && performance.now() < measureEnd; i++) {
      // Spans that started 3 s ago and just ended, a few µs apart.
      const startMs = Date.now() - 3000
      const batch = pool.take(startMs, 0.01)
      if (!batch) {
        starved++
        await sleep(1)
        continue
      }
      if (Number.isNaN(firstSpanMs)) firstSpanMs = startMs
      lastSpanMs = startMs + 1
      const sentAt = performance.now()
      try {
        const res = await request(agent, 'POST', `${url}/v1/spans`, batch.buf, { 'x-tollgate-batch-id': randomUUID(), 'x-bench-spans': String(postBatch) }, 60_000)
        const done = performance.now()
        statuses[res.status] = (statuses[res.status] ?? 0) + 1
        if (res.status === 200) {
          const accepted = (JSON.parse(res.body) as { accepted?: number }).accepted ?? 0
          ackedTotal += accepted
          if (done >= measureStart && done < measureEnd) {
            ackedInWindow += accepted
            postsInWindow++
          }
        } else {
          failures++
          if (res.status === 503) await sleep(100)
        }
        if (sentAt >= measureStart && sentAt < measureEnd) latencies.push(res.ms)
      } catch (err) {
        failures++
        statuses.error = (statuses.error ?? 0) + 1
        if (failures < 5) log(`POST failed: ${(err as Error).message}`)
        await sleep(50)
      } finally {
        pool.release(batch)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => sender()))
  clearTimeout(startTimer)
  const cpu = process.cpuUsage(cpuAtStart ?? undefined)
  agent.destroy()
  const d = dist(latencies)
  return {
    ackedPerS: ackedInWindow / timing.measureS,
    postsPerS: postsInWindow / timing.measureS,
    latency: { p50: d.p50, p99: d.p99, max: d.max, n: d.n },
    failures,
    statuses,
    ackedTotal,
    generatorCores: (cpu.user + cpu.system) / 1e6 / timing.measureS,
    measureStart,
    measureEnd,
    firstSpanMs,
    lastSpanMs,
    starved,
  }
}

// ---------------------------------------------------------------- generator ceiling

export interface SinkResult {
  postBatch: number
  concurrency: number
  ackedPerS: number
  p50: number
  p99: number
  generatorCores: number
}

/** The generator against bench/collector/sink-main.ts, its own process. */
export async function runSinkCeiling(postBatch: number, concurrency: number, timing: Timing): Promise<SinkResult> {
  const sink = await spawnNode({ name: 'sink', args: ['bin/run-ts.mjs', 'bench/collector/sink-main.ts'], env: {}, ready: [/^listening (\S+)$/m], timeoutMs: 30_000 })
  try {
    const r = await drive(sink.captures[0] ?? '', postBatch, concurrency, timing)
    return { postBatch, concurrency, ackedPerS: r.ackedPerS, p50: r.latency.p50, p99: r.latency.p99, generatorCores: r.generatorCores }
  } finally {
    await sink.stop()
  }
}

// ---------------------------------------------------------------- one collector case

export interface IngestCase {
  name: string
  postBatch: number
  concurrency: number
  launcher: CollectorLaunch['launcher']
  maxBatchRows?: number | undefined
  flushIntervalMs?: number | undefined
  /** A patched copy of the repo to start the collector from (prototype fixes). */
  root?: string | undefined
}

export interface IngestResult {
  case: IngestCase
  ackedPerS: number
  storedPerS: number
  /** Seconds from the end of the window until every acknowledged span was counted by ClickHouse. */
  drainS: number
  storedMatches: boolean
  ackedTotal: number
  storedTotal: number
  postP50: number
  postP99: number
  postMax: number
  failures: number
  statuses: Record<string, number>
  rssIdleMiB: number
  rssPeakMiB: number
  rssAfterMiB: number
  /** Collector CPU over the window, cores (all threads). */
  collectorCores: number
  /** Collector CPU per 1,000 spans acknowledged in the window, ms. */
  cpuMsPer1kSpans: number
  /** Collector CPU seconds over the window by thread name. */
  threads: Record<string, number>
  generatorCores: number
  /** Machine busy cores over the window that neither the collector nor this process used. */
  otherCores: number
  /** Highest queue rows / spool bytes seen (1 s samples). */
  maxQueueRows: number
  maxSpoolMiB: number
  timeline: { t: number; inserted: number; queueRows: number; spoolMiB: number; rssMiB: number }[]
  profile?: string | undefined
}

export async function runIngestCase(c: IngestCase, timing: Timing, options: { cpuProfDir?: string | undefined } = {}): Promise<IngestResult> {
  const tempDir = makeTempDir('tollgate-bench-ingest-')
  const dataDir = join(tempDir, 'data')
  const nodeFlags = options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : []
  const collector = await startCollectorProcess({
    dataDir,
    launcher: c.launcher,
    maxBatchRows: c.maxBatchRows,
    flushIntervalMs: c.flushIntervalMs,
    nodeFlags,
    root: c.root,
    name: `collector (${c.name})`,
  })
  const rss = new RssSampler(collector.pid, 200).start()
  try {
    await sleep(1500)
    const rssIdleMiB = rss.sample()
    const timeline: IngestResult['timeline'] = []
    const t0 = performance.now()
    let polling = true
    let insertedAtStart = Number.NaN
    // Batcher state once a second, bounded by the run's length.
    const poller = (async () => {
      for (let i = 0; polling && i < 3600; i++) {
        try {
          const h = await health(collector.url)
          timeline.push({ t: round((performance.now() - t0) / 1000, 1), inserted: h.inserted, queueRows: h.queueRows, spoolMiB: round(h.spoolBytes / 2 ** 20, 1), rssMiB: round(rss.sample(), 0) })
        } catch {
          // a slow answer under load is fine; the next sample comes
        }
        await sleep(1000)
      }
    })()
    let cpu0 = Number.NaN
    let bench0: NodeJS.CpuUsage = process.cpuUsage()
    let machine0 = Number.NaN
    let threads0: Record<string, number> = {}
    const drove = await drive(collector.url, c.postBatch, c.concurrency, timing, () => {
      cpu0 = cpuSeconds(collector.pid)
      machine0 = machineBusySeconds()
      bench0 = process.cpuUsage()
      threads0 = threadCpu(collector.pid)
      health(collector.url).then(
        (h) => {
          insertedAtStart = h.inserted
        },
        () => {},
      )
    })
    // The window's CPU: sampled as the senders stop (the last answers are in).
    const windowS = (performance.now() - drove.measureStart) / 1000
    const collectorCpu = cpuSeconds(collector.pid) - cpu0
    const benchCpu = process.cpuUsage(bench0)
    const machine = machineBusySeconds() - machine0
    const threads = diffThreads(threads0, threadCpu(collector.pid))

    // Wait until ClickHouse counts every acknowledged span (bounded: 300 s).
    const from = drove.firstSpanMs - 60_000
    const to = drove.lastSpanMs + 60_000
    let stored = 0
    let storedAt = performance.now()
    const deadline = performance.now() + 300_000
    for (let i = 0; i < 3000 && performance.now() < deadline; i++) {
      stored = await storedSpans(collector.url, from, to)
      storedAt = performance.now()
      if (stored >= drove.ackedTotal) break
      await sleep(250)
    }
    const storedPerS = (stored - (Number.isFinite(insertedAtStart) ? insertedAtStart : 0)) / ((storedAt - drove.measureStart) / 1000)
    const peak = rss.peak(drove.measureStart - timing.warmupS * 1000, storedAt)
    await sleep(5000)
    const rssAfterMiB = rss.sample()
    polling = false
    await poller
    return {
      case: c,
      ackedPerS: drove.ackedPerS,
      storedPerS,
      drainS: (storedAt - drove.measureEnd) / 1000,
      storedMatches: stored === drove.ackedTotal,
      ackedTotal: drove.ackedTotal,
      storedTotal: stored,
      postP50: drove.latency.p50,
      postP99: drove.latency.p99,
      postMax: drove.latency.max,
      failures: drove.failures,
      statuses: drove.statuses,
      rssIdleMiB,
      rssPeakMiB: peak,
      rssAfterMiB,
      collectorCores: collectorCpu / windowS,
      cpuMsPer1kSpans: (collectorCpu * 1000) / ((drove.ackedPerS * timing.measureS) / 1000),
      threads,
      generatorCores: (benchCpu.user + benchCpu.system) / 1e6 / windowS,
      otherCores: (machine - collectorCpu - (benchCpu.user + benchCpu.system) / 1e6) / windowS,
      maxQueueRows: Math.max(0, ...timeline.map((s) => s.queueRows)),
      maxSpoolMiB: Math.max(0, ...timeline.map((s) => s.spoolMiB)),
      timeline,
    }
  } finally {
    rss.stop()
    await collector.stop(60_000)
    removeTempDir(tempDir)
  }
}

/**
 * The newest main-thread .cpuprofile in `dir` (`CPU.<date>.<time>.<pid>.<thread>.<seq>`:
 * thread 0 is the main thread; tsx's module loader worker writes its own).
 */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    .sort()
  const last = files[files.length - 1]
  return last ? join(dir, last) : undefined
}

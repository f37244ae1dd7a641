/**
 * `npm run bench` — Tollgate's speed, measured the way shared/BENCHMARKS.md
 * asks: every figure next to the upstream called directly (and nginx as a
 * reference proxy when it is installed), in the same run, on loopback.
 *
 *   npm run bench                 full run (~3.5 min)
 *   BENCH_QUICK=1 npm run bench   smoke run (~1 min, small counts)
 *   BENCH_CPU_PROF=<dir>          also start Tollgate with --cpu-prof into <dir>
 *   BENCH_NODE_FLOOR=1            add bench/node-floor-proxy.ts as references: a bare Node proxy
 *                                 (node-floor) and the same relaying through http-proxy-3 alone (hp3-floor)
 *   BENCH_TOLLGATE_ROOT=<dir>     benchmark the Tollgate of another checkout
 *   BENCH_ALL_IN_ONE=0            skip the all-in-one `tollgate start` (measure the standalone proxy only)
 *
 * Prints the tables to stdout (progress to stderr) and writes every number to
 * bench/results/latest.json. See bench/README.md.
 */
import http from 'node:http'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { CHAT_BODY, openLoopLatency, sequentialLatency, type Endpoint, type OpenLoopResult, type SequentialResult } from './latency.ts'
import { holdManyStreams, type MemoryResult } from './memory.ts'
import {
  cpuSeconds,
  ensurePrebuilt,
  installTeardownHandlers,
  machineBusySeconds,
  onPath,
  rssBytes,
  startMock,
  startNginx,
  startNodeFloor,
  startStandaloneTollgate,
  startTollgate,
  stopAll,
  type StartedNginx,
  type StartedTollgate,
} from './processes.ts'
import {
  evaluateTargets,
  machineInfo,
  renderReport,
  type BenchSummary,
  type LatencySummary,
  type MemorySummary,
  type Pair,
  type ProxyName,
  type RunShape,
  type StreamFigures,
  type StreamingSummary,
  type TargetName,
  type ThroughputSummary,
} from './report.ts'
import { median, round, type Summary } from './stats.ts'
import { streamingLatency, type StreamingResult } from './streaming.ts'
import { measureThroughput, type ThroughputResult } from './throughput.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const RESULTS_FILE = join(ROOT, 'bench', 'results', 'latest.json')
const QUICK = process.env.BENCH_QUICK === '1'
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF
const NODE_FLOOR = process.env.BENCH_NODE_FLOOR === '1'
const ALL_IN_ONE = process.env.BENCH_ALL_IN_ONE !== '0'
/** Benchmark the Tollgate of another checkout (e.g. a baseline); the mock always comes from this one. */
const TOLLGATE_ROOT = process.env.BENCH_TOLLGATE_ROOT ? resolve(process.env.BENCH_TOLLGATE_ROOT) : ROOT

/** Every count and duration of the run; every loop is bounded by these. */
const CONFIG = QUICK
  ? {
      rounds: 2,
      /** Seconds of saturated load per target before anything is measured (Tollgate's JIT needs the most). */
      warmupSeconds: { direct: 2, tollgate: 3, 'tollgate-aio': 3, nginx: 2, 'node-floor': 2, 'hp3-floor': 2 } as Record<TargetName, number>,
      sequential: { warmup: 100, count: 400, maxMs: 10_000 },
      openLoop: { connections: 32, rate: 500, durationMs: 1_000, warmupMs: 300 },
      throughput: { connections: [32, 256], warmupSeconds: 0.3, durationSeconds: 1 },
      streaming: { rounds: 1, streams: 40, concurrency: 8, chunks: 10, intervalMs: 20, maxMs: 15_000 },
      memory: { streams: 1_000, chunks: 250, intervalMs: 100, maxOpening: 64, maxRampMs: 12_000, holdMs: 3_000, sampleMs: 200, settleMs: 2_000 },
      maxTotalMs: 240_000,
    }
  : {
      rounds: 3,
      warmupSeconds: { direct: 4, tollgate: 7, 'tollgate-aio': 7, nginx: 3, 'node-floor': 5, 'hp3-floor': 5 } as Record<TargetName, number>,
      sequential: { warmup: 500, count: 3_000, maxMs: 20_000 },
      openLoop: { connections: 32, rate: 500, durationMs: 3_000, warmupMs: 1_000 },
      throughput: { connections: [32, 256], warmupSeconds: 0.5, durationSeconds: 3 },
      streaming: { rounds: 2, streams: 96, concurrency: 8, chunks: 10, intervalMs: 20, maxMs: 30_000 },
      memory: { streams: 1_000, chunks: 400, intervalMs: 100, maxOpening: 64, maxRampMs: 25_000, holdMs: 10_000, sampleMs: 200, settleMs: 5_000 },
      maxTotalMs: 540_000,
    }

const t0 = performance.now()
function progress(message: string): void {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}

type PerTarget<T> = Partial<Record<TargetName, T>>

function endpointFor(name: TargetName, baseUrl: string, chatPath: string): Endpoint {
  const url = new URL(baseUrl)
  return { name, host: url.hostname, port: Number(url.port), chatPath }
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  return res.json()
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** One call per target must answer 200 with a chat completion, or the run is pointless. */
async function sanityCheck(endpoints: PerTarget<Endpoint>): Promise<void> {
  const agent = new http.Agent({ keepAlive: false })
  try {
    for (const endpoint of Object.values(endpoints)) {
      const body = await new Promise<string>((resolvePost, reject) => {
        const req = http.request(
          {
            agent,
            host: endpoint.host,
            port: endpoint.port,
            path: endpoint.chatPath,
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': String(CHAT_BODY.length) },
          },
          (res) => {
            let text = ''
            res.setEncoding('utf8')
            res.on('data', (s: string) => (text += s))
            res.once('end', () => (res.statusCode === 200 ? resolvePost(text) : reject(new Error(`${endpoint.name}: HTTP ${res.statusCode}: ${text}`))))
          },
        )
        req.once('error', reject)
        req.end(CHAT_BODY)
      })
      const json: unknown = JSON.parse(body)
      if (!isRecord(json) || !Array.isArray(json.choices)) throw new Error(`${endpoint.name}: not a chat completion: ${body.slice(0, 200)}`)
    }
  } finally {
    agent.destroy()
  }
}

/** The newest span Tollgate recorded, as a one-line description (proves the capture path ran). */
async function describeLatestSpan(collectorUrl: string): Promise<string> {
  let page: unknown
  try {
    page = await getJson(`${collectorUrl}/api/spans?limit=1`)
  } catch (err) {
    return `could not read the collector's spans: ${err instanceof Error ? err.message : String(err)}`
  }
  const span = isRecord(page) && Array.isArray(page.spans) ? (page.spans[0] as unknown) : undefined
  if (!isRecord(span)) return 'no span recorded!'
  const pick = (k: string): string => JSON.stringify(span[k] ?? null)
  return `stream=${pick('stream')} model=${pick('response_model')} status=${pick('status_code')} in/out tokens=${pick('input_tokens')}/${pick('output_tokens')} cost_usd=${pick('cost_usd')} (${pick('cost_status')}) ttft_ms=${pick('ttft_ms')}`
}

function latencySummary(rounds: PerTarget<Summary>[], targets: TargetName[]): LatencySummary {
  const byTarget: PerTarget<Pair> = {}
  const added: Partial<Record<ProxyName, Pair>> = {}
  const addedPerRound: Partial<Record<ProxyName, Pair[]>> = {}
  for (const t of targets) {
    byTarget[t] = { p50: median(rounds.map((r) => r[t]?.p50 ?? Number.NaN)), p99: median(rounds.map((r) => r[t]?.p99 ?? Number.NaN)) }
    if (t === 'direct') continue
    const perRound = rounds.map((r) => ({
      p50: (r[t]?.p50 ?? Number.NaN) - (r.direct?.p50 ?? Number.NaN),
      p99: (r[t]?.p99 ?? Number.NaN) - (r.direct?.p99 ?? Number.NaN),
    }))
    addedPerRound[t] = perRound
    added[t] = { p50: median(perRound.map((a) => a.p50)), p99: median(perRound.map((a) => a.p99)) }
  }
  return { byTarget, added, addedPerRound }
}

function medianRecord(records: Record<string, number>[]): Record<string, number> {
  const keys = new Set(records.flatMap((r) => Object.keys(r)))
  return Object.fromEntries([...keys].map((k) => [k, median(records.map((r) => r[k] ?? Number.NaN))]))
}

function throughputSummary(rounds: PerTarget<ThroughputResult[]>[], targets: TargetName[], connections: number): ThroughputSummary {
  const at = (r: PerTarget<ThroughputResult[]>, t: TargetName): ThroughputResult | undefined => r[t]?.find((x) => x.connections === connections)
  const summary: ThroughputSummary = { connections, rps: {}, ratio: {}, cpuMsPerRequest: {}, cpuCores: {}, failures: {} }
  for (const t of targets) {
    const results = rounds.map((r) => at(r, t)).filter((x): x is ThroughputResult => x !== undefined)
    summary.rps[t] = median(results.map((x) => x.rps))
    summary.cpuMsPerRequest[t] = medianRecord(results.map((x) => x.cpuMsPerRequest))
    summary.cpuCores[t] = medianRecord(results.map((x) => x.cpuCores))
    summary.failures[t] = results.reduce((sum, x) => sum + x.failures, 0)
    if (t !== 'direct') summary.ratio[t] = median(rounds.map((r) => (at(r, t)?.rps ?? Number.NaN) / (at(r, 'direct')?.rps ?? Number.NaN)))
  }
  return summary
}

function memorySummary(
  m: MemoryResult,
  idle: Record<string, number>,
  afterWarmup: Record<string, number>,
  beforeStreams: Record<string, number>,
): MemorySummary {
  return {
    streams: CONFIG.memory.streams,
    chunkIntervalMs: CONFIG.memory.intervalMs,
    opened: m.opened,
    failed: m.failed,
    peakOpen: m.peakOpen,
    openAtPeak: m.openAtPeak,
    rampMs: m.rampMs,
    holdMs: CONFIG.memory.holdMs,
    settleMs: CONFIG.memory.settleMs,
    eventsPerSecond: m.eventsPerSecond,
    cpuUsPerEvent: m.cpuUsPerEvent,
    cpuCores: m.cpuCores,
    idle,
    afterWarmup,
    beforeStreams,
    peak: m.peakRss,
    after: m.rssAfter,
  }
}

function streamFigures(r: StreamingResult | undefined): StreamFigures {
  return { ttftP50: r?.ttft.p50 ?? Number.NaN, ttftP99: r?.ttft.p99 ?? Number.NaN, gapMean: r?.gap.mean ?? Number.NaN, gapP99: r?.gap.p99 ?? Number.NaN }
}

function streamingSummary(rounds: PerTarget<StreamingResult>[], targets: TargetName[]): StreamingSummary {
  const keys: (keyof StreamFigures)[] = ['ttftP50', 'ttftP99', 'gapMean', 'gapP99']
  const medianFigures = (per: StreamFigures[]): StreamFigures => {
    const out: StreamFigures = { ttftP50: 0, ttftP99: 0, gapMean: 0, gapP99: 0 }
    for (const k of keys) out[k] = median(per.map((f) => f[k]))
    return out
  }
  const summary: StreamingSummary = {
    chunks: CONFIG.streaming.chunks,
    intervalMs: CONFIG.streaming.intervalMs,
    byTarget: {},
    added: {},
    bad: {},
  }
  for (const t of targets) {
    summary.byTarget[t] = medianFigures(rounds.map((r) => streamFigures(r[t])))
    summary.bad[t] = rounds.reduce((sum, r) => sum + (r[t]?.bad ?? 0), 0)
    if (t === 'direct') continue
    const perRound = rounds.map((r) => {
      const p = streamFigures(r[t])
      const d = streamFigures(r.direct)
      return { ttftP50: p.ttftP50 - d.ttftP50, ttftP99: p.ttftP99 - d.ttftP99, gapMean: p.gapMean - d.gapMean, gapP99: p.gapP99 - d.gapP99 }
    })
    summary.added[t] = medianFigures(perRound)
  }
  return summary
}

interface LoadSample {
  machine: number
  ours: number
  self: NodeJS.CpuUsage
  at: number
}

function machineLoadSample(pids: Record<string, number>): LoadSample {
  let ours = 0
  for (const pid of Object.values(pids)) ours += cpuSeconds(pid)
  return { machine: machineBusySeconds(), ours, self: process.cpuUsage(), at: performance.now() }
}

/** Cores busy on average since `start`: the bench's processes vs. everything else on the machine. */
function machineLoadSince(start: LoadSample, pids: Record<string, number>): { oursCores: number; unattributedCores: number; seconds: number } {
  const now = machineLoadSample(pids)
  const self = process.cpuUsage(start.self)
  const seconds = (now.at - start.at) / 1000
  const ours = now.ours - start.ours + (self.user + self.system) / 1e6
  return { oursCores: ours / seconds, unattributedCores: Math.max(0, now.machine - start.machine - ours) / seconds, seconds }
}

function rssOf(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, rssBytes(pid)]))
}

async function main(): Promise<void> {
  installTeardownHandlers()
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: over the ${CONFIG.maxTotalMs / 1000} s time limit, stopping\n`)
    void stopAll().finally(() => process.exit(1))
  }, CONFIG.maxTotalMs)
  watchdog.unref()

  // Other work on a shared machine skews everything: say so up front (and in the report).
  const busyBefore = machineBusySeconds()
  await new Promise((r) => setTimeout(r, 1000))
  const busyAtStart = machineBusySeconds() - busyBefore
  if (busyAtStart > 0.5) progress(`note: the machine is already busy (${busyAtStart.toFixed(2)} cores) before the bench starts; expect noisy numbers`)
  const runtime = await ensurePrebuilt(TOLLGATE_ROOT)
  progress(`starting processes${QUICK ? ' (BENCH_QUICK=1)' : ''}; tollgate runs ${runtime === 'prebuilt' ? 'the prebuilt bundle (bin/prebuilt.mjs)' : 'its sources through tsx'}`)
  const mock = await startMock(ROOT)
  const tollgateFlags = CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(CPU_PROF_DIR)}`] : []
  // The headline: the sidecar deployment, `tollgate proxy` shipping spans to a separate `tollgate collector`.
  const tollgate = await startStandaloneTollgate(TOLLGATE_ROOT, mock.url, tollgateFlags)
  const aio: StartedTollgate | null = ALL_IN_ONE ? await startTollgate(TOLLGATE_ROOT, mock.url, tollgateFlags) : null
  const nginxPath = onPath('nginx')
  let nginx: StartedNginx | null = null
  if (nginxPath) nginx = await startNginx(nginxPath, mock.port)
  else console.log('note: nginx is not on PATH, so the nginx reference is skipped (apt-get install nginx-light adds it).')
  const floor = NODE_FLOOR ? await startNodeFloor(ROOT, mock.url) : null
  const hp3Floor = NODE_FLOOR ? await startNodeFloor(ROOT, mock.url, [], 'http-proxy-3') : null
  progress(`mock ${mock.url} (pid ${mock.process.pid}), tollgate proxy ${tollgate.proxyUrl} (pid ${tollgate.proxy.pid}) → collector ${tollgate.collectorUrl} (pid ${tollgate.collector.pid})${aio ? `, tollgate-aio ${aio.proxyUrl} (pid ${aio.process.pid})` : ''}${nginx ? `, nginx ${nginx.url} (pid ${nginx.process.pid})` : ''}${floor ? `, node-floor ${floor.url} (pid ${floor.process.pid})` : ''}${hp3Floor ? `, hp3-floor ${hp3Floor.url} (pid ${hp3Floor.process.pid})` : ''}`)

  const endpoints: PerTarget<Endpoint> = {
    direct: endpointFor('direct', mock.url, '/v1/chat/completions'),
    tollgate: endpointFor('tollgate', tollgate.proxyUrl, '/openai/v1/chat/completions'),
    ...(aio ? { 'tollgate-aio': endpointFor('tollgate-aio', aio.proxyUrl, '/openai/v1/chat/completions') } : {}),
    ...(nginx ? { nginx: endpointFor('nginx', nginx.url, '/openai/v1/chat/completions') } : {}),
    ...(floor ? { 'node-floor': endpointFor('node-floor', floor.url, '/openai/v1/chat/completions') } : {}),
    ...(hp3Floor ? { 'hp3-floor': endpointFor('hp3-floor', hp3Floor.url, '/openai/v1/chat/completions') } : {}),
  }
  const targets = (['direct', 'tollgate', 'tollgate-aio', 'nginx', 'node-floor', 'hp3-floor'] as const).filter((t) => endpoints[t] !== undefined)
  const pids: Record<string, number> = {
    tollgate: tollgate.proxy.pid,
    collector: tollgate.collector.pid,
    ...(aio ? { 'tollgate-aio': aio.process.pid } : {}),
    mock: mock.process.pid,
    ...(nginx ? { nginx: nginx.process.pid } : {}),
    ...(floor ? { 'node-floor': floor.process.pid } : {}),
    ...(hp3Floor ? { 'hp3-floor': hp3Floor.process.pid } : {}),
  }
  const endpointOf = (t: TargetName): Endpoint => {
    const e = endpoints[t]
    if (!e) throw new Error(`no endpoint for ${t}`)
    return e
  }

  await sanityCheck(endpoints)
  const rssIdle = rssOf(pids)
  const loadStart = machineLoadSample(pids)

  const capacity: PerTarget<number> = {}
  for (const t of targets) {
    progress(`warm-up, ${t}: ${CONFIG.warmupSeconds[t]} s saturated, then a few streams`)
    // The last 2 s of the warm-up double as an estimate of the target's capacity.
    const warmupOptions = { connections: 32, warmupSeconds: Math.max(0, CONFIG.warmupSeconds[t] - 2), durationSeconds: 2 }
    capacity[t] = (await measureThroughput(endpointOf(t), warmupOptions, {})).rps
    await streamingLatency(endpointOf(t), { ...CONFIG.streaming, streams: 16 })
  }
  const rssAfterWarmup = rssOf(pids)
  // "Well below saturation" must hold for the slowest target, or the open-loop figure is queueing:
  // at most 30% of the slowest warm-up throughput, in steps of 10 req/s.
  const slowest = Math.min(...targets.map((t) => capacity[t] ?? Number.POSITIVE_INFINITY))
  const openLoopRate = Math.max(50, Math.min(CONFIG.openLoop.rate, Math.floor((slowest * 0.3) / 10) * 10))
  const openLoop = { ...CONFIG.openLoop, rate: openLoopRate }
  if (openLoopRate < CONFIG.openLoop.rate) {
    progress(`open-loop rate lowered from ${CONFIG.openLoop.rate} to ${openLoopRate} req/s (30% of the slowest target's ${Math.round(slowest)} req/s)`)
  }
  const spanLine = await describeLatestSpan(tollgate.collectorUrl)
  progress(`tollgate's latest span (standalone collector): ${spanLine}`)
  const aioSpanLine = aio ? await describeLatestSpan(aio.collectorUrl) : null
  if (aioSpanLine) progress(`tollgate-aio's latest span: ${aioSpanLine}`)

  const sequentialRounds: PerTarget<SequentialResult>[] = []
  const openLoopRounds: PerTarget<OpenLoopResult>[] = []
  const throughputRounds: PerTarget<ThroughputResult[]>[] = []
  for (let round = 0; round < CONFIG.rounds; round++) {
    // Interleave the targets, and reverse their order every other round, so drift hits all alike.
    const order = round % 2 === 0 ? [...targets] : [...targets].reverse()
    const seq: PerTarget<SequentialResult> = {}
    const open: PerTarget<OpenLoopResult> = {}
    const tp: PerTarget<ThroughputResult[]> = {}
    for (const t of order) {
      progress(`round ${round + 1}/${CONFIG.rounds}: sequential, ${t}`)
      seq[t] = await sequentialLatency(endpointOf(t), CONFIG.sequential)
    }
    for (const t of order) {
      progress(`round ${round + 1}/${CONFIG.rounds}: open loop ${openLoop.rate} req/s on ${openLoop.connections} connections, ${t}`)
      open[t] = await openLoopLatency(endpointOf(t), openLoop)
    }
    for (const t of order) {
      const results: ThroughputResult[] = []
      for (const connections of CONFIG.throughput.connections) {
        progress(`round ${round + 1}/${CONFIG.rounds}: throughput, ${connections} connections, ${t}`)
        results.push(await measureThroughput(endpointOf(t), { ...CONFIG.throughput, connections }, pids))
      }
      tp[t] = results
    }
    sequentialRounds.push(seq)
    openLoopRounds.push(open)
    throughputRounds.push(tp)
  }

  const streamingRounds: PerTarget<StreamingResult>[] = []
  for (let round = 0; round < CONFIG.streaming.rounds; round++) {
    const order = round % 2 === 0 ? [...targets] : [...targets].reverse()
    const r: PerTarget<StreamingResult> = {}
    for (const t of order) {
      progress(`streaming round ${round + 1}/${CONFIG.streaming.rounds}: ${t}`)
      r[t] = await streamingLatency(endpointOf(t), CONFIG.streaming)
    }
    streamingRounds.push(r)
  }

  // Memory last: after every other phase (256-connection saturation included) has grown the heap as
  // much as it will, so the figure is what a process that has been busy holds, and the chDB work the
  // streams' spans cause cannot disturb the latency rounds.
  // The standalone proxy first (the collector is watched too: it stores the streams' spans), then the all-in-one.
  const rssBeforeStreams = rssOf(pids)
  progress(`memory: ${CONFIG.memory.streams} concurrent streams through tollgate (a chunk every ${CONFIG.memory.intervalMs} ms), held ${CONFIG.memory.holdMs / 1000} s`)
  const memory: MemoryResult = await holdManyStreams(endpointOf('tollgate'), CONFIG.memory, {
    tollgate: tollgate.proxy.pid,
    collector: tollgate.collector.pid,
    mock: mock.process.pid,
  })
  let memoryAio: MemoryResult | null = null
  const rssBeforeAioStreams = rssOf(pids)
  if (aio) {
    progress(`memory: ${CONFIG.memory.streams} concurrent streams through tollgate-aio, held ${CONFIG.memory.holdMs / 1000} s`)
    memoryAio = await holdManyStreams(endpointOf('tollgate-aio'), CONFIG.memory, { 'tollgate-aio': aio.process.pid, mock: mock.process.pid })
  }
  const load = machineLoadSince(loadStart, pids)
  for (const p of [tollgate.proxy, tollgate.collector, ...(aio ? [aio.process] : [])]) {
    if (!Number.isFinite(rssBytes(p.pid))) throw new Error(`${p.name} died during the run:\n${p.stderrTail()}`)
  }

  const summary: BenchSummary = {
    targets: [...targets],
    rounds: CONFIG.rounds,
    sequential: latencySummary(
      sequentialRounds.map((r) => Object.fromEntries(Object.entries(r).map(([t, x]) => [t, x.latency]))),
      [...targets],
    ),
    openLoop: latencySummary(
      openLoopRounds.map((r) => Object.fromEntries(Object.entries(r).map(([t, x]) => [t, x.fromScheduled]))),
      [...targets],
    ),
    throughput: CONFIG.throughput.connections.map((c) => throughputSummary(throughputRounds, [...targets], c)),
    streaming: streamingSummary(streamingRounds, [...targets]),
    memory: memorySummary(memory, rssIdle, rssAfterWarmup, rssBeforeStreams),
    memoryAllInOne: memoryAio ? memorySummary(memoryAio, rssIdle, rssAfterWarmup, rssBeforeAioStreams) : null,
    machineLoad: { ...load, busyCoresBeforeStart: busyAtStart },
  }
  const shape: RunShape = {
    quick: QUICK,
    sequentialCount: CONFIG.sequential.count,
    openLoopConnections: CONFIG.openLoop.connections,
    openLoopRate: openLoopRate,
    openLoopConfiguredRate: CONFIG.openLoop.rate,
    warmupCapacity: capacity,
    openLoopSeconds: CONFIG.openLoop.durationMs / 1000,
    throughputSeconds: CONFIG.throughput.durationSeconds,
    streamingStreams: CONFIG.streaming.streams,
    streamingConcurrency: CONFIG.streaming.concurrency,
    streamingRounds: CONFIG.streaming.rounds,
    memoryStreams: CONFIG.memory.streams,
  }
  const machine = machineInfo(nginx?.version ?? null, TOLLGATE_ROOT)
  const checks = evaluateTargets(summary)
  const openLoopDiagnostics = openLoopRounds.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([t, x]) => [
        t,
        `from send p50/p99 ${x.fromSend.p50.toFixed(3)}/${x.fromSend.p99.toFixed(3)} ms, timer lag p50/p99 ${x.sendLag.p50.toFixed(3)}/${x.sendLag.p99.toFixed(3)} ms, ${x.socketsOpened} sockets, ${x.achievedRate.toFixed(0)} req/s, ${x.errors} errors`,
      ]),
    ),
  )

  console.log('')
  console.log(renderReport(summary, shape, machine, checks))
  console.log('')
  console.log(`Tollgate span check (standalone collector): ${spanLine}`)
  if (aioSpanLine) console.log(`Tollgate span check (all-in-one): ${aioSpanLine}`)
  console.log('Open-loop diagnostics per round (latency from the actual send; how late the client timer fired):')
  openLoopDiagnostics.forEach((r, i) => {
    for (const [t, line] of Object.entries(r)) console.log(`  round ${i + 1} ${t.padEnd(8)} ${line}`)
  })

  mkdirSync(dirname(RESULTS_FILE), { recursive: true })
  const json = {
    date: machine.date,
    command: QUICK ? 'BENCH_QUICK=1 npm run bench' : 'npm run bench',
    machine,
    config: CONFIG,
    aggregation: `median of ${CONFIG.rounds} rounds; added = per-round (proxy − direct), then median`,
    loadGenerator: 'node:http client (latency, streaming) and autocannon (throughput) inside the bench process: one thread',
    units: { latency: 'ms', throughput: 'requests/s', rss: 'bytes', cpuMsPerRequest: 'ms of CPU per request' },
    processes: {
      tollgate: { pid: tollgate.proxy.pid, nodeFlags: tollgate.nodeFlags, url: tollgate.proxyUrl, command: 'tollgate proxy' },
      collector: { pid: tollgate.collector.pid, url: tollgate.collectorUrl, command: 'tollgate collector' },
      tollgateAllInOne: aio ? { pid: aio.process.pid, nodeFlags: aio.nodeFlags, url: aio.proxyUrl, command: 'tollgate start' } : null,
      mock: { pid: mock.process.pid, url: mock.url },
      nginx: nginx ? { pid: nginx.process.pid, url: nginx.url, version: nginx.version } : null,
      nodeFloor: floor ? { pid: floor.process.pid, url: floor.url } : null,
      hp3Floor: hp3Floor ? { pid: hp3Floor.process.pid, url: hp3Floor.url } : null,
    },
    tollgateSpanCheck: spanLine,
    tollgateAllInOneSpanCheck: aioSpanLine,
    summary,
    checks,
    raw: { sequentialRounds, openLoopRounds, throughputRounds, streamingRounds, memory, memoryAllInOne: memoryAio },
    wallSeconds: (performance.now() - t0) / 1000,
  }
  writeFileSync(RESULTS_FILE, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? round(v, 4) : v), 2) + '\n')
  console.log(`\nAll numbers: ${RESULTS_FILE}  (wall time ${((performance.now() - t0) / 1000).toFixed(0)} s)`)
}

main()
  .then(async () => {
    await stopAll()
    process.exit(0)
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    await stopAll()
    process.exit(1)
  })

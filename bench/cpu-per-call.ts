/**
 * A focused harness for the proxy's CPU per non-streaming call, for comparing
 * builds or checkouts one change at a time without the full bench's 5 minutes.
 * Each target gets its own standalone proxy (+ collector, as in `npm run bench`)
 * in front of one shared mock; rounds alternate targets so drift hits them alike.
 *
 *   flock /tmp/tollgate-bench.lock node bin/run-ts.mjs bench/cpu-per-call.ts [label=root …] [floor] [hp3floor]
 *
 * Env: CPC_ROUNDS (default 3), CPC_SECONDS (per measured run, default 3),
 * CPC_WARMUP (seconds per target before the rounds, default 7),
 * CPC_CONNECTIONS (default 32), CPC_STREAMS (e.g. 1000: then hold that many
 * trickling streams through each target, as the full bench's memory phase
 * does, and print the proxy's RSS before and at the peak), CPC_PROF (a directory: each proxy runs with
 * --cpu-prof and writes <label>.cpuprofile there when it stops).
 * Prints, per target, the median CPU ms per call of the proxy process and
 * of the collector, and req/s.
 */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { ensurePrebuilt, installTeardownHandlers, startMock, startNodeFloor, startStandaloneTollgate, stopAll } from './processes.ts'
import { measureThroughput } from './throughput.ts'
import { holdManyStreams } from './memory.ts'
import { rssBytes } from './processes.ts'
import { median } from './stats.ts'
import type { Endpoint } from './latency.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const rounds = Number(process.env.CPC_ROUNDS ?? 3)
const seconds = Number(process.env.CPC_SECONDS ?? 3)
const warmup = Number(process.env.CPC_WARMUP ?? 7)
const connections = Number(process.env.CPC_CONNECTIONS ?? 32)
/** After the rounds, hold this many streams through each target in turn (the full bench's memory phase) and print peak RSS. */
const streams = Number(process.env.CPC_STREAMS ?? 0)
/** Start each proxy with --cpu-prof into this directory (a .cpuprofile per proxy, written when it stops). */
const profDir = process.env.CPC_PROF

interface Target {
  label: string
  stop: () => Promise<void>
  endpoint: Endpoint
  pids: Record<string, number>
  cpu: number[]
  collectorCpu: number[]
  rps: number[]
}

installTeardownHandlers()
const args = process.argv.slice(2)
const specs = args.filter((a) => a !== 'floor' && a !== 'hp3floor').map((a) => {
  const [label, root] = a.includes('=') ? (a.split('=', 2) as [string, string]) : [a, a]
  return { label, root: resolve(root) }
})
if (specs.length === 0 && !args.includes('floor') && !args.includes('hp3floor')) specs.push({ label: 'tollgate', root: ROOT })

const t0 = performance.now()
const log = (m: string): void => void process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${m}\n`)

try {
  const mock = await startMock(ROOT)
  const targets: Target[] = []
  for (const { label, root } of specs) {
    log(`${label}: runs ${await ensurePrebuilt(root)}`)
    const s = await startStandaloneTollgate(root, mock.url, profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${label}.cpuprofile`] : [])
    const url = new URL(s.proxyUrl)
    targets.push({
      label,
      // Before its collector, with time to deliver its last spans: a profile is written only on a clean exit.
      stop: () => s.proxy.stop(10_000),
      endpoint: { name: label, host: url.hostname, port: Number(url.port), chatPath: '/openai/v1/chat/completions' },
      pids: { proxy: s.proxy.pid, collector: s.collector.pid, mock: mock.process.pid },
      cpu: [],
      collectorCpu: [],
      rps: [],
    })
  }
  for (const [arg, label, kind] of [['floor', 'node-floor', 'node'], ['hp3floor', 'hp3-floor', 'http-proxy-3']] as const) {
    if (!args.includes(arg)) continue
    const f = await startNodeFloor(ROOT, mock.url, profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${label}.cpuprofile`] : [], kind)
    const url = new URL(f.url)
    targets.push({
      label,
      stop: () => f.process.stop(),
      endpoint: { name: label, host: url.hostname, port: Number(url.port), chatPath: '/openai/v1/chat/completions' },
      pids: { proxy: f.process.pid, mock: mock.process.pid },
      cpu: [],
      collectorCpu: [],
      rps: [],
    })
  }
  for (const t of targets) {
    log(`warm-up ${t.label}`)
    await measureThroughput(t.endpoint, { connections, warmupSeconds: 0, durationSeconds: warmup }, {})
  }
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse()
    for (const t of order) {
      const res = await measureThroughput(t.endpoint, { connections, warmupSeconds: 0.5, durationSeconds: seconds }, t.pids)
      t.cpu.push(res.cpuMsPerRequest.proxy ?? NaN)
      t.collectorCpu.push(res.cpuMsPerRequest.collector ?? NaN)
      t.rps.push(res.rps)
      log(`round ${r + 1} ${t.label}: proxy ${res.cpuMsPerRequest.proxy?.toFixed(3)} ms/call, ${res.rps.toFixed(0)} req/s, failures ${res.failures}, unattributed ${res.cpuCores.unattributed?.toFixed(2)} cores`)
    }
  }
  for (const t of targets) {
    const f = (xs: number[]): string => xs.map((x) => x.toFixed(3)).join(' ')
    process.stdout.write(
      `${t.label.padEnd(16)} proxy CPU ms/call median ${median(t.cpu).toFixed(3)} [${f(t.cpu)}]  collector ${median(t.collectorCpu).toFixed(3)}  req/s ${median(t.rps).toFixed(0)}\n`,
    )
  }
  if (streams > 0) {
    const mib = (b: number | undefined): string => ((b ?? NaN) / 2 ** 20).toFixed(1)
    for (const t of targets) {
      const before = rssBytes(t.pids.proxy!)
      const m = await holdManyStreams(
        t.endpoint,
        { streams, chunks: 400, intervalMs: 100, maxOpening: 64, maxRampMs: 25_000, holdMs: 10_000, sampleMs: 200, settleMs: 5_000 },
        { proxy: t.pids.proxy! },
      )
      process.stdout.write(
        `${t.label.padEnd(16)} ${streams} streams: RSS before ${mib(before)} MiB, peak ${mib(m.peakRss.proxy)} MiB (${m.openAtPeak} open), 5 s after ${mib(m.rssAfter.proxy)} MiB; ${m.failed} failed; CPU ${m.cpuUsPerEvent.proxy?.toFixed(1)} µs/event\n`,
      )
    }
  }
  await Promise.all(targets.map((t) => t.stop()))
} finally {
  await stopAll()
}

/**
 * Turns the run's numbers into the printed tables, the PASS/FAIL list against
 * the issue's targets, and the machine description that goes into the JSON.
 */
import { execFileSync } from 'node:child_process'
import { cpus, release, totalmem } from 'node:os'

/**
 * `tollgate` is the sidecar: `tollgate proxy` sending spans over HTTP to a
 * separate `tollgate collector` process (the targets are judged on it).
 * `tollgate-aio` is `tollgate start`: proxy, collector and embedded chDB in one
 * process (judged too, reported apart). `node-floor` is
 * bench/node-floor-proxy.ts and `hp3-floor` the same relaying through
 * http-proxy-3 alone, both only with BENCH_NODE_FLOOR=1.
 */
export type TargetName = 'direct' | 'tollgate' | 'tollgate-aio' | 'nginx' | 'node-floor' | 'hp3-floor'
/** The Tollgate deployments whose figures are judged against the targets. */
export const JUDGED: readonly ('tollgate' | 'tollgate-aio')[] = ['tollgate', 'tollgate-aio']
export type ProxyName = Exclude<TargetName, 'direct'>

export interface Pair {
  p50: number
  p99: number
}

export interface LatencySummary {
  /** Median over rounds of each target's own p50/p99, ms. */
  byTarget: Partial<Record<TargetName, Pair>>
  /** Median over rounds of (proxy − direct) of that round, ms. */
  added: Partial<Record<ProxyName, Pair>>
  /** The per-round added values, so the spread is visible. */
  addedPerRound: Partial<Record<ProxyName, Pair[]>>
}

export interface ThroughputSummary {
  connections: number
  /** Median over rounds, requests/s. */
  rps: Partial<Record<TargetName, number>>
  /** Median over rounds of proxy rps ÷ direct rps of that round. */
  ratio: Partial<Record<ProxyName, number>>
  /** Median over rounds of CPU ms per request, per process, for each target's run. */
  cpuMsPerRequest: Partial<Record<TargetName, Record<string, number>>>
  /** Median over rounds of cores used, per process, for each target's run. */
  cpuCores: Partial<Record<TargetName, Record<string, number>>>
  failures: Partial<Record<TargetName, number>>
}

export interface StreamFigures {
  ttftP50: number
  ttftP99: number
  gapMean: number
  gapP99: number
}

export interface StreamingSummary {
  chunks: number
  intervalMs: number
  byTarget: Partial<Record<TargetName, StreamFigures>>
  added: Partial<Record<ProxyName, StreamFigures>>
  bad: Partial<Record<TargetName, number>>
}

export interface MemorySummary {
  streams: number
  chunkIntervalMs: number
  /** Streams whose headers arrived, and those that failed before the client closed them. */
  opened: number
  failed: number
  peakOpen: number
  /** Streams open when Tollgate's RSS peaked. */
  openAtPeak: number
  rampMs: number
  holdMs: number
  settleMs: number
  /** SSE events per second the client received during the hold. */
  eventsPerSecond: number
  /** CPU µs per SSE event during the hold, by process. */
  cpuUsPerEvent: Record<string, number>
  cpuCores: Record<string, number>
  /** Bytes, by process name. */
  idle: Record<string, number>
  afterWarmup: Record<string, number>
  /** Just before the streams: after every other phase (saturation at 256 connections included). */
  beforeStreams: Record<string, number>
  peak: Record<string, number>
  after: Record<string, number>
}

export interface BenchSummary {
  targets: TargetName[]
  rounds: number
  sequential: LatencySummary
  openLoop: LatencySummary
  throughput: ThroughputSummary[]
  streaming: StreamingSummary
  /** 1,000 streams through the standalone proxy (RSS of proxy, collector and mock apart). */
  memory: MemorySummary
  /** The same through the all-in-one process, when it was measured. */
  memoryAllInOne: MemorySummary | null
  /** Average cores busy over the measured phases: the bench's own processes, and the rest of the machine. */
  machineLoad: { oursCores: number; unattributedCores: number; seconds: number; busyCoresBeforeStart: number }
}

export interface RunShape {
  quick: boolean
  sequentialCount: number
  openLoopConnections: number
  /** The rate used: the configured one, or 30% of the slowest target's warm-up throughput if that is lower. */
  openLoopRate: number
  openLoopConfiguredRate: number
  /** Each target's throughput over the last 2 s of its warm-up (32 connections), req/s. */
  warmupCapacity: Partial<Record<TargetName, number>>
  openLoopSeconds: number
  throughputSeconds: number
  streamingStreams: number
  streamingConcurrency: number
  streamingRounds: number
  memoryStreams: number
}

export interface TargetCheck {
  /** Which deployment: `tollgate` (standalone proxy) or `tollgate-aio`. */
  target: 'tollgate' | 'tollgate-aio'
  name: string
  value: number
  limit: number
  unit: string
  /** `≤` or `≥`. */
  op: '≤' | '≥'
  pass: boolean
}

export interface MachineInfo {
  date: string
  nproc: number
  cpuModel: string
  totalMemoryBytes: number
  freeH: string
  node: string
  kernel: string
  nginx: string | null
  /** The Tollgate checkout measured: commit, and how many files differ from it. */
  tollgateRevision: string
}

const MIB = 1024 * 1024

export function machineInfo(nginxVersion: string | null, tollgateRoot: string): MachineInfo {
  const run = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return ''
    }
  }
  return {
    date: new Date().toISOString(),
    nproc: Number(run('nproc', [])) || cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemoryBytes: totalmem(),
    freeH: run('free', ['-h']),
    node: process.version,
    kernel: release(),
    nginx: nginxVersion,
    tollgateRevision: revision(tollgateRoot, run),
  }
}

/** `abc1234 (+3 files changed)` from git, read-only; `unknown` outside a git checkout. */
function revision(root: string, run: (cmd: string, args: string[]) => string): string {
  const commit = run('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])
  if (!commit) return 'unknown (not a git checkout)'
  const changed = run('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']).split('\n').filter(Boolean).length
  return changed > 0 ? `${commit} (+${changed} files changed)` : commit
}

/** The issue's targets, for each Tollgate deployment measured; nginx is for reference. */
export function evaluateTargets(s: BenchSummary): TargetCheck[] {
  const checks: TargetCheck[] = []
  for (const target of JUDGED) {
    if (!s.targets.includes(target)) continue
    const add = (name: string, value: number | undefined, op: '≤' | '≥', limit: number, unit: string): void => {
      const v = value ?? Number.NaN
      checks.push({ target, name, value: v, limit, unit, op, pass: Number.isFinite(v) && (op === '≤' ? v <= limit : v >= limit) })
    }
    add('added p50, 32 conns open loop', s.openLoop.added[target]?.p50, '≤', 0.5, 'ms')
    add('added p99, 32 conns open loop', s.openLoop.added[target]?.p99, '≤', 2, 'ms')
    for (const t of s.throughput) add(`throughput, ${t.connections} conns, of direct`, (t.ratio[target] ?? Number.NaN) * 100, '≥', 40, '%')
    add('added TTFT p50', s.streaming.added[target]?.ttftP50, '≤', 1, 'ms')
    const memory = target === 'tollgate' ? s.memory : s.memoryAllInOne
    add(`RSS of the ${target === 'tollgate' ? 'proxy process' : 'process'} at 1,000 open streams (peak)`, (memory?.peak[target] ?? Number.NaN) / MIB, '≤', 150, 'MiB')
  }
  return checks
}

/** The first `leftColumns` columns left-aligned, the others right-aligned. */
export function formatTable(rows: string[][], indent = '  ', leftColumns = 1): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows
    .map((row) => indent + row.map((cell, i) => (i < leftColumns ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('   ').trimEnd())
    .join('\n')
}

export function fmtMs(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3)
}

function fmtSigned(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—'
  return (v >= 0 ? '+' : '') + v.toFixed(3)
}

function fmtInt(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '—' : Math.round(v).toLocaleString('en-US')
}

function fmtPct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '—' : `${(v * 100).toFixed(1)}%`
}

function fmtMib(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '—' : (v / MIB).toFixed(1)
}

function latencyRows(l: LatencySummary, targets: TargetName[]): string[][] {
  const rows: string[][] = [['', 'p50 ms', 'p99 ms']]
  for (const t of targets) rows.push([t, fmtMs(l.byTarget[t]?.p50), fmtMs(l.byTarget[t]?.p99)])
  for (const p of targets.filter((t): t is ProxyName => t !== 'direct')) {
    const perRound = (l.addedPerRound[p] ?? []).map((a) => `${fmtSigned(a.p50)}/${fmtSigned(a.p99)}`).join('  ')
    rows.push([`added by ${p} (${p} − direct)`, fmtSigned(l.added[p]?.p50), fmtSigned(l.added[p]?.p99), `rounds p50/p99: ${perRound}`])
  }
  return rows
}

export function renderReport(s: BenchSummary, shape: RunShape, machine: MachineInfo, checks: TargetCheck[]): string {
  const out: string[] = []
  const proxies = s.targets.filter((t): t is ProxyName => t !== 'direct')
  out.push(
    `Tollgate benchmark — ${machine.date}${shape.quick ? '  (BENCH_QUICK=1 smoke run: small counts, figures are rough)' : ''}`,
    `tollgate: ${machine.tollgateRevision}`,
    `machine: nproc ${machine.nproc}, ${(machine.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB RAM, ${machine.cpuModel}, node ${machine.node}, kernel ${machine.kernel}${machine.nginx ? `, ${machine.nginx}` : ', nginx not installed'}`,
    `Latency and throughput figures are the median of ${s.rounds} rounds (targets interleaved, order reversed every other round); "added" is computed per round (proxy − direct of the same round), then the median is taken${s.rounds === 2 ? ' (with 2 rounds the median is the mean of the two)' : ''}.`,
    '',
    `Non-streaming chat completions, 1 connection, sequential keep-alive (${shape.sequentialCount} requests after warm-up):`,
    formatTable(latencyRows(s.sequential, s.targets)),
    '',
    `Non-streaming, ${shape.openLoopConnections} connections, open loop at ${shape.openLoopRate} req/s for ${shape.openLoopSeconds} s, latency from the scheduled send time:`,
    ...(shape.openLoopRate < shape.openLoopConfiguredRate
      ? [
          `  (rate lowered from ${shape.openLoopConfiguredRate} req/s to 30% of the slowest target's warm-up throughput, ${Object.entries(shape.warmupCapacity)
            .map(([t, rps]) => `${t} ${fmtInt(rps)}`)
            .join(', ')} req/s, so that no target is near saturation)`,
        ]
      : []),
    formatTable(latencyRows(s.openLoop, s.targets)),
    '',
    `Throughput, saturated closed loop (${shape.throughputSeconds} s per run after warm-up). Load generator: autocannon inside the bench process, ONE thread.`,
  )
  const tpRows: string[][] = [['', ...s.throughput.flatMap((t) => [`${t.connections} conns req/s`, 'of direct'])]]
  for (const target of s.targets) {
    tpRows.push([
      target,
      ...s.throughput.flatMap((t) => [fmtInt(t.rps[target]), target === 'direct' ? '100%' : fmtPct(t.ratio[target as ProxyName])]),
    ])
  }
  out.push(formatTable(tpRows))
  const first = s.throughput[0]
  if (first) {
    out.push(`  CPU per request during the ${first.connections}-connection runs (ms of CPU per request; in brackets, cores busy):`)
    const cpuRows: string[][] = []
    for (const target of s.targets) {
      const perReq = first.cpuMsPerRequest[target] ?? {}
      const cores = first.cpuCores[target] ?? {}
      const shown = Object.keys(perReq).filter((name) => (cores[name] ?? 0) >= 0.02)
      cpuRows.push([
        `  ${target} run`,
        [
          ...shown.map((name) => `${name} ${fmtMs(perReq[name])} (${(cores[name] ?? Number.NaN).toFixed(2)})`),
          `unattributed (${(cores.unattributed ?? Number.NaN).toFixed(2)})`,
        ].join(',  '),
      ])
    }
    out.push(formatTable(cpuRows))
  }
  const failures = s.throughput.flatMap((t) => s.targets.map((x) => t.failures[x] ?? 0)).reduce((a, b) => a + b, 0)
  if (failures > 0) out.push(`  WARNING: ${failures} failed requests (non-2xx, errors or timeouts) in the throughput runs.`)
  out.push('')

  out.push(
    `Streaming chat (stream: true, include_usage), mock sends ${s.streaming.chunks} content chunks ${s.streaming.intervalMs} ms apart (${shape.streamingStreams} streams per target per round, ${shape.streamingConcurrency} at a time, median of ${shape.streamingRounds} round${shape.streamingRounds === 1 ? '' : 's'}):`,
  )
  const stRows: string[][] = [['', 'TTFT p50', 'TTFT p99', 'gap mean', 'gap p99']]
  for (const t of s.targets) {
    const f = s.streaming.byTarget[t]
    stRows.push([t, fmtMs(f?.ttftP50), fmtMs(f?.ttftP99), fmtMs(f?.gapMean), fmtMs(f?.gapP99)])
  }
  for (const p of proxies) {
    const f = s.streaming.added[p]
    stRows.push([`added by ${p}`, fmtSigned(f?.ttftP50), fmtSigned(f?.ttftP99), fmtSigned(f?.gapMean), fmtSigned(f?.gapP99)])
  }
  out.push(formatTable(stRows), '  (ms; gap = time between consecutive content chunks at the client)')
  const badStreams = s.targets.map((t) => s.streaming.bad[t] ?? 0).reduce((a, b) => a + b, 0)
  if (badStreams > 0) out.push(`  WARNING: ${badStreams} streams failed or were incomplete.`)
  out.push('')

  renderMemory(out, s.memory, 'the standalone proxy (tollgate = `tollgate proxy`; collector = `tollgate collector`, which stores the spans)')
  if (s.memoryAllInOne) renderMemory(out, s.memoryAllInOne, 'the all-in-one process (tollgate-aio = `tollgate start`: proxy + collector + embedded chDB)')
  renderTail(out, s, machine, checks)
  return out.join('\n')
}

function renderMemory(out: string[], m: MemorySummary, through: string): void {
  out.push(
    `Memory, RSS in MiB (/proc/<pid>/status VmRSS), after all the latency phases: ${m.streams} streams through ${through}, each trickling a chunk every ${m.chunkIntervalMs} ms,`,
    `  opened in ${(m.rampMs / 1000).toFixed(1)} s (at most ${m.peakOpen} open at once; ${m.openAtPeak} open when the proxy's RSS peaked; ${m.failed} failed), held ${(m.holdMs / 1000).toFixed(0)} s, then closed by the client:`,
  )
  const names = Object.keys(m.peak)
  const memRows: string[][] = [['', 'idle', 'after warm-up', 'before streams', `peak, ${m.streams} streams`, `${(m.settleMs / 1000).toFixed(0)} s after`]]
  for (const name of names) {
    memRows.push([name, fmtMib(m.idle[name]), fmtMib(m.afterWarmup[name]), fmtMib(m.beforeStreams[name]), fmtMib(m.peak[name]), fmtMib(m.after[name])])
  }
  out.push(formatTable(memRows))
  out.push(
    `  During the hold: ${fmtInt(m.eventsPerSecond)} SSE events/s reached the client (${fmtInt((m.streams * 1000) / m.chunkIntervalMs)}/s asked of the mock); CPU per event: ${Object.entries(m.cpuUsPerEvent)
      .map(([name, us]) => `${name} ${us.toFixed(1)} µs (${(m.cpuCores[name] ?? Number.NaN).toFixed(2)} cores)`)
      .join(', ')}.`,
  )
  if (m.peakOpen < m.streams * 0.95) out.push(`  WARNING: only ${m.peakOpen} of ${m.streams} streams were open at the same time; the peak understates ${m.streams} streams.`)
  out.push('')
}

function renderTail(out: string[], s: BenchSummary, machine: MachineInfo, checks: TargetCheck[]): void {
  const load = s.machineLoad
  out.push(
    `Machine load over the run (${load.seconds.toFixed(0)} s): the bench's processes ${load.oursCores.toFixed(2)} cores, everything else ${load.unattributedCores.toFixed(2)} cores (other tenants of this machine and kernel softirq; out of ${machine.nproc}); ${load.busyCoresBeforeStart.toFixed(2)} cores were busy in the second before the bench started.`,
  )
  if (load.unattributedCores > 0.35) {
    out.push(
      `  WARNING: other work kept ${load.unattributedCores.toFixed(2)} of ${machine.nproc} cores busy during the run; every figure, the proxies' most, is inflated by it. Re-run on a quiet machine.`,
    )
  }
  out.push('')

  out.push('Targets (tollgate = standalone proxy, the sidecar; tollgate-aio = all-in-one `tollgate start`):')
  const checkRows = checks.map((c) => [
    c.pass ? 'PASS' : 'FAIL',
    c.target,
    c.name,
    `${c.unit === '%' ? c.value.toFixed(1) : c.unit === 'MiB' ? c.value.toFixed(1) : fmtMs(c.value)} ${c.unit}`,
    `${c.op} ${c.limit} ${c.unit}`,
  ])
  out.push(formatTable(checkRows, '  ', 3))
}

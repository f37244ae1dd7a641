/**
 * Shared plumbing of the collector benchmark: child processes (started,
 * registered, always killed), /proc readings (RSS, CPU per process and per
 * thread), a small keep-alive HTTP client, statistics and the machine's
 * description. Loopback only. Nothing here edits product code; the collector
 * is started as its own process through `bin/tollgate.mjs collector` or the
 * bench launcher `bench/collector/collector-main.ts`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { percentileSorted } from '../stats.ts'

/** The repository root (bench/collector/../..). */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

export const QUICK = process.env.BENCH_QUICK === '1'

export function log(message: string): void {
  process.stderr.write(`[bench:collector ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

// ---------------------------------------------------------------- children

export interface Child {
  name: string
  pid: number
  /** First capture group of each ready pattern. */
  captures: string[]
  stderrTail(): string
  exited(): boolean
  /** SIGTERM, SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>
}

const children = new Set<{ child: ChildProcess; handle: Child }>()
const tempDirs = new Set<string>()

/** A temp dir removed at teardown. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** Removes a temp dir made by makeTempDir now rather than at teardown. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

export interface SpawnOptions {
  name: string
  args: string[]
  env: Record<string, string>
  /** stdout patterns that must all appear before the child counts as ready. */
  ready: RegExp[]
  timeoutMs: number
  /** Passed through to the child's stderr instead of being kept (long loaders report progress). */
  inheritStderr?: boolean
  /** Working directory. @default ROOT */
  cwd?: string
}

/** The parent's environment without TOLLGATE_* / BENCH_* / NODE_OPTIONS, plus `extra`. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('TOLLGATE_') || k.startsWith('BENCH_') || k === 'NODE_OPTIONS') continue
    env[k] = v
  }
  return { ...env, ...extra }
}

/** `node <args>` in the repo root; waits for its ready lines. */
export async function spawnNode(options: SpawnOptions): Promise<Child> {
  const child = spawn(process.execPath, options.args, {
    cwd: options.cwd ?? ROOT,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', options.inheritStderr ? 'inherit' : 'pipe'],
  })
  let stderr = ''
  let stdout = ''
  child.stderr?.setEncoding('utf8')
  child.stdout?.setEncoding('utf8')
  child.stderr?.on('data', (s: string) => {
    stderr = (stderr + s).slice(-8000)
  })
  const exitedPromise = new Promise<void>((r) => child.once('exit', () => r()))
  const isExited = (): boolean => child.exitCode !== null || child.signalCode !== null
  const captures: string[] = options.ready.map(() => '')
  const handle: Child = {
    name: options.name,
    pid: child.pid ?? -1,
    captures,
    stderrTail: () => stderr.trim(),
    exited: isExited,
    async stop(graceMs = 15_000) {
      if (!isExited()) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exitedPromise
        clearTimeout(timer)
      }
      children.delete(entry)
    },
  }
  const entry = { child, handle }
  children.add(entry)
  if (child.pid === undefined) throw new Error(`${options.name}: could not start`)
  await new Promise<void>((resolveReady, reject) => {
    const found = options.ready.map(() => false)
    let settled = false
    const done = (err: Error | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err) reject(err)
      else resolveReady()
    }
    child.stdout?.on('data', (s: string) => {
      stdout = (stdout + s).slice(-8000)
      options.ready.forEach((re, i) => {
        const m = re.exec(stdout)
        if (m && !found[i]) {
          found[i] = true
          captures[i] = m[1] ?? m[0]
        }
      })
      if (found.every(Boolean)) done(null)
    })
    child.once('exit', (code, signal) => done(new Error(`${options.name} exited before it was ready (code ${code}, signal ${signal}):\n${stderr.trim() || stdout.trim()}`)))
    const timer = setTimeout(() => done(new Error(`${options.name} not ready after ${options.timeoutMs} ms:\n${stderr.trim() || stdout.trim()}`)), options.timeoutMs)
    if (options.ready.length === 0) done(null)
  })
  return handle
}

/** Waits for a child started with no ready line (a loader) to exit; rejects on a non-zero code. */
export function spawnNodeToCompletion(options: Omit<SpawnOptions, 'ready'>): Promise<void> {
  const child = spawn(process.execPath, options.args, { cwd: ROOT, env: cleanEnv(options.env), stdio: ['ignore', 'inherit', 'inherit'] })
  const handle: Child = {
    name: options.name,
    pid: child.pid ?? -1,
    captures: [],
    stderrTail: () => '',
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop() {
      if (!handle.exited()) child.kill('SIGTERM')
    },
  }
  const entry = { child, handle }
  children.add(entry)
  return new Promise<void>((resolveDone, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${options.name} took longer than ${options.timeoutMs} ms`))
    }, options.timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      children.delete(entry)
      if (code === 0) resolveDone()
      else reject(new Error(`${options.name} failed (code ${code}, signal ${signal})`))
    })
  })
}

export interface CollectorProcess extends Child {
  url: string
  dataDir: string
}

export interface CollectorLaunch {
  dataDir: string
  /**
   * `cli`: the product as shipped (`node bin/tollgate.mjs collector`).
   * `bench`: bench/collector/collector-main.ts, the same startCollector with
   * batcher options and the query thread cap taken from env (no product knob exists).
   */
  launcher: 'cli' | 'bench'
  maxBatchRows?: number | undefined
  flushIntervalMs?: number | undefined
  queryMaxThreads?: number | undefined
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[] | undefined
  name?: string | undefined
  /**
   * Another checkout (or a patched copy) whose collector to start, e.g. to
   * measure a prototype fix against the same run's baseline. The bench launcher
   * is copied there if missing. @default ROOT
   */
  root?: string | undefined
}

/** A standalone collector on a free loopback port, warn logging, an empty config file. */
export async function startCollectorProcess(launch: CollectorLaunch): Promise<CollectorProcess> {
  const configDir = makeTempDir('tollgate-bench-cfg-')
  const configFile = join(configDir, 'tollgate.config.json')
  writeFileSync(configFile, '{}\n')
  const env: Record<string, string> = {
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_UI_PORT: '0',
    TOLLGATE_DATA_DIR: launch.dataDir,
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_CONFIG: configFile,
  }
  if (launch.maxBatchRows !== undefined) env.BENCH_MAX_BATCH_ROWS = String(launch.maxBatchRows)
  if (launch.flushIntervalMs !== undefined) env.BENCH_FLUSH_INTERVAL_MS = String(launch.flushIntervalMs)
  if (launch.queryMaxThreads !== undefined) env.BENCH_QUERY_MAX_THREADS = String(launch.queryMaxThreads)
  const script = launch.launcher === 'cli' ? ['bin/tollgate.mjs', 'collector'] : ['bin/run-ts.mjs', 'bench/collector/collector-main.ts']
  if (launch.launcher === 'cli' && (launch.maxBatchRows ?? launch.flushIntervalMs ?? launch.queryMaxThreads) !== undefined) {
    throw new Error('batcher options and the query thread cap need launcher "bench"')
  }
  const root = launch.root ?? ROOT
  if (launch.launcher === 'bench' && root !== ROOT && !existsSync(join(root, 'bench/collector/collector-main.ts'))) {
    mkdirSync(join(root, 'bench/collector'), { recursive: true })
    copyFileSync(join(ROOT, 'bench/collector/collector-main.ts'), join(root, 'bench/collector/collector-main.ts'))
  }
  const child = await spawnNode({
    name: launch.name ?? 'collector',
    cwd: root,
    args: [...(launch.nodeFlags ?? []), ...script],
    env,
    ready: [/Tollgate collector:\s+(\S+)/],
    timeoutMs: 120_000,
  })
  return { ...child, url: child.captures[0] ?? '', dataDir: launch.dataDir }
}

/** Stops every child (in parallel) and removes the temp dirs. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map(({ handle }) => handle.stop().catch(() => {})))
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

function killAllSync(): void {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}

let installed = false

/** exit → SIGKILL what is left; SIGINT/SIGTERM → stop everything; a watchdog past `limitMs`. */
export function installTeardown(limitMs: number): void {
  if (installed) return
  installed = true
  process.on('exit', killAllSync)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the processes it started`)
      stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
    })
  }
  const watchdog = setTimeout(() => {
    log(`watchdog: the run passed ${Math.round(limitMs / 1000)} s; stopping`)
    stopAll().finally(() => process.exit(3))
  }, limitMs)
  watchdog.unref()
}

// ---------------------------------------------------------------- /proc

let clockTicks = 0
function ticks(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** VmRSS in MiB; NaN once the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m?.[1] ? Number(m[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

function statCpu(path: string): { comm: string; seconds: number } | null {
  try {
    const stat = readFileSync(path, 'utf8')
    const open = stat.indexOf('(')
    const close = stat.lastIndexOf(')')
    const rest = stat.slice(close + 2).split(' ')
    return { comm: stat.slice(open + 1, close), seconds: (Number(rest[11]) + Number(rest[12])) / ticks() }
  } catch {
    return null
  }
}

/** user+system CPU seconds of a process (all threads). */
export function cpuSeconds(pid: number): number {
  return statCpu(`/proc/${pid}/stat`)?.seconds ?? Number.NaN
}

/** CPU seconds per thread name (threads of one name summed): where a process spends its CPU. */
export function threadCpu(pid: number): Record<string, number> {
  const out: Record<string, number> = {}
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    const s = statCpu(`/proc/${pid}/task/${tid}/stat`)
    if (!s) continue
    // Pool threads are numbered (QueryPipelineEx, BgSchPool, …): group by the name without digits.
    let name = tid === String(pid) ? 'main (JS event loop)' : s.comm.replace(/[\d]+$/, '').trim() || s.comm
    // Unnamed threads of a Node process: libuv's pool (chDB runs each query and insert there; fs writes, fsync) and V8's helpers (GC, compiler).
    if (name === 'node') name = 'node (libuv pool: chDB calls, fsync; V8 GC)'
    else if (name === 'ThreadPool') name = 'ThreadPool (ClickHouse workers)'
    out[name] = (out[name] ?? 0) + s.seconds
  }
  return out
}

export function diffThreads(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0)
    if (d > 0.005) out[k] = round(d, 2)
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]))
}

/** Busy seconds of the whole machine (all CPUs), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / ticks()
  } catch {
    return Number.NaN
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; bounded by `maxSamples`. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null
  readonly samples: { t: number; mib: number }[] = []
  constructor(
    private readonly pid: number,
    private readonly intervalMs = 200,
    private readonly maxSamples = 50_000,
  ) {}
  start(): this {
    this.sample()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
    this.timer.unref()
    return this
  }
  sample(): number {
    const mib = rssMiB(this.pid)
    if (this.samples.length < this.maxSamples && Number.isFinite(mib)) this.samples.push({ t: performance.now(), mib })
    return mib
  }
  /** Highest sample between two performance.now() times (all when omitted). */
  peak(from = 0, to = Number.POSITIVE_INFINITY): number {
    let peak = Number.NaN
    for (const s of this.samples) if (s.t >= from && s.t <= to && !(s.mib <= peak)) peak = s.mib
    return peak
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }
}

// ---------------------------------------------------------------- HTTP

export interface HttpResult {
  status: number
  body: string
  ms: number
}

/** A keep-alive agent; `maxSockets` bounds the connections. */
export function makeAgent(maxSockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
}

/** One request on `agent`; rejects after `timeoutMs`. */
export function request(agent: http.Agent, method: 'GET' | 'POST', url: string, body: Buffer | null, headers: Record<string, string>, timeoutMs: number): Promise<HttpResult> {
  return new Promise((resolveReq, reject) => {
    const started = performance.now()
    const u = new URL(url)
    const req = http.request(
      {
        agent,
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method,
        headers: body ? { ...headers, 'content-type': 'application/json', 'content-length': String(body.length) } : headers,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolveReq({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${u.pathname} timed out after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body ?? undefined)
  })
}

const getAgent = makeAgent(16)

export async function getJson<T>(url: string, timeoutMs = 120_000): Promise<{ value: T; ms: number }> {
  const res = await request(getAgent, 'GET', url, null, { accept: 'application/json' }, timeoutMs)
  if (res.status !== 200) throw new Error(`GET ${url} → ${res.status}: ${res.body.slice(0, 300)}`)
  return { value: JSON.parse(res.body) as T, ms: res.ms }
}

/** Spans counted by ClickHouse (the rollups, through /api/summary) in [from, to). */
export async function storedSpans(collectorUrl: string, from: number, to: number): Promise<number> {
  const { value } = await getJson<{ rows: { requests: number }[] }>(`${collectorUrl}/api/summary?from=${from}&to=${to}`)
  return value.rows[0]?.requests ?? 0
}

/** The batcher's view from /healthz: rows inserted so far, rows queued, spool bytes. */
export async function health(collectorUrl: string): Promise<{ inserted: number; queueRows: number; spoolBytes: number }> {
  const res = await request(getAgent, 'GET', `${collectorUrl}/healthz`, null, {}, 30_000)
  const h = JSON.parse(res.body) as { inserted_spans?: number; queue_rows?: number; spool_bytes?: number }
  return { inserted: h.inserted_spans ?? 0, queueRows: h.queue_rows ?? 0, spoolBytes: h.spool_bytes ?? 0 }
}

// ---------------------------------------------------------------- statistics

export interface Dist {
  n: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

/** Nearest-rank percentile of an ascending array: the proxy bench's own helper. */
export const percentile = percentileSorted

export function dist(values: readonly number[]): Dist {
  const s = [...values].sort((a, b) => a - b)
  let sum = 0
  for (const v of s) sum += v
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s[s.length - 1] ?? Number.NaN, mean: s.length ? sum / s.length : Number.NaN }
}

export function median(values: readonly number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

export function round(v: number, digits = 1): number {
  if (!Number.isFinite(v)) return v
  const f = 10 ** digits
  return Math.round(v * f) / f
}

// ---------------------------------------------------------------- output

/** A plain-text table; numbers right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)))
  const line = (r: (string | number)[], isHead: boolean): string =>
    r.map((c, i) => (typeof rows[0]?.[i] === 'number' && !isHead ? String(c).padStart(widths[i] ?? 0) : String(c).padEnd(widths[i] ?? 0))).join('  ')
  return [line(cells[0] ?? [], true), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map((r) => line(r, false))].join('\n')
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return '—'
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US')
  if (Math.abs(n) >= 100) return n.toFixed(0)
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

// ---------------------------------------------------------------- machine

export interface MachineInfo {
  date: string
  nproc: number
  cpuModel: string
  memTotalGiB: number
  freeH: string
  node: string
  kernel: string
  chdb: string
  loadAvg: number[]
  uptime: string
}

export function uptimeLine(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    return `load average: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`
  }
}

export function machineInfo(): MachineInfo {
  const sh = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim()
    } catch {
      return '?'
    }
  }
  let chdb = '?'
  try {
    chdb = (JSON.parse(readFileSync(join(ROOT, 'node_modules/chdb/package.json'), 'utf8')) as { version?: string }).version ?? '?'
  } catch {
    // not installed
  }
  return {
    date: new Date().toISOString(),
    nproc: Number(sh('nproc', [])) || cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    memTotalGiB: round(totalmem() / 2 ** 30, 1),
    freeH: sh('free', ['-h']),
    node: process.version,
    kernel: release(),
    chdb,
    loadAvg: loadavg().map((l) => round(l, 2)),
    uptime: uptimeLine(),
  }
}

/**
 * The processes a benchmark run starts — the mock upstream, Tollgate
 * (standalone proxy + collector, and all-in-one) and, when it is on PATH, nginx as a reference reverse proxy —
 * and their teardown. Everything binds to 127.0.0.1 on a free port. Every
 * child is registered here and killed on the way out, whether the run ends
 * normally, throws, or is interrupted (SIGINT/SIGTERM).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { pathToFileURL } from 'node:url'

export interface Managed {
  name: string
  pid: number
  /** Last bytes the process wrote to stderr, for error messages. */
  stderrTail(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>
}

const running = new Set<{ child: ChildProcess; managed: Managed }>()
const tempDirs = new Set<string>()

/** A directory under the OS temp dir, removed by `stopAll`. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** A currently free TCP port on 127.0.0.1 (for nginx, which cannot report the port it got). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))))
    })
  })
}

interface SpawnSpec {
  name: string
  command: string
  args: string[]
  cwd: string
  env: NodeJS.ProcessEnv
  /** stdout lines that must all appear before the process counts as ready; their first capture groups are returned. */
  ready: RegExp[]
  /** Only stderr decides readiness when no stdout line is expected (nginx). */
  readyProbe?: () => Promise<boolean>
  timeoutMs: number
}

/** Spawns a child, waits until it is ready, and registers it for teardown. */
async function spawnManaged(spec: SpawnSpec): Promise<{ managed: Managed; captures: string[] }> {
  const child = spawn(spec.command, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stderr?.setEncoding('utf8')
  child.stdout?.setEncoding('utf8')
  // Keep reading both pipes for the whole run, or a chatty child would block on a full pipe.
  child.stderr?.on('data', (s: string) => {
    stderr = (stderr + s).slice(-8_000)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const managed: Managed = {
    name: spec.name,
    pid: child.pid ?? -1,
    stderrTail: () => stderr.trim(),
    async stop(graceMs = 3_000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
      running.delete(entry)
    },
  }
  const entry = { child, managed }
  running.add(entry)
  if (child.pid === undefined) throw new Error(`${spec.name}: could not start ${spec.command}`)

  const captures = await new Promise<string[]>((resolve, reject) => {
    const found: (string | undefined)[] = spec.ready.map(() => undefined)
    let settled = false
    const done = (err: Error | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearInterval(probeTimer)
      if (err) reject(err)
      else resolve(found.map((f) => f ?? ''))
    }
    const check = (): void => {
      if (spec.ready.length > 0 && found.every((f) => f !== undefined)) done(null)
    }
    child.stdout?.on('data', (s: string) => {
      stdout = (stdout + s).slice(-8_000)
      spec.ready.forEach((re, i) => {
        const m = re.exec(stdout)
        if (m && found[i] === undefined) found[i] = m[1] ?? m[0]
      })
      check()
    })
    child.once('exit', (code, signal) =>
      done(new Error(`${spec.name} exited before it was ready (code ${code}, signal ${signal}):\n${stderr.trim() || stdout.trim()}`)),
    )
    const timer = setTimeout(
      () => done(new Error(`${spec.name} not ready after ${spec.timeoutMs} ms:\n${stderr.trim() || stdout.trim()}`)),
      spec.timeoutMs,
    )
    const probe = spec.readyProbe
    let probing = false
    const probeTimer = setInterval(() => {
      if (!probe || probing) return
      probing = true
      probe().then(
        (ok) => {
          probing = false
          if (ok) done(null)
        },
        () => {
          probing = false
        },
      )
    }, 50)
  })
  return { managed, captures }
}

/** Minimal env for a child: the parent's, minus any TOLLGATE_* / MOCK_* / NODE_OPTIONS that could change it. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('TOLLGATE_') || k.startsWith('MOCK_') || k === 'NODE_OPTIONS') continue
    env[k] = v
  }
  return { ...env, ...extra }
}

/**
 * Builds the prebuilt runtime of the checkout at `root` (bin/prebuilt.mjs), so
 * the run measures Tollgate as `npm install` leaves it rather than a
 * bundle-less fallback through tsx. Returns what `bin/tollgate.mjs` will run.
 */
export async function ensurePrebuilt(root: string): Promise<'prebuilt' | 'tsx'> {
  const script = join(root, 'bin', 'prebuilt.mjs')
  try {
    accessSync(script)
  } catch {
    return 'tsx' // a checkout from before the prebuilt runtime
  }
  const { buildPrebuilt, freshPrebuilt } = (await import(pathToFileURL(script).href)) as {
    buildPrebuilt(o: { root: string }): Promise<string>
    freshPrebuilt(o: { root: string }): string | null
  }
  if (!freshPrebuilt({ root })) await buildPrebuilt({ root })
  return freshPrebuilt({ root }) ? 'prebuilt' : 'tsx'
}

export interface StartedMock {
  process: Managed
  url: string
  port: number
}

/** `node bin/run-ts.mjs test/helpers/mock-upstream-main.ts`: the mock as its own process. */
export async function startMock(root: string): Promise<StartedMock> {
  const { managed, captures } = await spawnManaged({
    name: 'mock upstream',
    command: process.execPath,
    args: ['bin/run-ts.mjs', 'test/helpers/mock-upstream-main.ts'],
    cwd: root,
    env: cleanEnv({ MOCK_PORT: '0' }),
    ready: [/^listening (\S+)$/m],
    timeoutMs: 30_000,
  })
  const url = captures[0] ?? ''
  return { process: managed, url, port: Number(new URL(url).port) }
}

export interface StartedTollgate {
  process: Managed
  proxyUrl: string
  collectorUrl: string
  /** Extra node flags it was started with (e.g. --cpu-prof). */
  nodeFlags: string[]
}

/**
 * `node bin/tollgate.mjs start` with the mock as its OpenAI upstream, warn
 * logging, free ports, and a private data dir and (empty) config file so
 * nothing in the working tree changes it.
 */
export async function startTollgate(root: string, upstreamUrl: string, nodeFlags: string[] = []): Promise<StartedTollgate> {
  const dir = makeTempDir('tollgate-bench-')
  const configFile = join(dir, 'tollgate.config.json')
  writeFileSync(configFile, '{}\n')
  const { managed, captures } = await spawnManaged({
    name: 'tollgate',
    command: process.execPath,
    args: [...nodeFlags, 'bin/tollgate.mjs', 'start'],
    cwd: root,
    env: cleanEnv({
      TOLLGATE_HOST: '127.0.0.1',
      TOLLGATE_PROXY_PORT: '0',
      TOLLGATE_UI_PORT: '0',
      TOLLGATE_UPSTREAM_OPENAI: upstreamUrl,
      TOLLGATE_LOG_LEVEL: 'warn',
      TOLLGATE_DATA_DIR: join(dir, 'data'),
      TOLLGATE_CONFIG: configFile,
    }),
    ready: [/Tollgate proxy:\s+(\S+)/, /Tollgate collector:\s+(\S+)/],
    timeoutMs: 30_000,
  })
  return { process: managed, proxyUrl: captures[0] ?? '', collectorUrl: captures[1] ?? '', nodeFlags }
}

export interface StartedStandalone {
  /** `tollgate proxy`: the sidecar under test. */
  proxy: Managed
  /** `tollgate collector`: receives the proxy's spans over HTTP, stores them in its own embedded chDB. */
  collector: Managed
  proxyUrl: string
  collectorUrl: string
  /** Extra node flags the proxy was started with (the collector gets none). */
  nodeFlags: string[]
}

/**
 * The sidecar deployment: `node bin/tollgate.mjs collector` (embedded chDB in
 * its own process), then `node bin/tollgate.mjs proxy` with
 * `TOLLGATE_COLLECTOR_URL` pointing at it, so the proxy process holds no store.
 * Each gets a private data dir; both log at warn.
 */
export async function startStandaloneTollgate(root: string, upstreamUrl: string, nodeFlags: string[] = []): Promise<StartedStandalone> {
  const dir = makeTempDir('tollgate-bench-standalone-')
  const configFile = join(dir, 'tollgate.config.json')
  writeFileSync(configFile, '{}\n')
  const common = {
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_PROXY_PORT: '0',
    TOLLGATE_UI_PORT: '0',
    TOLLGATE_UPSTREAM_OPENAI: upstreamUrl,
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_CONFIG: configFile,
  }
  const collector = await spawnManaged({
    name: 'tollgate collector',
    command: process.execPath,
    args: ['bin/tollgate.mjs', 'collector'],
    cwd: root,
    env: cleanEnv({ ...common, TOLLGATE_DATA_DIR: join(dir, 'collector') }),
    ready: [/Tollgate collector:\s+(\S+)/],
    timeoutMs: 30_000,
  })
  const collectorUrl = collector.captures[0] ?? ''
  const proxy = await spawnManaged({
    name: 'tollgate proxy',
    command: process.execPath,
    args: [...nodeFlags, 'bin/tollgate.mjs', 'proxy'],
    cwd: root,
    env: cleanEnv({ ...common, TOLLGATE_DATA_DIR: join(dir, 'proxy'), TOLLGATE_COLLECTOR_URL: collectorUrl }),
    ready: [/Tollgate proxy:\s+(\S+)/],
    timeoutMs: 30_000,
  })
  return { proxy: proxy.managed, collector: collector.managed, proxyUrl: proxy.captures[0] ?? '', collectorUrl, nodeFlags }
}

/** bench/node-floor-proxy.ts: the minimal Node.js proxy, for reference (BENCH_NODE_FLOOR=1). */
export async function startNodeFloor(
  root: string,
  upstreamUrl: string,
  nodeFlags: string[] = [],
  kind: 'node' | 'http-proxy-3' = 'node',
): Promise<{ process: Managed; url: string }> {
  const { managed, captures } = await spawnManaged({
    name: `${kind}-floor proxy`,
    command: process.execPath,
    args: [...nodeFlags, 'bin/run-ts.mjs', 'bench/node-floor-proxy.ts'],
    cwd: root,
    env: cleanEnv({ FLOOR_UPSTREAM: upstreamUrl, FLOOR_KIND: kind }),
    ready: [/^listening (\S+)$/m],
    timeoutMs: 30_000,
  })
  return { process: managed, url: captures[0] ?? '' }
}

/** The absolute path of `name` on PATH, or null. */
export function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, fsConstants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

export interface StartedNginx {
  process: Managed
  url: string
  version: string
  configFile: string
}

/**
 * nginx as a reference reverse proxy to the mock: one process
 * (`master_process off`, so one event loop like Tollgate's), a keep-alive
 * upstream pool, HTTP/1.1 to the upstream, no response or request buffering.
 * `/openai/...` maps to the mock's `/...`, the same shape as Tollgate's route.
 */
export async function startNginx(nginxPath: string, upstreamPort: number): Promise<StartedNginx> {
  const dir = makeTempDir('tollgate-bench-nginx-')
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub))
  const port = await freePort()
  const configFile = join(dir, 'nginx.conf')
  writeFileSync(
    configFile,
    `# Written by bench/processes.ts for one benchmark run.
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections 8192;
}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream mock {
    server 127.0.0.1:${upstreamPort};
    keepalive 512;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${port};
    location /openai/ {
      proxy_pass http://mock/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`,
  )
  // nginx -v prints to stderr.
  const probe = spawnSync(nginxPath, ['-v'], { encoding: 'utf8' })
  const version = `${probe.stderr}${probe.stdout}`.trim()
  const url = `http://127.0.0.1:${port}`
  const { managed } = await spawnManaged({
    name: 'nginx',
    command: nginxPath,
    args: ['-p', dir, '-c', configFile, '-e', join(dir, 'error.log')],
    cwd: dir,
    env: cleanEnv({}),
    ready: [],
    readyProbe: async () => {
      const res = await fetch(`${url}/openai/health`)
      await res.arrayBuffer()
      return res.status === 200
    },
    timeoutMs: 15_000,
  })
  return { process: managed, url, version, configFile }
}

/** Stops every child started here (in parallel) and removes the temp dirs. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map(({ managed }) => managed.stop().catch(() => {})))
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

/** Last resort on `process.exit`: synchronous SIGKILL for anything still alive. */
function killAllSync(): void {
  for (const { child } of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}

let handlersInstalled = false

/** Installs exit/SIGINT/SIGTERM handlers that tear everything down. */
export function installTeardownHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', killAllSync)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping the processes it started…\n`)
      stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
    })
  }
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS); NaN once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return m?.[1] ? Number(m[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

let clockTicks = 0

/** user+system CPU time of a process so far, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after "(comm) ": state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / clockTicks
  } catch {
    return Number.NaN
  }
}

/** Busy CPU time of the whole machine so far (all CPUs, user+nice+system+irq+softirq+steal), in seconds, from /proc/stat. */
export function machineBusySeconds(): number {
  if (clockTicks === 0) cpuSeconds(process.pid)
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)
    return busy / clockTicks
  } catch {
    return Number.NaN
  }
}

/**
 * Starts a real all-in-one Tollgate (proxy + collector + embedded chDB) on
 * free loopback ports for a test, and reads back what it captured through its
 * own HTTP API.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Span } from '../../collector/schema.ts'
import { startAllInOne, type Tollgate } from '../../cli/start.ts'
import { parseConfig, type ConfigInput } from '../../lib/config.ts'
import { silentLogger, type Logger } from '../../lib/log.ts'

/**
 * libchdb binds one data directory per process: every instance in this test
 * process shares it and gets a database of its own. The directory is unique
 * to this process, not just to its pid: a test fork killed at the end of a
 * run never runs its 'exit' handler, its directory stays in /tmp, and a later
 * process given the same pid would otherwise find the old databases, spans
 * and all. Kept on globalThis so that test files re-evaluating this module in
 * the same process share one directory and one instance counter.
 */
const perProcess = ((globalThis as { [k: symbol]: unknown })[Symbol.for('tollgate.test.chdb')] ??= {
  path: join(tmpdir(), `tollgate-test-chdb-${process.pid}-${randomBytes(6).toString('hex')}`),
  instances: 0,
}) as { path: string; instances: number }
export const PROCESS_CHDB_PATH = perProcess.path
process.once('exit', () => rmSync(PROCESS_CHDB_PATH, { recursive: true, force: true }))

export interface TestTollgate {
  tollgate: Tollgate
  proxyUrl: string
  collectorUrl: string
  dataDir: string
  /** Spans newest first, as GET /api/spans returns them (last 24 h unless `from` is given). */
  spans(query?: Record<string, string>): Promise<Span[]>
  /** Polls /api/spans until at least `count` spans exist (they are stored after the response closes). */
  waitForSpans(count: number, timeoutMs?: number): Promise<Span[]>
  /** GET a collector API path, parsed. */
  api<T = unknown>(pathAndQuery: string): Promise<T>
  metricsText(): Promise<string>
  close(): Promise<void>
}

export async function startTestTollgate(
  config: Partial<ConfigInput> = {},
  options: { upstreamCa?: string; log?: Logger } = {},
): Promise<TestTollgate> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-test-'))
  const tollgate = await startAllInOne(
    parseConfig({ proxyPort: 0, uiPort: 0, logLevel: 'silent', dataDir, ...config }),
    options.log ?? silentLogger,
    {
      database: `t${process.pid}_${++perProcess.instances}`,
      chdbPath: PROCESS_CHDB_PATH,
      ...(options.upstreamCa ? { upstreamCa: options.upstreamCa } : {}),
    },
  )
  const collectorUrl = tollgate.collector.url
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${collectorUrl}${pathAndQuery}`)
    if (!res.ok) throw new Error(`${pathAndQuery} answered ${res.status}: ${await res.text()}`)
    return (await res.json()) as T
  }
  const spans = async (query: Record<string, string> = {}): Promise<Span[]> =>
    (await api<{ spans: Span[] }>(`/api/spans?${new URLSearchParams({ limit: '1000', ...query })}`)).spans
  return {
    tollgate,
    proxyUrl: tollgate.proxy.url,
    collectorUrl,
    dataDir,
    spans,
    api,
    async waitForSpans(count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        await tollgate.collector.batcher.forceFlush()
        const got = await spans()
        if (got.length >= count) return got
        if (Date.now() > deadline) throw new Error(`expected ${count} spans, have ${got.length} after ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    async metricsText() {
      return (await fetch(`${tollgate.proxy.url}/metrics`)).text()
    },
    async close() {
      await tollgate.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

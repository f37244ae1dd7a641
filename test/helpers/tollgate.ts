/**
 * Starts a real all-in-one Tollgate (proxy + collector) on free loopback ports
 * for a test, and reads back what it captured through its own HTTP API.
 */
import type { Span } from '../../collector/schema.ts'
import { startAllInOne, type Tollgate } from '../../cli/start.ts'
import { parseConfig, type ConfigInput } from '../../lib/config.ts'
import { silentLogger } from '../../lib/log.ts'

export interface TestTollgate {
  tollgate: Tollgate
  proxyUrl: string
  collectorUrl: string
  /** Spans newest first, as GET /api/spans returns them. */
  spans(query?: Record<string, string>): Promise<Span[]>
  /** Polls /api/spans until at least `count` spans exist (spans are written after the response closes). */
  waitForSpans(count: number, timeoutMs?: number): Promise<Span[]>
  metricsText(): Promise<string>
  close(): Promise<void>
}

export async function startTestTollgate(config: Partial<ConfigInput> = {}, options: { upstreamCa?: string } = {}): Promise<TestTollgate> {
  const tollgate = await startAllInOne(
    parseConfig({ proxyPort: 0, uiPort: 0, logLevel: 'silent', ...config }),
    silentLogger,
    options,
  )
  const collectorUrl = tollgate.collector.url
  const spans = async (query: Record<string, string> = {}): Promise<Span[]> => {
    const res = await fetch(`${collectorUrl}/api/spans?${new URLSearchParams({ limit: '1000', ...query })}`)
    if (!res.ok) throw new Error(`/api/spans answered ${res.status}: ${await res.text()}`)
    return ((await res.json()) as { spans: Span[] }).spans
  }
  return {
    tollgate,
    proxyUrl: tollgate.proxy.url,
    collectorUrl,
    spans,
    async waitForSpans(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const got = await spans()
        if (got.length >= count) return got
        if (Date.now() > deadline) throw new Error(`expected ${count} spans, have ${got.length} after ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    async metricsText() {
      return (await fetch(`${tollgate.proxy.url}/metrics`)).text()
    },
    close: () => tollgate.close(),
  }
}

/**
 * The Prometheus rules (alerts/) and the Grafana dashboard (deploy/grafana/):
 * promtool checks and unit-tests the rules, and every metric they name must
 * be one a running Tollgate really exposes, so a renamed metric cannot leave
 * an alert silently matching nothing.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mockFaultHeaders, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RULES = join(ROOT, 'alerts/tollgate.rules.yml')
const TESTS_DIR = join(ROOT, 'alerts/tests')
const DASHBOARD = join(ROOT, 'deploy/grafana/tollgate.json')

/** promtool on PATH (Debian's `prometheus` package; .ci/run installs it). */
const PROMTOOL = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0 ? 'promtool' : null
if (!PROMTOOL) console.warn('[test/alerts] promtool not found on PATH: skipping the promtool checks (apt-get install prometheus)')

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL!, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

describe.skipIf(!PROMTOOL)('promtool', () => {
  it('check rules: the rule file is valid', () => {
    const r = promtool('check', 'rules', RULES)
    expect(r.output).toContain('SUCCESS')
    expect(r.status, r.output).toBe(0)
  })

  it('test rules: every alert fires on its scenario and stays quiet on the others', () => {
    const files = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.test.yml')).map((f) => join(TESTS_DIR, f))
    expect(files.length).toBeGreaterThanOrEqual(4)
    const r = promtool('test', 'rules', ...files)
    expect(r.status, r.output).toBe(0)
  })

  it('every dashboard query is valid PromQL', () => {
    // Grafana's variables substituted with plausible values, then parsed by promtool as recording rules.
    const queries = dashboardQueries().map((q) =>
      q.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '6h').replaceAll('$provider', '.*').replaceAll('$model', '.*'),
    )
    const dir = mkdtempSync(join(tmpdir(), 'tg-dash-'))
    try {
      const file = join(dir, 'dashboard.rules.yml')
      const rules = queries.map((q, i) => `      - record: dashboard:query:${i}\n        expr: ${JSON.stringify(q)}`).join('\n')
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`)
      const r = promtool('check', 'rules', file)
      expect(r.status, r.output).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

// ---------------------------------------------------------------- names

/** Every `expr:` and annotation in the rules, comment lines left out. */
function rulesText(): string {
  return readFileSync(RULES, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
}

function dashboardQueries(): string[] {
  interface Target { expr?: string }
  interface Panel { targets?: Target[]; panels?: Panel[] }
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }
  const out: string[] = []
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push(t.expr)
      walk(p.panels ?? [])
    }
  }
  walk(dash.panels)
  return out
}

/** Raw metric names (tollgate_…, not part of a level:metric:operation recording name). */
function metricNames(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w:])(tollgate_[a-z0-9_]+)(?![\w:])/g)].map((m) => m[1]!))
}

/** Recording-rule names (level:metric:operations) referenced. */
function recordingNames(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w:$])([a-z_]*:[a-z0-9_]+:[a-z0-9_]+)/g)].map((m) => m[1]!))
}

/** Sample names a /metrics page can hold: histograms and summaries expand to their series. */
function exposedNames(page: string): Set<string> {
  const names = new Set<string>()
  for (const m of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string]
    names.add(name)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s)
  }
  return names
}

describe('names in the rules and the dashboard', () => {
  let upstream: MockUpstream
  let tg: TestTollgate
  let exposed: Set<string>
  let proxyPage: string

  beforeAll(async () => {
    upstream = await startMockUpstream()
    tg = await startTestTollgate({
      upstreams: { openai: upstream.url },
      budgets: [{ name: 'names-test', scope: {}, period: 'day', limit_usd: 100, webhook_url: 'http://127.0.0.1:9/unused' }],
    })
    // A few real calls so labelled series exist: a success, a stream (TTFT), a 429.
    const call = (body: object, headers: Record<string, string> = {}) =>
      fetch(`${tg.proxyUrl}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }).then((r) => r.text())
    await call({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
    await call({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] })
    await call({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, mockFaultHeaders({ status: 429 }))
    await tg.waitForSpans(3)
    await tg.tollgate.collector.budgets.refresh()
    proxyPage = await tg.metricsText()
    const collectorPage = await (await fetch(`${tg.collectorUrl}/metrics`)).text()
    exposed = new Set([...exposedNames(proxyPage), ...exposedNames(collectorPage)])
  })
  afterAll(async () => {
    await tg?.close()
    await upstream?.close()
  })

  it('the rules name only metrics the proxy and collector expose', () => {
    const used = metricNames(rulesText())
    expect(used.size).toBeGreaterThan(10)
    expect([...used].filter((n) => !exposed.has(n))).toEqual([])
  })

  it('the dashboard names only exposed metrics', () => {
    const used = metricNames(dashboardQueries().join('\n'))
    expect([...used].filter((n) => !exposed.has(n))).toEqual([])
  })

  it('every recording name used is defined by a rule', () => {
    const text = rulesText()
    const defined = new Set([...text.matchAll(/^\s*- record: (\S+)$/gm)].map((m) => m[1]!))
    const used = new Set([...recordingNames(text), ...recordingNames(dashboardQueries().join('\n'))])
    expect([...used].filter((n) => !defined.has(n))).toEqual([])
  })

  it('label values the rules match on are the ones the proxy emits', () => {
    // TollgateRateLimitStorm matches error_type="rate_limited"; the mock's 429 must produce it.
    expect(proxyPage).toMatch(/^tollgate_errors_total\{[^}]*error_type="rate_limited"[^}]*\} 1$/m)
    expect(proxyPage).toMatch(/^tollgate_time_to_first_token_seconds_count\{[^}]*model="gpt-4o"[^}]*\} [1-9]\d*$/m)
    expect(rulesText()).toContain('error_type="rate_limited"')
  })
})

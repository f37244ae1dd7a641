/**
 * Spend budgets end to end: spans with costs posted to a real collector (chDB)
 * through POST /v1/spans, the tracker refreshed by hand, the gauges read back
 * from the collector's /metrics, and webhooks caught by a receiver on
 * 127.0.0.1 that can answer 500 or never answer.
 */
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { budgetSource, createBudgetTracker, periodBounds, spendQuery, type BudgetConfig, type BudgetStatus, type BudgetTracker, type BudgetWebhookPayload } from '../../collector/budgets.ts'
import { createCollectorMetrics } from '../../collector/metrics.ts'
import type { QueryContext } from '../../collector/queries.ts'
import type { Span } from '../../collector/schema.ts'
import { startCollector, type Collector } from '../../collector/server.ts'
import { loadConfig } from '../../lib/config.ts'
import { silentLogger } from '../../lib/log.ts'
import { PROCESS_CHDB_PATH, startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

// ---------------------------------------------------------------- helpers

/** One clock for the whole file, so spans and periods agree even across midnight UTC. */
const T0 = Date.now()
const DAY = 86_400_000

function span(cost: number | null, attribution: { app?: string; user?: string } = {}, at = T0): Span {
  return {
    span_id: randomUUID(),
    started_at: new Date(at).toISOString(),
    ended_at: new Date(at + 250).toISOString(),
    mode: 'reverse',
    provider: 'openai',
    endpoint: 'chat',
    request_model: 'gpt-4o',
    response_model: 'gpt-4o',
    stream: false,
    status_code: 200,
    error_type: 'none',
    duration_ms: 250,
    ttft_ms: null,
    input_tokens: 100,
    output_tokens: 10,
    cached_input_tokens: null,
    cache_write_tokens: null,
    reasoning_tokens: null,
    cost_usd: cost,
    cost_status: cost === null ? 'unpriced' : 'priced',
    finish_reason: 'stop',
    user: attribution.user ?? null,
    session: null,
    app: attribution.app ?? null,
    properties: {},
    request_bytes: 10,
    response_bytes: 10,
    client_addr: null,
  }
}

async function postSpans(collector: Collector, spans: Span[]): Promise<void> {
  const res = await fetch(`${collector.url}/v1/spans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spans) })
  expect(res.status, await res.text()).toBe(200)
  await collector.batcher.forceFlush()
}

/** The value of one sample on a Prometheus text page, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const got = (m[2] ?? '').split(',').filter(Boolean).sort()
    if (got.join(',') === want.join(',')) return Number(m[3])
  }
  return undefined
}

interface Hit {
  path: string
  eventId: string
  contentType: string
  body: BudgetWebhookPayload
}

interface Receiver {
  url: string
  hits: Hit[]
  /** Statuses to answer on a path, in order; afterwards 200. */
  plan(path: string, statuses: number[]): void
  /** Read requests but never answer (until close). */
  hang(on: boolean): void
  on(path: string): Hit[]
  close(): Promise<void>
}

async function startReceiver(): Promise<Receiver> {
  const hits: Hit[] = []
  const plans = new Map<string, number[]>()
  let hanging = false
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      hits.push({
        path: req.url ?? '',
        eventId: String(req.headers['x-tollgate-event-id']),
        contentType: String(req.headers['content-type']),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as BudgetWebhookPayload,
      })
      if (hanging) return
      const status = plans.get(req.url ?? '')?.shift() ?? 200
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'nope')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    plan: (path, statuses) => void plans.set(path, [...statuses]),
    hang: (on) => void (hanging = on),
    on: (path) => hits.filter((h) => h.path === path),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

function byName(statuses: BudgetStatus[], name: string): BudgetStatus {
  const found = statuses.find((b) => b.name === name)
  if (!found) throw new Error(`no budget ${name}`)
  return found
}

// ---------------------------------------------------------------- the wired collector

let receiver: Receiver
let tg: TestTollgate
/** The collector after a restart (same data dir and database). */
let restarted: Collector | null = null
let budgets: BudgetConfig[]
const DAY_START = new Date(periodBounds('day', T0).start).toISOString()
const MONTH_START = new Date(periodBounds('month', T0).start).toISOString()

beforeAll(async () => {
  receiver = await startReceiver()
  budgets = [
    { name: 'all', scope: {}, period: 'day', limit_usd: 1, webhook_url: `${receiver.url}/all` },
    { name: 'chat', scope: { app: 'chat' }, period: 'day', limit_usd: 0.5, webhook_url: `${receiver.url}/chat` },
    { name: 'alice', scope: { user: 'alice' }, period: 'month', limit_usd: 0.2, webhook_url: `${receiver.url}/alice` },
    { name: 'alice-chat', scope: { app: 'chat', user: 'alice' }, period: 'day', limit_usd: 10 },
  ]
  tg = await startTestTollgate({ budgets })
})
afterAll(async () => {
  await restarted?.close()
  await tg.close()
  await receiver.close()
})

describe('budgets on a running collector', () => {
  it('exports limit, spent and remaining per budget, scoped by app, user, both or nothing', async () => {
    const collector = tg.tollgate.collector
    await postSpans(collector, [
      span(0.3, { app: 'chat', user: 'bob' }),
      span(0.1, { app: 'batch', user: 'alice' }),
      // Unpriced: counts as nothing, in the raw table and the rollups alike.
      span(null, { app: 'chat', user: 'alice' }),
      // Yesterday: outside every current day period (inside the month unless today is the 1st).
      span(5, { app: 'chat', user: 'bob' }, T0 - DAY),
    ])
    await collector.budgets.refresh()
    const text = await (await fetch(`${collector.url}/metrics`)).text()
    const g = (name: string, budget: string, period: string) => sample(text, name, { budget, period })
    expect(g('tollgate_budget_limit_usd', 'all', 'day')).toBe(1)
    expect(g('tollgate_budget_spent_usd', 'all', 'day')).toBeCloseTo(0.4, 9)
    expect(g('tollgate_budget_remaining_usd', 'all', 'day')).toBeCloseTo(0.6, 9)
    expect(g('tollgate_budget_spent_usd', 'chat', 'day')).toBeCloseTo(0.3, 9)
    expect(g('tollgate_budget_remaining_usd', 'chat', 'day')).toBeCloseTo(0.2, 9)
    expect(g('tollgate_budget_limit_usd', 'alice', 'month')).toBe(0.2)
    expect(g('tollgate_budget_spent_usd', 'alice', 'month')).toBeCloseTo(0.1, 9)
    expect(g('tollgate_budget_spent_usd', 'alice-chat', 'day')).toBe(0)
    expect(g('tollgate_budget_remaining_usd', 'alice-chat', 'day')).toBe(10)
    // Declared at 0 so the first failure shows in increase().
    expect(sample(text, 'tollgate_budget_webhook_failures_total', { budget: 'chat' })).toBe(0)

    const api = await tg.api<{ budgets: BudgetStatus[] }>('/api/budgets')
    expect(byName(api.budgets, 'all')).toMatchObject({ source: 'rollup', period_start: DAY_START, spent_usd: 0.4, remaining_usd: 0.6, used_ratio: 0.4, crossed: [], error: null })
    expect(byName(api.budgets, 'chat')).toMatchObject({ source: 'rollup', scope: { app: 'chat', user: null } })
    expect(byName(api.budgets, 'alice')).toMatchObject({ source: 'user_rollup', period: 'month', period_start: MONTH_START, spent_usd: 0.1 })
    expect(byName(api.budgets, 'alice-chat')).toMatchObject({ source: 'raw', spent_usd: 0 })

    await collector.budgets.idle()
    expect(receiver.hits).toEqual([])
  })

  it('posts once at 80% and once at 100%, retrying a 500 with the same event id', async () => {
    const collector = tg.tollgate.collector
    receiver.plan('/chat', [500])
    const before = Date.now()
    // chat 0.45 of 0.5 (90%); alice 0.25 of 0.2 (125%: both thresholds in one refresh).
    await postSpans(collector, [span(0.15, { app: 'chat', user: 'alice' })])
    await collector.budgets.refresh()
    await collector.budgets.idle()

    const chat = receiver.on('/chat')
    expect(chat).toHaveLength(2)
    expect(chat[0]!.eventId).toBe(chat[1]!.eventId)
    expect(chat[0]!.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(chat[1]!.body).toEqual(chat[0]!.body)
    expect(chat[0]!.contentType).toBe('application/json')
    const payload = chat[0]!.body
    expect(Object.keys(payload).sort()).toEqual(['budget', 'crossed_at', 'limit_usd', 'period', 'period_start', 'spent_usd', 'threshold'])
    expect(payload).toMatchObject({ budget: 'chat', period: 'day', period_start: DAY_START, limit_usd: 0.5, spent_usd: 0.45, threshold: 0.8 })
    expect(Date.parse(payload.crossed_at)).toBeGreaterThanOrEqual(before - 1000)
    expect(Date.parse(payload.crossed_at)).toBeLessThanOrEqual(Date.now())

    const alice = receiver.on('/alice')
    expect(alice.map((h) => h.body.threshold)).toEqual([0.8, 1])
    expect(new Set(alice.map((h) => h.eventId)).size).toBe(2)
    for (const h of alice) expect(h.body).toMatchObject({ budget: 'alice', period: 'month', period_start: MONTH_START, limit_usd: 0.2, spent_usd: 0.25 })
    expect(receiver.on('/all')).toEqual([])

    const api = await tg.api<{ budgets: BudgetStatus[] }>('/api/budgets')
    expect(byName(api.budgets, 'chat').crossed).toEqual([{ threshold: 0.8, crossed_at: payload.crossed_at, event_id: chat[0]!.eventId, delivery: 'delivered' }])
    expect(byName(api.budgets, 'alice').crossed.map((c) => c.delivery)).toEqual(['delivered', 'delivered'])
    const text = await (await fetch(`${collector.url}/metrics`)).text()
    expect(sample(text, 'tollgate_budget_remaining_usd', { budget: 'alice', period: 'month' })).toBe(0)
    expect(sample(text, 'tollgate_budget_webhook_failures_total', { budget: 'chat' })).toBe(0)
  })

  it('does not post again on later refreshes; global spend crossing both thresholds posts both', async () => {
    const collector = tg.tollgate.collector
    await collector.budgets.refresh()
    await collector.budgets.refresh()
    await collector.budgets.idle()
    expect(receiver.hits).toHaveLength(4)

    // all: 0.55 → 1.05.
    await postSpans(collector, [span(0.5, { app: 'batch', user: 'carol' })])
    await collector.budgets.refresh()
    await collector.budgets.idle()
    const all = receiver.on('/all')
    expect(all.map((h) => [h.body.threshold, h.body.spent_usd])).toEqual([
      [0.8, 1.05],
      [1, 1.05],
    ])
    // Spend beyond the limit keeps showing as spent; remaining stops at 0.
    const text = await (await fetch(`${collector.url}/metrics`)).text()
    expect(sample(text, 'tollgate_budget_spent_usd', { budget: 'all', period: 'day' })).toBeCloseTo(1.05, 9)
    expect(sample(text, 'tollgate_budget_remaining_usd', { budget: 'all', period: 'day' })).toBe(0)
    expect(receiver.hits).toHaveLength(6)
  })

  it('does not post again after a restart of the collector', async () => {
    const collector = tg.tollgate.collector
    const database = /^`?([^`]+)`?\.spans$/.exec(collector.store.tables.spans)?.[1]
    expect(database).toBeTruthy()
    const state = JSON.parse(readFileSync(join(tg.dataDir, 'budgets-state.json'), 'utf8')) as { budgets: Record<string, { events: unknown[] }> }
    expect(state.budgets.all?.events).toHaveLength(2)
    // Stop without removing the data dir, then start a collector on it again.
    await tg.tollgate.close()
    restarted = await startCollector({ host: '127.0.0.1', port: 0, dataDir: tg.dataDir, database, chdbPath: PROCESS_CHDB_PATH, budgets, log: silentLogger })
    await restarted.budgets.refresh()
    await restarted.budgets.idle()
    expect(receiver.hits).toHaveLength(6)
    const api = (await (await fetch(`${restarted.url}/api/budgets`)).json()) as { budgets: BudgetStatus[] }
    expect(byName(api.budgets, 'all')).toMatchObject({ spent_usd: 1.05 })
    expect(byName(api.budgets, 'all').crossed.map((c) => c.threshold)).toEqual([0.8, 1])
  })
})

// ---------------------------------------------------------------- a tracker with its own clock

describe('a budget tracker on an injected clock', () => {
  const trackers: BudgetTracker[] = []
  afterAll(async () => {
    for (const t of trackers) await t.close()
  })

  function tracker(options: { budgets: BudgetConfig[]; stateFile: string; now: () => number; attempts?: number; timeoutMs?: number }) {
    const collector = restarted ?? tg.tollgate.collector
    const queries: QueryContext = { client: collector.store.client, tables: collector.store.tables, settings: collector.store.querySettings }
    const metrics = createCollectorMetrics({ defaultMetrics: false })
    const t = createBudgetTracker({
      budgets: options.budgets,
      queries,
      metrics: metrics.budgets,
      stateFile: options.stateFile,
      log: silentLogger,
      now: options.now,
      webhook: { attempts: options.attempts ?? 3, initialDelayMs: 10, maxDelayMs: 50, timeoutMs: options.timeoutMs ?? 2000 },
    })
    trackers.push(t)
    return { t, metrics }
  }

  it('starts a new period at 00:00 UTC: spend, gauges and thresholds reset', async () => {
    const collector = restarted!
    let now = T0
    const stateFile = join(mkdtempSync(join(tmpdir(), 'tg-budget-')), 'budgets-state.json')
    const budget: BudgetConfig = { name: 'dora', scope: { user: 'dora' }, period: 'day', limit_usd: 1, webhook_url: `${receiver.url}/dora` }
    const { t, metrics } = tracker({ budgets: [budget], stateFile, now: () => now })
    await postSpans(collector, [span(0.9, { user: 'dora' }, T0)])
    await t.refresh()
    await t.idle()
    const first = receiver.on('/dora')
    expect(first.map((h) => [h.body.threshold, h.body.period_start])).toEqual([[0.8, DAY_START]])

    // The next UTC day: nothing spent yet.
    now = periodBounds('day', T0).end + 60_000
    await t.refresh()
    await t.idle()
    const nextStart = new Date(periodBounds('day', now).start).toISOString()
    expect(t.status().budgets[0]).toMatchObject({ period_start: nextStart, spent_usd: 0, remaining_usd: 1, crossed: [] })
    expect(sample(await metrics.registry.metrics(), 'tollgate_budget_spent_usd', { budget: 'dora', period: 'day' })).toBe(0)
    expect(receiver.on('/dora')).toHaveLength(1)

    // Spend in the new day crosses 80% again: a new event for the new period.
    await postSpans(collector, [span(0.85, { user: 'dora' }, now)])
    await t.refresh()
    await t.idle()
    const dora = receiver.on('/dora')
    expect(dora).toHaveLength(2)
    expect(dora[1]!.body).toMatchObject({ threshold: 0.8, period_start: nextStart, spent_usd: 0.85, crossed_at: new Date(now).toISOString() })
    expect(dora[1]!.eventId).not.toBe(dora[0]!.eventId)
  })

  it('reads a user-only budget from the daily per-user rollup, exact to the period bounds', async () => {
    const collector = restarted!
    const { start: monthStart, end: monthEnd } = periodBounds('month', T0)
    const HOUR = 3_600_000
    // Inside every month: the 4th day, 05:30:00.123.
    const now = monthStart + 3 * DAY + 5.5 * HOUR + 123
    const erin = (cost: number | null, at: number) => span(cost, { user: 'erin' }, at)
    const counted = [
      erin(0.0011, monthStart), // the period's first millisecond
      erin(0.0013, monthStart + DAY + 2 * HOUR),
      erin(0.0017, monthStart + 3 * DAY + HOUR),
      erin(null, monthStart + 3 * DAY + 2 * HOUR), // unpriced: counts as 0
      erin(0.0019, now - 10 * 60_000), // the current hour
      erin(0.0023, now + HOUR), // later in the period: the period's spend, as for every budget
      erin(0.0029, monthEnd - 1), // the period's last millisecond
    ]
    const notCounted = [
      erin(0.5, monthStart - 1), // last month
      erin(0.5, monthEnd), // next month
      span(0.5, { user: 'frank' }, monthStart + 3 * DAY + HOUR),
      span(0.5, { user: 'erin2' }, now - 60_000),
    ]
    await postSpans(collector, [...counted, ...notCounted])
    const budget: BudgetConfig = { name: 'erin', scope: { user: 'erin' }, period: 'month', limit_usd: 1 }
    const stateFile = join(mkdtempSync(join(tmpdir(), 'tg-budget-')), 'budgets-state.json')
    const { t } = tracker({ budgets: [budget], stateFile, now: () => now })
    await t.refresh()
    const expected = counted.reduce((sum, s) => sum + (s.cost_usd ?? 0), 0)
    expect(t.status().budgets[0]).toMatchObject({ source: 'user_rollup', period_start: new Date(monthStart).toISOString(), error: null })
    expect(t.status().budgets[0]!.spent_usd).toBeCloseTo(expected, 9)
    // A period is whole days: the daily per-user rollup answers alone, no raw spans read.
    const queries: QueryContext = { client: collector.store.client, tables: collector.store.tables, settings: collector.store.querySettings }
    const { query } = spendQuery(budget, queries, monthStart, monthEnd)
    expect(query).toContain(collector.store.tables.spansUser1d)
    expect(query).not.toContain(`FROM ${collector.store.tables.spans} `)
    // A user and an app together: no rollup keeps both, the raw spans answer.
    expect(budgetSource({ ...budget, scope: { user: 'erin', app: 'chat' } })).toBe('raw')
  })

  it('counts a webhook that keeps failing, and does not retry a 4xx', async () => {
    const collector = restarted!
    const stateFile = join(mkdtempSync(join(tmpdir(), 'tg-budget-')), 'budgets-state.json')
    receiver.plan('/erin', [503, 503, 503, 503])
    receiver.plan('/frank', [400])
    const { t, metrics } = tracker({
      budgets: [
        { name: 'erin', scope: { user: 'erin' }, period: 'day', limit_usd: 1, webhook_url: `${receiver.url}/erin` },
        { name: 'frank', scope: { user: 'frank' }, period: 'day', limit_usd: 1, webhook_url: `${receiver.url}/frank` },
      ],
      stateFile,
      now: () => T0,
    })
    await postSpans(collector, [span(0.85, { user: 'erin' }), span(0.85, { user: 'frank' })])
    await t.refresh()
    await t.idle()
    expect(receiver.on('/erin')).toHaveLength(3)
    expect(new Set(receiver.on('/erin').map((h) => h.eventId)).size).toBe(1)
    expect(receiver.on('/frank')).toHaveLength(1)
    const text = await metrics.registry.metrics()
    expect(sample(text, 'tollgate_budget_webhook_failures_total', { budget: 'erin' })).toBe(1)
    expect(sample(text, 'tollgate_budget_webhook_failures_total', { budget: 'frank' })).toBe(1)
    expect(t.status().budgets.map((b) => b.crossed[0]?.delivery)).toEqual(['failed', 'failed'])
    // Given up on: a refresh does not try again.
    await t.refresh()
    await t.idle()
    expect(receiver.on('/erin')).toHaveLength(3)
  })

  it('resends a notification still pending at shutdown, with the same event id, after a restart', async () => {
    const collector = restarted!
    const stateFile = join(mkdtempSync(join(tmpdir(), 'tg-budget-')), 'budgets-state.json')
    const budget: BudgetConfig = { name: 'gus', scope: { user: 'gus' }, period: 'month', limit_usd: 1, webhook_url: `${receiver.url}/gus` }
    await postSpans(collector, [span(0.95, { user: 'gus' })])
    receiver.hang(true)
    const first = tracker({ budgets: [budget], stateFile, now: () => T0 })
    await first.t.refresh()
    // The request has reached the receiver, which does not answer.
    for (let i = 0; i < 200 && receiver.on('/gus').length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(receiver.on('/gus')).toHaveLength(1)
    await first.t.close()
    receiver.hang(false)

    const second = tracker({ budgets: [budget], stateFile, now: () => T0 })
    await second.t.start()
    await second.t.refresh()
    await second.t.idle()
    const gus = receiver.on('/gus')
    expect(gus).toHaveLength(2)
    expect(gus[1]!.eventId).toBe(gus[0]!.eventId)
    expect(gus[1]!.body).toEqual(gus[0]!.body)
    expect(second.t.status().budgets[0]!.crossed.map((c) => c.delivery)).toEqual(['delivered'])
  })

  it('moves a malformed state file aside and starts afresh', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-budget-'))
    const stateFile = join(dir, 'budgets-state.json')
    writeFileSync(stateFile, '{ not json')
    const { t } = tracker({ budgets: [{ name: 'hal', scope: { user: 'hal' }, period: 'day', limit_usd: 1 }], stateFile, now: () => T0 })
    await t.start()
    await t.refresh()
    await t.idle()
    expect(readdirSync(dir).some((f) => f.startsWith('budgets-state.json.bad-'))).toBe(true)
    expect(existsSync(stateFile)).toBe(true)
    expect(t.status().budgets[0]).toMatchObject({ spent_usd: 0, error: null })
    rmSync(dir, { recursive: true, force: true })
  })
})

// ---------------------------------------------------------------- configuration

describe('budgets configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-budget-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('reads TOLLGATE_BUDGETS as the same JSON as tollgate.config.json, defaulting the scope to all traffic', () => {
    const env = { TOLLGATE_BUDGETS: JSON.stringify([{ name: 'org', period: 'month', limit_usd: 500, webhook_url: 'https://hooks.example/x' }]) }
    expect(loadConfig(env, dir).budgets).toEqual([{ name: 'org', scope: {}, period: 'month', limit_usd: 500, webhook_url: 'https://hooks.example/x' }])
    expect(loadConfig({}, dir).budgets).toEqual([])
  })

  it.each([
    ['not JSON', '[{'],
    ['a bad period', JSON.stringify([{ name: 'a', period: 'week', limit_usd: 1 }])],
    ['a zero limit', JSON.stringify([{ name: 'a', period: 'day', limit_usd: 0 }])],
    ['a name unfit for a label', JSON.stringify([{ name: 'a b"', period: 'day', limit_usd: 1 }])],
    ['an unknown scope key', JSON.stringify([{ name: 'a', period: 'day', limit_usd: 1, scope: { team: 'x' } }])],
    ['a non-http webhook', JSON.stringify([{ name: 'a', period: 'day', limit_usd: 1, webhook_url: 'file:///etc/passwd' }])],
    ['duplicate names', JSON.stringify([{ name: 'a', period: 'day', limit_usd: 1 }, { name: 'a', period: 'month', limit_usd: 2 }])],
  ])('refuses %s', (_what, value) => {
    expect(() => loadConfig({ TOLLGATE_BUDGETS: value }, dir)).toThrow(expect.objectContaining({ code: 'TG_ERR_CONFIG_INVALID' }))
  })
})

/**
 * Spend budgets. Every `intervalMs` the tracker asks ClickHouse what each
 * configured budget's scope has spent since the start of the current UTC day
 * or month, sets the tollgate_budget_* gauges, and announces the first
 * crossing of 80% and of 100% of the limit in each period to the budget's
 * webhook.
 *
 * - Reads never touch ingest: they run on their own timer, and webhooks are
 *   delivered in the background (retried with backoff, a timeout per attempt).
 * - Each announcement is recorded in `<data dir>/budgets-state.json` before it
 *   is sent, so a restart neither forgets nor repeats it; one still pending at
 *   shutdown is sent again at the next start. Its `x-tollgate-event-id` is
 *   derived from (budget, period start, threshold), so every retry and resend
 *   carries the same id and a receiver can drop duplicates.
 * - Spend comes from the hourly rollup when the scope is global or app-only
 *   (periods start on whole hours, so hourly buckets are exact), from the
 *   daily per-user rollup when it names a user only (a period is whole UTC
 *   days), and from the raw spans when it names a user and an app (no rollup
 *   keeps both).
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import type { BudgetConfig } from '../lib/config.ts'
import { errorCode } from '../lib/errors.ts'
import type { Logger } from '../lib/log.ts'
import type { BudgetMetrics } from './metrics.ts'
import { userRollupSource, type QueryContext } from './queries.ts'

export type { BudgetConfig }
export type BudgetPeriod = BudgetConfig['period']

/** Shares of the limit that are announced, each once per period. */
export const BUDGET_THRESHOLDS = [0.8, 1.0] as const
export type BudgetThreshold = (typeof BUDGET_THRESHOLDS)[number]

export const DEFAULT_BUDGET_INTERVAL_MS = 30_000

/** The JSON body POSTed to `webhook_url`. */
export interface BudgetWebhookPayload {
  budget: string
  period: BudgetPeriod
  /** ISO-8601 UTC start of the day or month the spend is counted from. */
  period_start: string
  limit_usd: number
  /** Spend when the crossing was seen. */
  spent_usd: number
  threshold: BudgetThreshold
  crossed_at: string
}

export interface WebhookOptions {
  /** Tries per notification. @default 5 */
  attempts?: number
  /** Wait before the second try; doubles per try (with jitter). @default 1000 */
  initialDelayMs?: number
  /** Longest wait between tries. @default 30000 */
  maxDelayMs?: number
  /** Time one try may take, connect to response headers. @default 10000 */
  timeoutMs?: number
}

export interface BudgetTrackerOptions {
  budgets: readonly BudgetConfig[]
  queries: QueryContext
  metrics: BudgetMetrics
  /** Where announced thresholds are remembered, e.g. `<data dir>/budgets-state.json`. */
  stateFile: string
  log: Logger
  /** @default 30000 */
  intervalMs?: number
  /** Epoch ms; tests move it across period boundaries. @default Date.now */
  now?: () => number
  webhook?: WebhookOptions
}

export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'no_webhook'

export interface BudgetStatus {
  name: string
  scope: { app: string | null; user: string | null }
  period: BudgetPeriod
  period_start: string
  period_end: string
  limit_usd: number
  /** Null until the first successful query. */
  spent_usd: number | null
  remaining_usd: number | null
  used_ratio: number | null
  /** Which tables the spend is read from. */
  source: BudgetSource
  /** Thresholds announced in the current period. */
  crossed: { threshold: BudgetThreshold; crossed_at: string; event_id: string; delivery: DeliveryState }[]
  refreshed_at: string | null
  /** Why the last query failed, if it did. */
  error: string | null
}

export interface BudgetTracker {
  /** Loads the state, resends pending notifications, starts the timer (no-op without budgets). */
  start(): Promise<void>
  /** Queries every budget now (serialised with the timer's runs). */
  refresh(): Promise<void>
  status(): { budgets: BudgetStatus[] }
  /** Resolves once no refresh and no webhook delivery is in progress. */
  idle(): Promise<void>
  /** Stops the timer and aborts deliveries (they stay pending for the next start). */
  close(): Promise<void>
}

// ------------------------------------------------------------------ state file

const thresholdSchema = z.union([z.literal(0.8), z.literal(1)])
const eventSchema = z.object({
  event_id: z.string(),
  threshold: thresholdSchema,
  payload: z.object({
    budget: z.string(),
    period: z.enum(['day', 'month']),
    period_start: z.string(),
    limit_usd: z.number(),
    spent_usd: z.number(),
    threshold: thresholdSchema,
    crossed_at: z.string(),
  }),
  delivery: z.enum(['pending', 'delivered', 'failed', 'no_webhook']),
  last_error: z.string().optional(),
})
const stateSchema = z.object({
  version: z.literal(1),
  budgets: z.record(z.string(), z.object({ period: z.enum(['day', 'month']), period_start: z.string(), events: z.array(eventSchema) })),
})
type FiredEvent = z.infer<typeof eventSchema>
type PeriodEntry = z.infer<typeof stateSchema>['budgets'][string]
type StateFile = z.infer<typeof stateSchema>

// ------------------------------------------------------------------ helpers

/** [start, end) of the UTC day or month holding `nowMs`. */
export function periodBounds(period: BudgetPeriod, nowMs: number): { start: number; end: number } {
  const d = new Date(nowMs)
  const y = d.getUTCFullYear()
  const m = d.getUTCMonth()
  if (period === 'day') {
    const start = Date.UTC(y, m, d.getUTCDate())
    return { start, end: Date.UTC(y, m, d.getUTCDate() + 1) }
  }
  return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) }
}

/** Same inputs, same id: retries, resends after a restart and a lost state file all agree. */
export function budgetEventId(name: string, period: BudgetPeriod, periodStart: string, threshold: BudgetThreshold): string {
  const h = createHash('sha256').update(`${name}\n${period}\n${periodStart}\n${threshold}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/** `rollup`: the hourly rollup; `user_rollup`: the per-user rollups; `raw`: the raw spans. */
export type BudgetSource = 'rollup' | 'user_rollup' | 'raw'

export function budgetSource(budget: BudgetConfig): BudgetSource {
  if (budget.scope.user === undefined) return 'rollup'
  return budget.scope.app === undefined ? 'user_rollup' : 'raw'
}

/** The spend query of one budget over [from, to); only table names (from the store) enter the SQL text. */
export function spendQuery(budget: BudgetConfig, ctx: QueryContext, from: number, to: number): { query: string; params: Record<string, unknown> } {
  const params: Record<string, unknown> = {}
  const source = budgetSource(budget)
  if (source === 'user_rollup') {
    params.user = budget.scope.user
    return { query: `SELECT sum(cost_usd) AS spent FROM ${userRollupSource(ctx.tables, from, to, params, ['user = {user:String}'])}`, params }
  }
  const where: string[] = []
  const raw = source === 'raw'
  let table: string
  if (!raw) {
    table = ctx.tables.spans1h
    params.from_s = from / 1000
    params.to_s = to / 1000
    where.push('bucket >= toDateTime({from_s:UInt32})', 'bucket < toDateTime({to_s:UInt32})')
  } else {
    table = ctx.tables.spans
    params.from_ms = from
    params.to_ms = to
    where.push('started_at >= fromUnixTimestamp64Milli({from_ms:Int64})', 'started_at < fromUnixTimestamp64Milli({to_ms:Int64})')
    params.user = budget.scope.user
    where.push('user = {user:String}')
  }
  if (budget.scope.app !== undefined) {
    params.app = budget.scope.app
    where.push('app = {app:String}')
  }
  // Raw cost is NULL for unpriced calls; the rollup already summed them as 0.
  const amount = raw ? 'ifNull(cost_usd, 0)' : 'cost_usd'
  return { query: `SELECT sum(${amount}) AS spent FROM ${table} WHERE ${where.join(' AND ')}`, params }
}

const round9 = (n: number): number => Math.round(n * 1e9) / 1e9
const iso = (ms: number): string => new Date(ms).toISOString()

/** Worth another try: no answer, a timeout, throttling, or a server error. */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500
}

/** Webhook URLs often carry a secret in the path (Slack, Teams): logs get the origin only. */
function safeOrigin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return '(invalid url)'
  }
}

// ------------------------------------------------------------------ tracker

export function createBudgetTracker(options: BudgetTrackerOptions): BudgetTracker {
  const { budgets, queries, metrics, log } = options
  const clock = options.now ?? Date.now
  const intervalMs = options.intervalMs ?? DEFAULT_BUDGET_INTERVAL_MS
  const attempts = Math.max(1, options.webhook?.attempts ?? 5)
  const initialDelayMs = options.webhook?.initialDelayMs ?? 1000
  const maxDelayMs = options.webhook?.maxDelayMs ?? 30_000
  const timeoutMs = options.webhook?.timeoutMs ?? 10_000

  let state: StateFile = { version: 1, budgets: {} }
  const runtime = new Map<string, { spent: number | null; refreshedAt: number | null; error: string | null }>()
  const inflight = new Set<Promise<void>>()
  const closing = new AbortController()
  let timer: NodeJS.Timeout | null = null
  let refreshing: Promise<void> = Promise.resolve()
  let running = 0
  let writes: Promise<void> = Promise.resolve()

  /** Writes are chained so two never interleave; tmp + rename so a crash leaves the old or the new file, never half. */
  function persist(): Promise<void> {
    const text = JSON.stringify(state, null, 2)
    writes = writes.then(async () => {
      try {
        await mkdir(dirname(options.stateFile), { recursive: true })
        await writeFile(`${options.stateFile}.tmp`, text)
        await rename(`${options.stateFile}.tmp`, options.stateFile)
      } catch (err) {
        log.error({ code: 'TG_ERR_BUDGET_STATE', err: { message: (err as Error).message } }, 'budget state could not be written')
      }
    })
    return writes
  }

  async function load(): Promise<void> {
    let text: string
    try {
      text = await readFile(options.stateFile, 'utf8')
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') log.error({ code: 'TG_ERR_BUDGET_STATE', err: { message: (err as Error).message } }, 'budget state unreadable; starting afresh')
      return
    }
    let parsed: StateFile | null = null
    try {
      const result = stateSchema.safeParse(JSON.parse(text))
      if (result.success) parsed = result.data
    } catch {
      // Not JSON: handled as malformed below.
    }
    if (!parsed) {
      const aside = `${options.stateFile}.bad-${Date.now()}`
      await rename(options.stateFile, aside).catch(() => {})
      log.error({ code: 'TG_ERR_BUDGET_STATE', moved_to: aside }, 'budget state malformed; moved aside, starting afresh')
      return
    }
    // Budgets removed from the config are forgotten.
    const names = new Set(budgets.map((b) => b.name))
    for (const name of Object.keys(parsed.budgets)) if (!names.has(name)) delete parsed.budgets[name]
    state = parsed
  }

  function send(budget: BudgetConfig, event: FiredEvent): void {
    const url = budget.webhook_url
    if (!url) return
    const delivery = deliver(budget.name, url, event).finally(() => inflight.delete(delivery))
    inflight.add(delivery)
  }

  async function deliver(name: string, url: string, event: FiredEvent): Promise<void> {
    const body = JSON.stringify(event.payload)
    let lastError = ''
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (closing.signal.aborted) return
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-tollgate-event-id': event.event_id, 'user-agent': 'tollgate-budgets/1' },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), closing.signal]),
        })
        // Drain the body so the connection is reusable; its content is not needed.
        await res.arrayBuffer().catch(() => undefined)
        if (res.ok) {
          event.delivery = 'delivered'
          delete event.last_error
          await persist()
          log.info({ budget: name, threshold: event.threshold, event_id: event.event_id, attempt }, 'budget webhook delivered')
          return
        }
        lastError = `HTTP ${res.status}`
        if (!retryable(res.status)) break
      } catch (err) {
        // Shutting down: leave it pending, the next start sends it again.
        if (closing.signal.aborted) return
        lastError = (err as Error).name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : (err as Error).message
      }
      if (attempt < attempts) {
        const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() / 4)
        try {
          await sleep(delay, undefined, { signal: closing.signal, ref: false })
        } catch {
          return
        }
      }
    }
    event.delivery = 'failed'
    event.last_error = lastError
    metrics.webhookFailed(name)
    await persist()
    log.warn(
      { code: 'TG_ERR_BUDGET_WEBHOOK', budget: name, threshold: event.threshold, event_id: event.event_id, to: safeOrigin(url), error: lastError },
      'budget webhook not delivered after every retry',
    )
  }

  async function querySpend(budget: BudgetConfig, from: number, to: number): Promise<number> {
    const { query, params } = spendQuery(budget, queries, from, to)
    const result = await queries.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: queries.settings })
    const rows = await result.json<{ spent: number | string | null }>()
    const spent = Number(rows[0]?.spent ?? 0)
    return Number.isFinite(spent) ? round9(spent) : 0
  }

  async function refreshOnce(): Promise<void> {
    const now = clock()
    let dirty = false
    const toSend: [BudgetConfig, FiredEvent][] = []
    for (const budget of budgets) {
      if (closing.signal.aborted) return
      const { start, end } = periodBounds(budget.period, now)
      const periodStart = iso(start)
      let entry: PeriodEntry | undefined = state.budgets[budget.name]
      if (!entry || entry.period_start !== periodStart || entry.period !== budget.period) {
        // A new period: every threshold may be announced again.
        entry = { period: budget.period, period_start: periodStart, events: [] }
        state.budgets[budget.name] = entry
        dirty = true
      }
      let spent: number
      try {
        spent = await querySpend(budget, start, end)
      } catch (err) {
        metrics.refreshFailed()
        const message = (err as Error).message
        runtime.set(budget.name, { spent: runtime.get(budget.name)?.spent ?? null, refreshedAt: runtime.get(budget.name)?.refreshedAt ?? null, error: message })
        log.warn({ budget: budget.name, code: errorCode(err), err: { message } }, 'budget spend query failed')
        continue
      }
      runtime.set(budget.name, { spent, refreshedAt: now, error: null })
      metrics.budget(budget.name, budget.period, budget.limit_usd, spent)
      for (const threshold of BUDGET_THRESHOLDS) {
        // A hair of tolerance: a sum of float costs can land a rounding error under an exact limit.
        if (spent + 1e-9 < budget.limit_usd * threshold) continue
        if (entry.events.some((e) => e.threshold === threshold)) continue
        const event: FiredEvent = {
          event_id: budgetEventId(budget.name, budget.period, periodStart, threshold),
          threshold,
          payload: {
            budget: budget.name,
            period: budget.period,
            period_start: periodStart,
            limit_usd: budget.limit_usd,
            spent_usd: spent,
            threshold,
            crossed_at: iso(now),
          },
          delivery: budget.webhook_url ? 'pending' : 'no_webhook',
        }
        entry.events.push(event)
        dirty = true
        log.info({ budget: budget.name, threshold, spent_usd: spent, limit_usd: budget.limit_usd }, 'budget threshold crossed')
        toSend.push([budget, event])
      }
    }
    // Recorded before sending: a crash between the two resends (same event id), never forgets.
    if (dirty) await persist()
    for (const [budget, event] of toSend) send(budget, event)
  }

  function refresh(): Promise<void> {
    running++
    const run = refreshing.then(refreshOnce).finally(() => running--)
    refreshing = run.catch(() => {})
    return run
  }

  return {
    async start() {
      if (budgets.length === 0) return
      await load()
      for (const budget of budgets) {
        metrics.budget(budget.name, budget.period, budget.limit_usd, null)
        if (budget.webhook_url) metrics.declareWebhook(budget.name)
        for (const event of state.budgets[budget.name]?.events ?? []) if (event.delivery === 'pending') send(budget, event)
      }
      const tick = () => {
        // A slow store must not pile runs up behind each other.
        if (running > 0) return
        refresh().catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'budget refresh failed'))
      }
      tick()
      timer = setInterval(tick, intervalMs)
      timer.unref()
    },
    refresh,
    status() {
      const now = clock()
      return {
        budgets: budgets.map((budget): BudgetStatus => {
          const { start, end } = periodBounds(budget.period, now)
          const r = runtime.get(budget.name)
          const spent = r?.spent ?? null
          const entry = state.budgets[budget.name]
          const current = entry && entry.period_start === iso(start) ? entry.events : []
          return {
            name: budget.name,
            scope: { app: budget.scope.app ?? null, user: budget.scope.user ?? null },
            period: budget.period,
            period_start: iso(start),
            period_end: iso(end),
            limit_usd: budget.limit_usd,
            spent_usd: spent,
            remaining_usd: spent === null ? null : round9(Math.max(0, budget.limit_usd - spent)),
            used_ratio: spent === null ? null : round9(spent / budget.limit_usd),
            source: budgetSource(budget),
            crossed: current.map((e) => ({ threshold: e.threshold, crossed_at: e.payload.crossed_at, event_id: e.event_id, delivery: e.delivery })),
            refreshed_at: r?.refreshedAt ? iso(r.refreshedAt) : null,
            error: r?.error ?? null,
          }
        }),
      }
    },
    async idle() {
      while (running > 0 || inflight.size > 0) await Promise.allSettled([refreshing, ...inflight])
      await writes
    },
    async close() {
      if (timer) clearInterval(timer)
      timer = null
      closing.abort()
      await Promise.allSettled([refreshing, ...inflight])
      await writes
    },
  }
}

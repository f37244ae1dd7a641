/**
 * Durability of the collector with real parts only: `node bin/tollgate.mjs
 * collector` child processes on their own data dirs (SIGKILLed and SIGTERMed
 * mid-ingest), an in-process collector on the shared test chDB whose spans
 * table is really detached under it, and real HTTP senders.
 *
 * What "exactly once" means here, for a set of spans a test sent:
 * - acked ⊆ stored: every span of a batch answered 200 is in the raw table;
 * - stored ⊆ sent: nothing appears that no one sent;
 * - no span_id twice: raw row count == distinct span_ids;
 * - the raw sums (requests, input_tokens, cost_usd) equal the sums over the
 *   stored ids from the senders' own ledger;
 * - the rollups behind /api/summary (spans_1m and spans_1h) give the same
 *   totals, so no replayed or retried duplicate was counted there either,
 *   and a kill between an insert's raw part and its rollup parts loses
 *   nothing (the insert in flight is replayed verbatim with its own token).
 * Spans whose batch was in flight at a kill may or may not be stored (their
 * append may have become durable before the process died); both are fine as
 * long as they are stored at most once.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { startCollector, type Collector } from '../../collector/server.ts'
import { openSpool } from '../../collector/spool.ts'
import { openStore, spanToRow } from '../../collector/store.ts'
import { silentLogger } from '../../lib/log.ts'
import { PROCESS_CHDB_PATH } from '../helpers/tollgate.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN = `${process.pid}_${Date.now().toString(36)}`
/** Every span started within the last minutes; queries cover [T0 - 1 h, now + 1 h). */
const T0 = Date.now()
const FROM = T0 - 3_600_000

const dirs: string[] = []
const children = new Set<ChildProcess>()
const collectors: Collector[] = []

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await Promise.all([...children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))))
  for (const c of collectors.splice(0)) await c.close().catch(() => {})
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tg-durability-'))
  dirs.push(dir)
  return dir
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

// ------------------------------------------------------------------ spans and the senders' ledger

let seq = 0

/** A valid span (collector/schema.ts) with known tokens; cost = tokens / 2^20, so every sum is exact in Float64. */
function makeSpan(user: string): Span {
  const n = seq++
  const input = 1 + (n % 997)
  const started = T0 - 60_000 + (n % 50_000)
  return {
    span_id: randomUUID(),
    started_at: new Date(started).toISOString(),
    ended_at: new Date(started + 120).toISOString(),
    mode: 'reverse',
    provider: 'openai',
    endpoint: 'chat',
    request_model: 'gpt-4o-mini',
    response_model: 'gpt-4o-mini-2024-07-18',
    stream: n % 2 === 0,
    status_code: 200,
    error_type: 'none',
    duration_ms: 120,
    ttft_ms: 40,
    input_tokens: input,
    output_tokens: 7,
    cached_input_tokens: 0,
    cache_write_tokens: null,
    reasoning_tokens: null,
    cost_usd: input / 2 ** 20,
    cost_status: 'priced',
    finish_reason: 'stop',
    user,
    session: null,
    app: 'durability',
    properties: { run: RUN },
    request_bytes: 100,
    response_bytes: 200,
    client_addr: '127.0.0.1',
  }
}

interface SentBatch {
  id: string
  spans: Span[]
  body: string
}

function makeBatch(user: string, size: number): SentBatch {
  const spans = Array.from({ length: size }, () => makeSpan(user))
  return { id: randomUUID(), spans, body: JSON.stringify(spans) }
}

class Ledger {
  /** span_id → input_tokens of every span ever sent. */
  readonly sent = new Map<string, number>()
  readonly acked = new Set<string>()
  ackedBatches = 0
  /** Batches whose request failed at the transport level (the collector died under them). */
  readonly cut: SentBatch[] = []
  /** Non-200 answers, by status: none are expected. */
  readonly statuses = new Map<number, number>()
  inFlight = 0

  note(batch: SentBatch): void {
    for (const s of batch.spans) this.sent.set(s.span_id, s.input_tokens ?? 0)
  }
  ack(batch: SentBatch): void {
    this.ackedBatches++
    for (const s of batch.spans) this.acked.add(s.span_id)
  }
}

function post(url: string, batch: SentBatch, batchId: string | null = batch.id): Promise<Response> {
  return fetch(`${url}/v1/spans`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(batchId ? { 'x-tollgate-batch-id': batchId } : {}) },
    body: batch.body,
    signal: AbortSignal.timeout(15_000),
  })
}

/** One sender: POSTs batches back to back until told to stop, a deadline, a batch cap, or its collector goes away. */
async function sender(url: string, ledger: Ledger, user: string, stop: { now: boolean }, limits: { deadline: number; maxBatches: number; size: number }): Promise<void> {
  for (let i = 0; i < limits.maxBatches && !stop.now && Date.now() < limits.deadline; i++) {
    const batch = makeBatch(user, limits.size)
    ledger.note(batch)
    ledger.inFlight++
    let res: Response
    let body: { accepted?: number }
    try {
      res = await post(url, batch)
      body = (await res.json()) as { accepted?: number }
    } catch {
      ledger.cut.push(batch)
      return
    } finally {
      ledger.inFlight--
    }
    if (res.status === 200 && body.accepted === batch.spans.length) ledger.ack(batch)
    else ledger.statuses.set(res.status, (ledger.statuses.get(res.status) ?? 0) + 1)
  }
}

// ------------------------------------------------------------------ child collectors

interface Child {
  proc: ChildProcess
  url: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  log(): string
}

async function startChild(dataDir: string): Promise<Child> {
  const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_HOST: '127.0.0.1', TOLLGATE_UI_PORT: '0', TOLLGATE_DATA_DIR: dataDir, TOLLGATE_LOG_LEVEL: 'info' }
  delete env.TOLLGATE_CLICKHOUSE_URL
  delete env.TOLLGATE_CLICKHOUSE_CLUSTER
  delete env.TOLLGATE_CONFIG
  const proc = spawn(process.execPath, ['bin/tollgate.mjs', 'collector'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(proc)
  let out = ''
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8')
    if (out.length > 256 * 1024) out = out.slice(-128 * 1024)
  }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => {
      children.delete(proc)
      r({ code, signal })
    }),
  )
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not start within 20 s:\n${out}`)), 20_000)
    const onData = () => {
      const m = /Tollgate collector: (http:\/\/[0-9.]+:\d+)/.exec(out)
      if (!m?.[1]) return
      clearTimeout(timer)
      proc.stdout!.off('data', onData)
      resolveUrl(m[1])
    }
    proc.stdout!.on('data', onData)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`collector exited (${code ?? signal}) before listening:\n${out}`))
    })
  })
  return { proc, url, exited, log: () => out }
}

/** The child's log lines about recovery, for the report. */
const recoveryLines = (child: Child): string[] =>
  child
    .log()
    .split('\n')
    .filter((l) => /recover|already in the store|partial last line|failed/.test(l))
    .map((l) => {
      try {
        const { msg, rows, bytes } = JSON.parse(l) as { msg?: string; rows?: number; bytes?: number }
        return `${msg ?? ''}${rows !== undefined ? ` rows=${rows}` : ''}${bytes !== undefined ? ` bytes=${bytes}` : ''}`
      } catch {
        return l
      }
    })

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

// ------------------------------------------------------------------ reading back through the API

interface Health {
  status: string
  store: { kind: string; reachable: boolean; healthy_inserts: boolean }
  queue_rows: number
  spool_bytes: number
  inserted_spans: number
  replayed_spans: number
  dropped_spans: number
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) })
  return { status: res.status, body: (await res.json()) as T }
}

const health = async (url: string) => (await getJson<Health>(`${url}/healthz`)).body

/** Polls /healthz until nothing waits in memory or in the spool. */
async function waitDrained(url: string, timeoutMs = 15_000): Promise<Health> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const h = await health(url)
    if (h.spool_bytes === 0 && h.queue_rows === 0 && h.store.healthy_inserts) return h
    if (Date.now() > deadline) throw new Error(`not drained after ${timeoutMs} ms: ${JSON.stringify(h)}`)
    await sleep(100)
  }
}

/** Every stored span_id of `user`, paging GET /api/spans by cursor; duplicates kept. */
async function listedIds(url: string, user: string): Promise<string[]> {
  const ids: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < 200; page++) {
    const q = new URLSearchParams({ from: String(FROM), to: String(Date.now() + 3_600_000), user, limit: '1000' })
    if (cursor) q.set('cursor', cursor)
    const { status, body } = await getJson<{ spans: Span[]; next_cursor: string | null }>(`${url}/api/spans?${q}`)
    expect(status, JSON.stringify(body)).toBe(200)
    for (const s of body.spans) ids.push(s.span_id)
    cursor = body.next_cursor
    if (!cursor) return ids
  }
  throw new Error('more than 200 pages of spans')
}

interface Totals {
  requests: number
  input: number
  cost: number
}

const HOUR = 3_600_000

/**
 * /api/summary totals. With a `user` filter it reads the raw table; without,
 * the rollups: over this 2-hour range the minute rollup, over `hourly` (whole
 * hours, longer than 6 h) the hourly rollup alone.
 */
async function summaryTotals(url: string, options: { user?: string; hourly?: boolean } = {}): Promise<Totals> {
  const range = options.hourly
    ? { from: String(Math.floor(T0 / HOUR) * HOUR - 8 * HOUR), to: String(Math.ceil(Date.now() / HOUR) * HOUR + HOUR) }
    : { from: String(FROM), to: String(Date.now() + HOUR) }
  const q = new URLSearchParams({ ...range, ...(options.user ? { user: options.user } : {}) })
  const { status, body } = await getJson<{ rows: Array<{ requests: number; tokens: { input: number }; cost_usd: number }> }>(`${url}/api/summary?${q}`)
  expect(status).toBe(200)
  const row = body.rows[0]
  return { requests: row?.requests ?? 0, input: row?.tokens.input ?? 0, cost: row?.cost_usd ?? 0 }
}

interface Verdict {
  stored: number
  ackedStored: number
  unackedStored: number
  /** Spans the rollups miss (only when `rollupsMayLag`); see the known-bug test at the end. */
  rollupGap?: { spans_1m: number; spans_1h: number }
}

/**
 * The exactly-once check described at the top, through the collector's HTTP
 * API. `onlyUser`: the data set holds nothing but this user's spans, so the
 * unfiltered rollup totals must match as well.
 */
async function verify(url: string, ledger: Ledger, user: string, options: { rollupsMayLag?: boolean } = {}): Promise<Verdict> {
  const listed = await listedIds(url, user)
  const stored = new Set(listed)
  // No span_id twice, neither in the listing nor in the raw table's row count.
  expect(listed.length).toBe(stored.size)
  const missing = [...ledger.acked].filter((id) => !stored.has(id))
  expect(missing.length, `acknowledged spans missing, e.g. ${missing.slice(0, 3).join(', ')}`).toBe(0)
  const strangers = [...stored].filter((id) => !ledger.sent.has(id))
  expect(strangers.length, 'stored spans no sender sent').toBe(0)

  let input = 0
  for (const id of stored) input += ledger.sent.get(id) ?? 0
  const expected: Totals = { requests: stored.size, input, cost: input / 2 ** 20 }
  const raw = await summaryTotals(url, { user })
  expect(raw.requests).toBe(expected.requests)
  expect(raw.input).toBe(expected.input)
  expect(raw.cost).toBeCloseTo(expected.cost, 8)
  const gap = { spans_1m: 0, spans_1h: 0 }
  for (const hourly of [false, true]) {
    const rollup = await summaryTotals(url, { hourly })
    const which = hourly ? 'spans_1h' : 'spans_1m'
    if (options.rollupsMayLag) {
      // Never more than the raw rows: no replayed or retried duplicate was counted.
      expect(rollup.requests, `${which} requests vs stored spans`).toBeLessThanOrEqual(expected.requests)
      expect(rollup.input, `${which} input tokens`).toBeLessThanOrEqual(expected.input)
      gap[which] = expected.requests - rollup.requests
      continue
    }
    expect(rollup.requests, `${which} requests vs stored spans`).toBe(expected.requests)
    expect(rollup.input, `${which} input tokens`).toBe(expected.input)
    expect(rollup.cost, `${which} cost`).toBeCloseTo(expected.cost, 8)
  }
  const ackedStored = [...stored].filter((id) => ledger.acked.has(id)).length
  const verdict: Verdict = { stored: stored.size, ackedStored, unackedStored: stored.size - ackedStored }
  if (gap.spans_1m || gap.spans_1h) verdict.rollupGap = gap
  return verdict
}

// ------------------------------------------------------------------ 1. SIGKILL mid-ingest

describe('a collector killed with SIGKILL mid-ingest', () => {
  it('keeps every acknowledged span exactly once across two kills and restarts', { timeout: 90_000 }, async () => {
    const started = Date.now()
    const dataDir = tempDir()
    const user = `kill-${RUN}`
    const ledger = new Ledger()
    const report: Record<string, unknown>[] = []

    /** Eight senders for at least `minMs` and `minAcks` new acked spans (at most 8 s), then kill -9 with requests in flight. */
    async function loadThenKill(child: Child, minMs: number, minAcks: number): Promise<Record<string, unknown>> {
      const ackedBefore = ledger.acked.size
      const cutBefore = ledger.cut.length
      const stop = { now: false }
      const t0 = Date.now()
      const senders = Array.from({ length: 8 }, () => sender(child.url, ledger, user, stop, { deadline: t0 + 10_000, maxBatches: 2000, size: 100 }))
      while (Date.now() - t0 < 8000 && (Date.now() - t0 < minMs || ledger.acked.size - ackedBefore < minAcks)) await sleep(20)
      const inFlightAtKill = ledger.inFlight
      child.proc.kill('SIGKILL')
      const exit = await within(child.exited, 10_000, 'exit after SIGKILL')
      await within(Promise.all(senders), 20_000, 'senders to notice the kill')
      stop.now = true
      expect(exit.signal).toBe('SIGKILL')
      const phase = { loadMs: Date.now() - t0, newAcked: ledger.acked.size - ackedBefore, inFlightAtKill, cutBatches: ledger.cut.length - cutBefore }
      // The kill landed under load: acks had come back and requests were still open.
      expect(phase.newAcked).toBeGreaterThanOrEqual(minAcks)
      expect(inFlightAtKill).toBeGreaterThan(0)
      return phase
    }

    let child = await startChild(dataDir)
    report.push({ firstStartMs: Date.now() - started })
    report.push(await loadThenKill(child, 1200, 2000))

    let t = Date.now()
    child = await startChild(dataDir)
    let drained = await waitDrained(child.url)
    report.push({
      restartMs: Date.now() - t,
      replayed: drained.replayed_spans,
      ...(await verify(child.url, ledger, user, { rollupsMayLag: false })),
      log: recoveryLines(child),
    })

    // Longer this time, so some inserts commit before the kill and the replay starts past a checkpoint.
    report.push(await loadThenKill(child, 2000, 2000))

    t = Date.now()
    child = await startChild(dataDir)
    drained = await waitDrained(child.url)
    const verdict = await verify(child.url, ledger, user, { rollupsMayLag: false })
    report.push({ restartMs: Date.now() - t, replayed: drained.replayed_spans, ...verdict, log: recoveryLines(child) })

    expect(ledger.statuses.size, `unexpected answers: ${JSON.stringify([...ledger.statuses])}`).toBe(0)
    expect(verdict.ackedStored).toBe(ledger.acked.size)
    // Rollups are exact too: the insert in flight at each kill was replayed with its own token.
    expect(verdict.rollupGap).toBeUndefined()
    console.info('[durability] SIGKILL', JSON.stringify({ totalMs: Date.now() - started, sent: ledger.sent.size, acked: ledger.acked.size, phases: report }))
    child.proc.kill('SIGKILL')
    await within(child.exited, 10_000, 'exit after SIGKILL')
  })
})

// ------------------------------------------------------------------ 4. graceful shutdown

describe('a collector stopped with SIGTERM', () => {
  it('stores every acknowledged span before it exits; the restart finds an empty spool', { timeout: 60_000 }, async () => {
    const started = Date.now()
    const dataDir = tempDir()
    const user = `term-${RUN}`
    const ledger = new Ledger()
    let child = await startChild(dataDir)

    const stop = { now: false }
    const t0 = Date.now()
    const senders = Array.from({ length: 4 }, () => sender(child.url, ledger, user, stop, { deadline: t0 + 8000, maxBatches: 1000, size: 100 }))
    while (Date.now() - t0 < 5000 && ledger.acked.size < 1500) await sleep(10)
    const inFlightAtTerm = ledger.inFlight
    const termAt = Date.now()
    child.proc.kill('SIGTERM')
    stop.now = true
    await within(Promise.all(senders), 20_000, 'senders to finish')
    const exit = await within(child.exited, 35_000, 'exit after SIGTERM')
    const exitMs = Date.now() - termAt
    expect(exit.code).toBe(0)
    expect(ledger.acked.size).toBeGreaterThanOrEqual(1500)
    // A request cut by the shutdown is fine (the sender retries it); an error status is not.
    expect(ledger.statuses.size, `unexpected answers: ${JSON.stringify([...ledger.statuses])}`).toBe(0)

    child = await startChild(dataDir)
    const first = await health(child.url)
    // Everything was stored before the exit: the restart had nothing to replay.
    expect(first.spool_bytes).toBe(0)
    expect(first.replayed_spans).toBe(0)
    await waitDrained(child.url)
    const verdict = await verify(child.url, ledger, user)
    expect(verdict.ackedStored).toBe(ledger.acked.size)
    console.info('[durability] SIGTERM', JSON.stringify({ totalMs: Date.now() - started, exitMs, inFlightAtTerm, acked: ledger.acked.size, cut: ledger.cut.length, ...verdict }))
    child.proc.kill('SIGTERM')
    await within(child.exited, 20_000, 'exit after SIGTERM')
  })
})

// ------------------------------------------------------------------ in-process collectors on the shared chDB

let dbCounter = 0

async function inProcessCollector(batch?: { maxBatchRows?: number; flushIntervalMs?: number; maxQueueRows?: number }): Promise<{ collector: Collector; db: string }> {
  const db = `dur_${RUN}_${++dbCounter}`
  const collector = await startCollector({
    host: '127.0.0.1',
    port: 0,
    dataDir: tempDir(),
    database: db,
    chdbPath: PROCESS_CHDB_PATH,
    log: silentLogger,
    batch: { flushIntervalMs: 50, ...batch },
  })
  collectors.push(collector)
  return { collector, db }
}

/** Raw and rollup totals straight from ClickHouse, through the collector's own client. */
async function sqlTotals(
  collector: Collector,
  db: string,
): Promise<{ rows: number; ids: number; input: number; rollupRequests: number; rollupInput: number; hourlyRequests: number; sixHourRequests: number; dailyRequests: number; userHourlyRequests: number; userDailyRequests: number }> {
  const q = async <T>(query: string): Promise<T> => {
    const r = await collector.store.client.query({ query, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })
    return ((await r.json()) as T[])[0] as T
  }
  const raw = await q<{ rows: number; ids: number; input: number }>(
    `SELECT count() AS rows, uniqExact(span_id) AS ids, sum(ifNull(input_tokens, 0)) AS input FROM \`${db}\`.spans`,
  )
  const rollup = await q<{ requests: number; input: number }>(`SELECT sum(requests) AS requests, sum(input_tokens) AS input FROM \`${db}\`.spans_1m`)
  const hourly = await q<{ requests: number }>(`SELECT sum(requests) AS requests FROM \`${db}\`.spans_1h`)
  // spans_6h is fed from spans_1h's insert blocks (a cascade), spans_1d from spans.
  const sixHour = await q<{ requests: number }>(`SELECT sum(requests) AS requests FROM \`${db}\`.spans_6h`)
  const daily = await q<{ requests: number }>(`SELECT sum(requests) AS requests FROM \`${db}\`.spans_1d`)
  // Per user: hourly from spans, daily cascaded from the hourly blocks.
  const userHourly = await q<{ requests: number }>(`SELECT sum(requests) AS requests FROM \`${db}\`.spans_user_1h`)
  const userDaily = await q<{ requests: number }>(`SELECT sum(requests) AS requests FROM \`${db}\`.spans_user_1d`)
  return {
    rows: Number(raw.rows),
    ids: Number(raw.ids),
    input: Number(raw.input),
    rollupRequests: Number(rollup.requests),
    rollupInput: Number(rollup.input),
    hourlyRequests: Number(hourly.requests),
    sixHourRequests: Number(sixHour.requests),
    dailyRequests: Number(daily.requests),
    userHourlyRequests: Number(userHourly.requests),
    userDailyRequests: Number(userDaily.requests),
  }
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return m?.[1] ? Number(m[1]) : Number.NaN
}

// ------------------------------------------------------------------ 2. store outage

describe('a store outage (spans table detached under a running collector)', () => {
  it('acknowledges from the spool, reports the failing inserts, and stores every span exactly once when the table is back', { timeout: 60_000 }, async () => {
    const started = Date.now()
    // A small memory queue, so the outage also pushes the batcher into spool mode (rows read back from disk).
    const { collector, db } = await inProcessCollector({ maxBatchRows: 200, maxQueueRows: 500 })
    const url = collector.url
    const user = `outage-${RUN}`
    const ledger = new Ledger()

    // A few spans before the outage, stored the normal way.
    const before = makeBatch(user, 50)
    ledger.note(before)
    expect((await post(url, before)).status).toBe(200)
    ledger.ack(before)
    await collector.batcher.forceFlush()

    // DETACH works with the rollup views attached to the table (checked on chDB 3.4): inserts now fail with UNKNOWN_TABLE.
    await collector.store.client.command({ query: `DETACH TABLE \`${db}\`.spans` })
    let attached = false
    try {
      const batches = Array.from({ length: 20 }, () => makeBatch(user, 100))
      for (const b of batches) ledger.note(b)
      // Acknowledged while the store is down: the spool holds them.
      const answers = await Promise.all(batches.map(async (b) => ({ b, res: await post(url, b), })))
      for (const { b, res } of answers) {
        expect(res.status).toBe(200)
        expect(await res.json()).toEqual({ accepted: 100, rejected: [] })
        ledger.ack(b)
      }

      // Wait (bounded) for the batcher to have tried and failed.
      const deadline = Date.now() + 10_000
      let h = await health(url)
      while (h.store.healthy_inserts && Date.now() < deadline) {
        await sleep(50)
        h = await health(url)
      }
      expect(h.store.healthy_inserts).toBe(false)
      expect(h.spool_bytes).toBeGreaterThan(0)
      expect(h.inserted_spans).toBe(50)
      const metrics = await (await fetch(`${url}/metrics`)).text()
      expect(metricValue(metrics, 'tollgate_collector_insert_failures_total')).toBeGreaterThan(0)
      expect(metricValue(metrics, 'tollgate_collector_spool_bytes')).toBeGreaterThan(0)
      console.info('[durability] outage /healthz while detached', JSON.stringify(h))
    } finally {
      await collector.store.client.command({ query: `ATTACH TABLE \`${db}\`.spans` })
      attached = true
    }
    expect(attached).toBe(true)

    // The retry backoff (100 ms doubling, jittered) picks the rows up; forceFlush waits it out.
    const recoveredAt = Date.now()
    await within(collector.batcher.forceFlush(), 20_000, 'flush after ATTACH')
    const flushMs = Date.now() - recoveredAt
    const h = await waitDrained(url)
    expect(h.inserted_spans).toBe(ledger.acked.size)

    const verdict = await verify(url, ledger, user)
    expect(verdict).toEqual({ stored: 2050, ackedStored: 2050, unackedStored: 0 })
    const sql = await sqlTotals(collector, db)
    let input = 0
    for (const v of ledger.sent.values()) input += v
    expect(sql).toEqual({ rows: 2050, ids: 2050, input, rollupRequests: 2050, rollupInput: input, hourlyRequests: 2050, sixHourRequests: 2050, dailyRequests: 2050, userHourlyRequests: 2050, userDailyRequests: 2050 })
    console.info('[durability] outage', JSON.stringify({ totalMs: Date.now() - started, flushAfterAttachMs: flushMs }))
  })
})

// ------------------------------------------------------------------ 3. sender retries

describe('sender retries', () => {
  it('stores a batch posted twice with the same x-tollgate-batch-id once', async () => {
    const { collector, db } = await inProcessCollector()
    const url = collector.url
    const user = `retry-${RUN}`
    const ledger = new Ledger()
    const batch = makeBatch(user, 50)
    ledger.note(batch)

    const first = await post(url, batch)
    expect(first.status).toBe(200)
    expect(await first.json()).toEqual({ accepted: 50, rejected: [] })
    ledger.ack(batch)
    const again = await post(url, batch)
    expect(again.status).toBe(200)
    expect(await again.json()).toMatchObject({ accepted: 0, duplicate_batch: true })

    // A retry merged into a different batch (new batch id): only its new spans are taken.
    const merged = makeBatch(user, 30)
    merged.spans.push(...batch.spans.slice(0, 20))
    merged.body = JSON.stringify(merged.spans)
    ledger.note(merged)
    const res = await post(url, merged)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ accepted: 30, rejected: [] })
    ledger.ack(merged)

    // The same spans again with no batch id at all.
    const bare = await post(url, batch, null)
    expect(bare.status).toBe(200)
    expect(await bare.json()).toEqual({ accepted: 0, rejected: [] })

    await collector.batcher.forceFlush()
    expect(await verify(url, ledger, user)).toEqual({ stored: 80, ackedStored: 80, unackedStored: 0 })
    const sql = await sqlTotals(collector, db)
    expect(sql.rows).toBe(80)
    expect(sql.ids).toBe(80)
    expect(sql.rollupRequests).toBe(80)
    expect(sql.hourlyRequests).toBe(80)
    expect(sql.sixHourRequests).toBe(80)
    expect(sql.dailyRequests).toBe(80)
    expect([sql.userHourlyRequests, sql.userDailyRequests]).toEqual([80, 80])
    const metrics = await (await fetch(`${url}/metrics`)).text()
    // One duplicate batch + 20 merged spans + 50 bare spans.
    expect(metricValue(metrics, 'tollgate_collector_spans_duplicate_total')).toBe(71)
  })
})

// ------------------------------------------------------------------ the hard cases
//
// The documented contract (README "Ingest": POST /v1/spans is idempotent by
// span_id and by x-tollgate-batch-id; "Durability": every acknowledged span
// lands exactly once) in the cases that once broke it: a retry after a
// restart, concurrent retries, duplicates inside a batch, a kill between an
// insert's raw and rollup parts.

describe('exactly once in the hard cases', () => {
  it('a batch retried after a collector restart (same x-tollgate-batch-id) is stored once', async () => {
    // What proxy/sink.ts does when the collector dies before its answer arrives: retry the batch, same id.
    const dataDir = tempDir()
    const db = `dur_${RUN}_restart`
    const options = { host: '127.0.0.1', port: 0, dataDir, database: db, chdbPath: PROCESS_CHDB_PATH, log: silentLogger, batch: { flushIntervalMs: 50 } }
    const first = await startCollector(options)
    collectors.push(first)
    const batch = makeBatch(`restart-${RUN}`, 50)
    expect((await post(first.url, batch)).status).toBe(200)
    await first.close()
    const second = await startCollector(options)
    collectors.push(second)
    const retry = await post(second.url, batch)
    expect(retry.status).toBe(200)
    await second.batcher.forceFlush()
    const sql = await sqlTotals(second, db)
    expect(sql.rows).toBe(50)
    expect(sql.rollupRequests).toBe(50)
  })

  it('the same batch posted twice at once (a sender retrying after its own timeout) is stored once', async () => {
    const { collector, db } = await inProcessCollector()
    const batch = makeBatch(`concurrent-${RUN}`, 50)
    const answers = await Promise.all([post(collector.url, batch), post(collector.url, batch)])
    for (const a of answers) expect(a.status).toBe(200)
    await collector.batcher.forceFlush()
    const sql = await sqlTotals(collector, db)
    expect(sql.rows).toBe(50)
    expect(sql.rollupRequests).toBe(50)
  })

  it('rows whose insert reached the raw table but not the rollups before a crash are counted in the rollups after recovery', async () => {
    // The state a SIGKILL mid-insert left in 6 of 60 random kills (measured: chDB commits the spans part, then
    // spans_1m's, then spans_1h's): the rows are in the spool past its checkpoint and in the raw table,
    // not in the rollups. Built here with real parts: the spool appended and closed uncommitted, the raw
    // insert made with the rollup views detached. Recovery (batcher.ts skipStoredRows) then skips the rows
    // by span_id, so the rollups never get them. Replaying the same text with the same
    // insert_deduplication_token instead would fill the rollups without a second raw row (checked on chDB 3.4).
    const dataDir = tempDir()
    const db = `dur_${RUN}_rollupgap`
    const options = { host: '127.0.0.1', port: 0, dataDir, database: db, chdbPath: PROCESS_CHDB_PATH, log: silentLogger, batch: { flushIntervalMs: 50 } }
    // A first run creates the schema and the spool.
    await (await startCollector(options)).close()

    const batch = makeBatch(`rollupgap-${RUN}`, 40)
    const text = batch.spans.map(spanToRow).join('')
    // Acknowledged rows in the spool, not committed past, marked in flight as the batcher marks every insert.
    const spool = await openSpool({ dir: join(dataDir, 'spool') })
    const start = spool.head()
    const end = await spool.append(text, batch.spans.length)
    const token = `tg:${spool.id}:${start.segment}:${start.offset}-${end.segment}:${end.offset}`
    await spool.markInFlight({ start, end, token })
    await spool.close()
    // The insert that landed in the raw table only.
    const { store } = await openStore({ dataDir, chdbPath: PROCESS_CHDB_PATH, database: db, log: silentLogger })
    try {
      for (const view of ['spans_1m_mv', 'spans_1h_mv']) await store.client.command({ query: `DETACH TABLE \`${db}\`.${view}` })
      await store.insertRows(text, batch.spans.length, { dedupToken: token })
      for (const view of ['spans_1m_mv', 'spans_1h_mv']) await store.client.command({ query: `ATTACH TABLE \`${db}\`.${view}` })
    } finally {
      await store.close()
    }

    // The restart recovers the spool.
    const collector = await startCollector(options)
    collectors.push(collector)
    await collector.batcher.forceFlush()
    const sql = await sqlTotals(collector, db)
    expect(sql.rows).toBe(40)
    expect(sql.ids).toBe(40)
    expect(sql.rollupRequests).toBe(40)
    expect(sql.hourlyRequests).toBe(40)
    expect(sql.sixHourRequests).toBe(40)
    expect(sql.dailyRequests).toBe(40)
    expect([sql.userHourlyRequests, sql.userDailyRequests]).toEqual([40, 40])
  })

  it('a span_id repeated inside one batch is stored once', async () => {
    const { collector, db } = await inProcessCollector()
    const batch = makeBatch(`inbatch-${RUN}`, 10)
    batch.spans.push(batch.spans[0]!)
    batch.body = JSON.stringify(batch.spans)
    expect((await post(collector.url, batch)).status).toBe(200)
    await collector.batcher.forceFlush()
    const sql = await sqlTotals(collector, db)
    expect(sql.rows).toBe(10)
  })
})

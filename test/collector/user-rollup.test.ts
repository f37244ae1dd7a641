/**
 * Spend by user when users outnumber what a chart or a table shows: 30 users
 * over two days, posted to a real collector (chDB). A chart's top users are
 * ranked in SQL and the rest folded into `other` there; every expected number
 * is computed here from the posted spans.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SummaryRow, Timeseries } from '../../collector/queries.ts'
import type { Span } from '../../collector/schema.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const DAY0 = Math.floor(Date.now() / DAY) * DAY - 3 * DAY
const USERS = Array.from({ length: 30 }, (_, i) => `user-${String(i).padStart(2, '0')}`)

let seed = 11
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31
  return seed / 2 ** 31
}

function span(user: string, startMs: number): Span {
  const input = 100 + Math.floor(rand() * 900)
  const failed = rand() < 0.15
  return {
    span_id: randomUUID(), started_at: new Date(startMs).toISOString(), ended_at: new Date(startMs + 500).toISOString(),
    mode: 'reverse', provider: 'openai', endpoint: 'chat', request_model: 'gpt-4o-mini', response_model: 'gpt-4o-mini', stream: false,
    status_code: failed ? 500 : 200, error_type: failed ? 'http_5xx' : 'none', duration_ms: 100 + Math.floor(rand() * 2000), ttft_ms: null,
    input_tokens: failed ? null : input, output_tokens: failed ? null : 50, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null,
    cost_usd: failed ? null : input * 1e-6 + 50 * 4e-6, cost_status: failed ? 'no_usage' : 'priced', finish_reason: null,
    user, session: null, app: null, properties: {}, request_bytes: 10, response_bytes: 10, client_addr: null,
  }
}

// User i makes ~(i + 1) calls per 4 hours: spend grows with i, so the ranking is known and far from ties.
const spans: Span[] = []
for (const [i, user] of USERS.entries()) {
  for (let t = DAY0 + 7 * 60_000; t < DAY0 + 2 * DAY; t += Math.floor((4 * HOUR) / (i + 1))) spans.push(span(user, t + Math.floor(rand() * 1000)))
}

let tg: TestTollgate
beforeAll(async () => {
  tg = await startTestTollgate()
  for (let i = 0; i < spans.length; i += 500) {
    const res = await fetch(`${tg.collectorUrl}/v1/spans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spans.slice(i, i + 500)) })
    expect(res.status).toBe(200)
  }
  await tg.tollgate.collector.batcher.forceFlush()
}, 60_000)
afterAll(async () => {
  await tg?.close()
})

async function api<T>(path: string, query: Record<string, string | number>): Promise<T> {
  const res = await fetch(`${tg.collectorUrl}${path}?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`)
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as T
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const cost = (xs: Span[]) => sum(xs.map((s) => s.cost_usd ?? 0))
const byUser = (xs: Span[]) => new Map(USERS.map((u) => [u, xs.filter((s) => s.user === u)]))
const ranked = (xs: Span[]) => [...byUser(xs).entries()].sort((a, b) => cost(b[1]) - cost(a[1]))

describe('timeseries group_by=user with more users than series', () => {
  it.each([3600, 86_400])('step %i s: the top 11 by spend, then `other` summing the rest, per bucket', async (step) => {
    const from = DAY0
    const to = DAY0 + 2 * DAY
    const ts = await api<Timeseries>('/api/timeseries', { from, to, step, metric: 'cost_usd', group_by: 'user' })
    const order = ranked(spans)
    const top = order.slice(0, 11)
    const rest = order.slice(11).flatMap(([, xs]) => xs)
    expect(ts.series.map((s) => s.group)).toEqual([...top.map(([u]) => u), 'other'])
    const per = (xs: Span[]) => ts.buckets.map((b) => cost(xs.filter((s) => Date.parse(s.started_at) >= b && Date.parse(s.started_at) < b + step * 1000)))
    for (const [i, [user, xs]] of top.entries()) {
      const want = per(xs)
      ts.series[i]!.values.forEach((v, k) => expect(Math.abs(v! - want[k]!), `${user} bucket ${k}`).toBeLessThan(1e-9))
    }
    const wantRest = per(rest)
    ts.series[11]!.values.forEach((v, k) => expect(Math.abs(v! - wantRest[k]!), `other bucket ${k}`).toBeLessThan(1e-9))
  })

  it('without a step: whole hours by user over more than six hours (the hourly rollup), the usual step below', async () => {
    const day = await api<Timeseries>('/api/timeseries', { from: DAY0, to: DAY0 + DAY, metric: 'cost_usd', group_by: 'user' })
    expect(day.step_s).toBe(3600)
    expect(day.buckets).toHaveLength(24)
    const dayTotal = sum(day.series.flatMap((x) => x.values.map((v) => v ?? 0)))
    expect(Math.abs(dayTotal - cost(spans.filter((x) => Date.parse(x.started_at) < DAY0 + DAY)))).toBeLessThan(1e-8)
    const short = await api<Timeseries>('/api/timeseries', { from: DAY0, to: DAY0 + 2 * HOUR, metric: 'cost_usd', group_by: 'user' })
    expect(short.step_s).toBe(60)
    const byModel = await api<Timeseries>('/api/timeseries', { from: DAY0, to: DAY0 + DAY, metric: 'cost_usd', group_by: 'model' })
    expect(byModel.step_s).toBe(900)
  })

  it('errors: counted per user from the rollup’s error counts', async () => {
    const ts = await api<Timeseries>('/api/timeseries', { from: DAY0, to: DAY0 + 2 * DAY, step: 86_400, metric: 'errors', group_by: 'user' })
    expect(ts.series).toHaveLength(12)
    const failed = spans.filter((s) => s.error_type !== 'none')
    expect(sum(ts.series.flatMap((s) => s.values.map((v) => v ?? 0)))).toBe(failed.length)
    for (const s of ts.series.filter((x) => x.group !== 'other')) expect(sum(s.values.map((v) => v ?? 0)), s.group!).toBe(failed.filter((x) => x.user === s.group).length)
  })

  it('a latency quantile (not summable, from raw spans): 11 series with values, no `other`', async () => {
    const ts = await api<Timeseries>('/api/timeseries', { from: DAY0, to: DAY0 + 2 * DAY, step: 86_400, metric: 'latency_p50', group_by: 'user' })
    expect(ts.series).toHaveLength(11)
    expect(ts.series.map((s) => s.group)).not.toContain('other')
    for (const s of ts.series) expect(s.values.some((v) => v !== null && v > 0), s.group!).toBe(true)
  })
})

describe('summary group_by=user with a limit', () => {
  it('the top users by spend: the full list’s first rows, exact, with the average latency and no quantiles', async () => {
    // Ragged ends in raw spans, whole hours and a whole day from the rollups.
    const from = DAY0 + 5 * HOUR + 13 * 60_000 + 7
    const to = DAY0 + 2 * DAY - 3 * HOUR - 17 * 60_000
    const all = (await api<{ rows: SummaryRow[] }>('/api/summary', { from, to, group_by: 'user' })).rows
    const top5 = (await api<{ rows: SummaryRow[] }>('/api/summary', { from, to, group_by: 'user', limit: 5 })).rows
    expect(all).toHaveLength(30)
    expect(top5).toEqual(all.slice(0, 5))
    const inRange = spans.filter((s) => Date.parse(s.started_at) >= from && Date.parse(s.started_at) < to)
    expect(top5.map((r) => r.group!.user)).toEqual(ranked(inRange).slice(0, 5).map(([u]) => u))
    for (const r of top5) {
      const xs = inRange.filter((s) => s.user === r.group!.user)
      expect(r.requests).toBe(xs.length)
      expect(r.errors).toBe(xs.filter((s) => s.error_type !== 'none').length)
      expect(r.no_usage_requests).toBe(xs.filter((s) => s.cost_status === 'no_usage').length)
      expect(Math.abs(r.cost_usd - cost(xs))).toBeLessThan(1e-9)
      expect(r.latency_ms.avg!).toBeCloseTo(sum(xs.map((s) => s.duration_ms)) / xs.length, 2)
      expect([r.latency_ms.p50, r.latency_ms.p99, r.ttft_ms.p50]).toEqual([null, null, null])
    }
  })
})

/** Ranges, stat cards, table sorting and the proxy URL in the onboarding snippets. */
import { describe, expect, it } from 'vitest'
import { proxyBaseUrl } from '../../dashboard/src/lib/proxy-url.ts'
import { describeRange, fromLocalInput, parseTime, previousWindow, resolveWindow, toLocalInput } from '../../dashboard/src/lib/range.ts'
import { deltaTone, overviewCards } from '../../dashboard/src/lib/stats.ts'
import { nextSort, sortRows, type Column } from '../../dashboard/src/lib/table.ts'
import type { Health, SummaryRow } from '../../dashboard/src/lib/types.ts'

const NOW = Date.UTC(2025, 5, 11, 12)

describe('ranges', () => {
  it('resolves presets against now and custom ranges as given', () => {
    expect(resolveWindow({ preset: '15m' }, NOW)).toEqual({ from: NOW - 900_000, to: NOW })
    expect(resolveWindow({ preset: '30d' }, NOW)).toEqual({ from: NOW - 30 * 86_400_000, to: NOW })
    expect(resolveWindow({ preset: 'custom', from: 1, to: 2 }, NOW)).toEqual({ from: 1, to: 2 })
  })
  it('gives the previous period of equal length', () => {
    expect(previousWindow({ from: 1000, to: 1600 })).toEqual({ from: 400, to: 1000 })
  })
  it('parses the times the API takes', () => {
    expect(parseTime('1749600000000', NOW)).toBe(1749600000000)
    expect(parseTime('1749600000', NOW)).toBe(1749600000000)
    expect(parseTime('now-15m', NOW)).toBe(NOW - 900_000)
    expect(parseTime('-2h', NOW)).toBe(NOW - 7_200_000)
    expect(parseTime('now', NOW)).toBe(NOW)
    expect(parseTime('2025-06-11T10:00:00Z', NOW)).toBe(Date.UTC(2025, 5, 11, 10))
    expect(parseTime('soon', NOW)).toBeNull()
  })
  it('converts to and from datetime-local values', () => {
    const ms = new Date(2025, 0, 2, 3, 4).getTime()
    expect(toLocalInput(ms)).toBe('2025-01-02T03:04')
    expect(fromLocalInput('2025-01-02T03:04')).toBe(ms)
    expect(fromLocalInput('2025-01-02')).toBeNull()
  })
  it('describes a range', () => {
    expect(describeRange({ preset: '24h' }, resolveWindow({ preset: '24h' }, NOW))).toBe('the last 24 h')
    const from = new Date(2025, 0, 2, 3, 4).getTime()
    expect(describeRange({ preset: 'custom', from, to: from + 3_600_000 }, { from, to: from + 3_600_000 })).toBe('2025-01-02 03:04 – 2025-01-02 04:04')
  })
})

function row(partial: Partial<SummaryRow>): SummaryRow {
  return {
    group: null,
    requests: 0,
    errors: 0,
    error_rate: 0,
    rate_limited: 0,
    streams: 0,
    latency_ms: { avg: null, p50: null, p90: null, p95: null, p99: null },
    ttft_ms: { p50: null, p90: null, p95: null, p99: null },
    tokens: { input: 0, output: 0, cached_input: 0, cache_write: 0, reasoning: 0 },
    output_tokens_per_s: null,
    cost_usd: 0,
    unpriced_requests: 0,
    no_usage_requests: 0,
    ...partial,
  }
}

describe('overviewCards', () => {
  it('formats each total and its change against the previous period', () => {
    const current = row({ requests: 12, errors: 3, error_rate: 0.25, cost_usd: 0.0042, tokens: { input: 1200, output: 480, cached_input: 0, cache_write: 0, reasoning: 0 }, latency_ms: { avg: 20, p50: 15, p90: 30, p95: 40, p99: 50 }, ttft_ms: { p50: 8, p90: 9, p95: 10, p99: 11 } })
    const previous = row({ requests: 10, errors: 1, error_rate: 0.1, cost_usd: 0.0042, latency_ms: { avg: 20, p50: 30, p90: 30, p95: 40, p99: 50 } })
    const cards = Object.fromEntries(overviewCards(current, previous).map((c) => [c.id, c]))
    expect(cards.requests).toMatchObject({ value: '12', delta: { text: '+20%' } })
    expect(cards.error_rate).toMatchObject({ value: '25%', delta: { text: '+15 pp', direction: 'up' } })
    expect(deltaTone(cards.error_rate!.delta, cards.error_rate!.better)).toBe('bad')
    expect(cards.spend).toMatchObject({ value: '$0.0042', delta: { text: '0%' } })
    expect(cards.tokens).toMatchObject({ value: '1.68k', hint: '1.2k in · 480 out', delta: { text: 'new' } })
    expect(cards.latency_p50).toMatchObject({ value: '15 ms', delta: { text: '−50%' } })
    expect(deltaTone(cards.latency_p50!.delta, cards.latency_p50!.better)).toBe('good')
    expect(cards.ttft_p50).toMatchObject({ value: '8 ms', delta: { text: '—' } })
  })
  it('shows dashes before data arrives', () => {
    expect(overviewCards(undefined, undefined).every((c) => c.value === '—')).toBe(true)
  })
})

describe('sortRows', () => {
  interface R {
    name: string
    cost: number | null
  }
  const columns: Column<R>[] = [
    { key: 'name', label: 'Name', value: (r) => r.name },
    { key: 'cost', label: 'Cost', value: (r) => r.cost },
  ]
  const rows: R[] = [
    { name: 'b', cost: 2 },
    { name: 'a', cost: null },
    { name: 'c', cost: 10 },
  ]
  it('sorts numbers and text either way, nulls last', () => {
    expect(sortRows(rows, columns, { key: 'cost', direction: 'desc' }).map((r) => r.name)).toEqual(['c', 'b', 'a'])
    expect(sortRows(rows, columns, { key: 'cost', direction: 'asc' }).map((r) => r.name)).toEqual(['b', 'c', 'a'])
    expect(sortRows(rows, columns, { key: 'name', direction: 'asc' }).map((r) => r.name)).toEqual(['a', 'b', 'c'])
    expect(sortRows(rows, columns, null)).toEqual(rows)
  })
  it('flips the sorted column and starts others at their natural direction', () => {
    expect(nextSort({ key: 'cost', direction: 'desc' }, 'cost', true)).toEqual({ key: 'cost', direction: 'asc' })
    expect(nextSort({ key: 'cost', direction: 'desc' }, 'name', false)).toEqual({ key: 'name', direction: 'asc' })
    expect(nextSort(null, 'cost', true)).toEqual({ key: 'cost', direction: 'desc' })
  })
})

describe('proxyBaseUrl', () => {
  const page = { protocol: 'http:', hostname: 'tollgate.lan' }
  const health = (url: string): Health => ({
    store: { kind: 'chdb', reachable: true, inserts_healthy: true },
    spool_bytes: 0,
    queue_rows: 0,
    dropped_spans: 0,
    proxy: { url, up: true, in_flight: 0, spans_dropped: 0 },
  })
  it('uses the proxy URL from /api/health', () => {
    expect(proxyBaseUrl(health('http://127.0.0.1:18080'), page)).toBe('http://127.0.0.1:18080')
  })
  it('replaces a wildcard bind address with the page host', () => {
    expect(proxyBaseUrl(health('http://0.0.0.0:8080'), page)).toBe('http://tollgate.lan:8080')
    expect(proxyBaseUrl(health('http://[::]:8080'), page)).toBe('http://tollgate.lan:8080')
  })
  it('falls back to the page host on port 8080', () => {
    expect(proxyBaseUrl(undefined, page)).toBe('http://tollgate.lan:8080')
  })
})

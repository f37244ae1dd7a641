/** The Overview's stat cards: this period's summary against the previous one. */
import { formatCount, formatDelta, formatMs, formatPercent, formatUsd, type Delta } from './format.ts'
import type { SummaryRow } from './types.ts'

export interface StatCard {
  id: 'requests' | 'error_rate' | 'spend' | 'tokens' | 'latency_p50' | 'latency_p95' | 'ttft_p50'
  label: string
  value: string
  delta: Delta
  /** Which way is good news; colours the delta. */
  better: 'up' | 'down' | 'neither'
  hint?: string
}

/**
 * @param current summary without group_by for the selected window
 * @param previous the same for the window of equal length before it
 */
export function overviewCards(current: SummaryRow | undefined, previous: SummaryRow | undefined): StatCard[] {
  const tokens = (r: SummaryRow | undefined) => (r ? r.tokens.input + r.tokens.output : undefined)
  return [
    {
      id: 'requests',
      label: 'Requests',
      value: formatCount(current?.requests),
      delta: formatDelta(current?.requests, previous?.requests),
      better: 'neither',
      hint: current ? `${formatCount(current.errors)} failed` : undefined,
    },
    {
      id: 'error_rate',
      label: 'Error rate',
      value: formatPercent(current?.error_rate),
      delta: formatDelta(current?.error_rate, previous?.error_rate, 'points'),
      better: 'down',
      hint: current ? `${formatCount(current.rate_limited)} rate-limited` : undefined,
    },
    {
      id: 'spend',
      label: 'Spend',
      value: formatUsd(current?.cost_usd),
      delta: formatDelta(current?.cost_usd, previous?.cost_usd),
      better: 'neither',
      hint: current?.unpriced_requests ? `${formatCount(current.unpriced_requests)} unpriced requests not included` : undefined,
    },
    {
      id: 'tokens',
      label: 'Tokens',
      value: formatCount(tokens(current)),
      delta: formatDelta(tokens(current), tokens(previous)),
      better: 'neither',
      hint: current ? `${formatCount(current.tokens.input)} in · ${formatCount(current.tokens.output)} out` : undefined,
    },
    {
      id: 'latency_p50',
      label: 'Latency p50',
      value: formatMs(current?.latency_ms.p50),
      delta: formatDelta(current?.latency_ms.p50, previous?.latency_ms.p50),
      better: 'down',
    },
    {
      id: 'latency_p95',
      label: 'Latency p95',
      value: formatMs(current?.latency_ms.p95),
      delta: formatDelta(current?.latency_ms.p95, previous?.latency_ms.p95),
      better: 'down',
    },
    {
      id: 'ttft_p50',
      label: 'TTFT p50',
      value: formatMs(current?.ttft_ms.p50),
      delta: formatDelta(current?.ttft_ms.p50, previous?.ttft_ms.p50),
      better: 'down',
      hint: 'time to first token',
    },
  ]
}

/** good / bad / neutral for a delta, given which way is better. */
export function deltaTone(delta: Delta, better: StatCard['better']): 'good' | 'bad' | 'neutral' {
  if (better === 'neither' || delta.direction === 'flat' || delta.direction === 'new') return 'neutral'
  return delta.direction === better ? 'good' : 'bad'
}

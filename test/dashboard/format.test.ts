/** The one formatting module: every unit the dashboard shows. */
import { describe, expect, it } from 'vitest'
import {
  formatBody,
  formatBytes,
  formatCount,
  formatDateTime,
  formatDelta,
  formatLabel,
  formatMs,
  formatPercent,
  formatSpan,
  formatTokensPerSecond,
  formatUsd,
} from '../../dashboard/src/lib/format.ts'

describe('formatUsd', () => {
  it('shows cents from a dollar up, with thousands separators', () => {
    expect(formatUsd(1)).toBe('$1.00')
    expect(formatUsd(12.345)).toBe('$12.35')
    expect(formatUsd(1234.5)).toBe('$1,234.50')
    expect(formatUsd(1_234_567.891)).toBe('$1,234,567.89')
  })
  it('keeps two significant digits below a dollar, so tiny prices stay meaningful', () => {
    expect(formatUsd(0.5)).toBe('$0.50')
    expect(formatUsd(0.05)).toBe('$0.05')
    expect(formatUsd(0.0123)).toBe('$0.012')
    expect(formatUsd(0.0042)).toBe('$0.0042')
    expect(formatUsd(0.0004)).toBe('$0.0004')
    expect(formatUsd(0.00042)).toBe('$0.00042')
    expect(formatUsd(0.000123456)).toBe('$0.00012')
  })
  it('rounds up into the next unit cleanly', () => {
    expect(formatUsd(0.999)).toBe('$1.00')
  })
  it('shows zero, noise, missing and negative values', () => {
    expect(formatUsd(0)).toBe('$0.00')
    expect(formatUsd(1e-10)).toBe('$0.00')
    expect(formatUsd(null)).toBe('—')
    expect(formatUsd(undefined)).toBe('—')
    expect(formatUsd(Number.NaN)).toBe('—')
    expect(formatUsd(-0.42)).toBe('−$0.42')
  })
  it('compacts very large amounts', () => {
    expect(formatUsd(12_345_678)).toBe('$12.3M')
  })
})

describe('formatCount', () => {
  it('is exact below 1,000', () => {
    expect(formatCount(0)).toBe('0')
    expect(formatCount(999)).toBe('999')
    expect(formatCount(12.5)).toBe('12.5')
  })
  it('uses k/M/B with three significant digits', () => {
    expect(formatCount(1000)).toBe('1k')
    expect(formatCount(1234)).toBe('1.23k')
    expect(formatCount(12_345)).toBe('12.3k')
    expect(formatCount(123_456)).toBe('123k')
    expect(formatCount(999_999)).toBe('1M')
    expect(formatCount(2_500_000_000)).toBe('2.5B')
  })
  it('shows a dash for missing values', () => {
    expect(formatCount(null)).toBe('—')
  })
})

describe('formatMs', () => {
  it('uses ms below a second, s below a minute, then min', () => {
    expect(formatMs(0)).toBe('0 ms')
    expect(formatMs(4.25)).toBe('4.3 ms')
    expect(formatMs(123.4)).toBe('123 ms')
    expect(formatMs(999.6)).toBe('1 s')
    expect(formatMs(1530)).toBe('1.53 s')
    expect(formatMs(12_345)).toBe('12.3 s')
    expect(formatMs(125_000)).toBe('2.1 min')
    expect(formatMs(null)).toBe('—')
  })
})

describe('formatPercent', () => {
  it('shows one decimal, trimmed', () => {
    expect(formatPercent(0)).toBe('0%')
    expect(formatPercent(0.0123)).toBe('1.2%')
    expect(formatPercent(0.1)).toBe('10%')
    expect(formatPercent(2 / 9)).toBe('22.2%')
    expect(formatPercent(1)).toBe('100%')
  })
  it('keeps small non-zero rates visible', () => {
    expect(formatPercent(0.00042)).toBe('0.042%')
  })
})

describe('formatTokensPerSecond and formatBytes', () => {
  it('carry their units', () => {
    expect(formatTokensPerSecond(85.27)).toBe('85.3 tok/s')
    expect(formatTokensPerSecond(5.123)).toBe('5.12 tok/s')
    expect(formatTokensPerSecond(1234)).toBe('1.23k tok/s')
    expect(formatTokensPerSecond(null)).toBe('—')
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(10 * 1024 * 1024)).toBe('10 MiB')
  })
})

describe('formatDelta', () => {
  it('gives the relative change with its direction', () => {
    expect(formatDelta(120, 100)).toEqual({ text: '+20%', direction: 'up' })
    expect(formatDelta(80, 100)).toEqual({ text: '−20%', direction: 'down' })
    expect(formatDelta(100.01, 100)).toEqual({ text: '0%', direction: 'flat' })
    expect(formatDelta(350, 100)).toEqual({ text: '+250%', direction: 'up' })
  })
  it('compares rates in percentage points', () => {
    expect(formatDelta(0.03, 0.02, 'points')).toEqual({ text: '+1 pp', direction: 'up' })
    expect(formatDelta(0.1, 0.125, 'points')).toEqual({ text: '−2.5 pp', direction: 'down' })
  })
  it('says "new" when the previous period was empty, and nothing when both were', () => {
    expect(formatDelta(5, 0)).toEqual({ text: 'new', direction: 'new' })
    expect(formatDelta(0, 0)).toEqual({ text: '—', direction: 'flat' })
    expect(formatDelta(5, null)).toEqual({ text: '—', direction: 'flat' })
  })
})

describe('dates and labels', () => {
  it('formats local date-times', () => {
    const ms = new Date(2025, 5, 11, 14, 3, 22, 5).getTime()
    expect(formatDateTime(ms)).toBe('2025-06-11 14:03:22')
    expect(formatDateTime(ms, { ms: true })).toBe('2025-06-11 14:03:22.005')
    expect(formatDateTime(new Date(ms).toISOString())).toBe('2025-06-11 14:03:22')
    expect(formatDateTime('nonsense')).toBe('—')
  })
  it('describes range lengths', () => {
    expect(formatSpan(15 * 60_000)).toBe('15 min')
    expect(formatSpan(3_600_000)).toBe('1 h')
    expect(formatSpan(86_400_000)).toBe('24 h')
    expect(formatSpan(7 * 86_400_000)).toBe('7 d')
  })
  it('shows empty attribution as (none)', () => {
    expect(formatLabel('')).toBe('(none)')
    expect(formatLabel(null)).toBe('(none)')
    expect(formatLabel('alice')).toBe('alice')
  })
})

describe('formatBody', () => {
  it('indents JSON and leaves anything else as captured', () => {
    expect(formatBody('{"a":1,"b":[2]}')).toBe('{\n  "a": 1,\n  "b": [\n    2\n  ]\n}')
    expect(formatBody('data: {"a":1}\n\n')).toBe('data: {"a":1}\n\n')
    expect(formatBody('{"cut at the cap')).toBe('{"cut at the cap')
  })
})

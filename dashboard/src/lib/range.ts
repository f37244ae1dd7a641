/** Time ranges: presets relative to "now", custom absolute windows, the period before. */
import { formatDateTime, formatSpan } from './format.ts'
import type { TimeWindow } from './types.ts'

export const RANGE_PRESETS = ['15m', '1h', '24h', '7d', '30d'] as const
export type RangePreset = (typeof RANGE_PRESETS)[number]

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** Length of each preset, ms. */
export const PRESET_MS: Record<RangePreset, number> = {
  '15m': 15 * MINUTE,
  '1h': HOUR,
  '24h': DAY,
  '7d': 7 * DAY,
  '30d': 30 * DAY,
}

/** A preset resolves against the refresh time; a custom range is fixed. */
export type RangeSpec = { preset: RangePreset } | { preset: 'custom'; from: number; to: number }

export function isPreset(value: string): value is RangePreset {
  return (RANGE_PRESETS as readonly string[]).includes(value)
}

/**
 * The window a range covers at `now`.
 * @example resolveWindow({ preset: '1h' }, now) // { from: now - 3_600_000, to: now }
 */
export function resolveWindow(range: RangeSpec, now: number): TimeWindow {
  if (range.preset === 'custom') return { from: range.from, to: range.to }
  return { from: now - PRESET_MS[range.preset], to: now }
}

/** The period of equal length just before `w`, for "change vs previous period". */
export function previousWindow(w: TimeWindow): TimeWindow {
  return { from: w.from - (w.to - w.from), to: w.from }
}

/**
 * A time as the collector API takes it: epoch ms, epoch s, ISO-8601, or
 * relative (`now-15m`, `-24h`, `7d`, `now`). Mirrors collector/api/params.ts.
 */
export function parseTime(value: string, now: number): number | null {
  if (/^\d{13}$/.test(value)) return Number(value)
  if (/^\d{10}$/.test(value)) return Number(value) * 1000
  const rel = /^(?:now)?-?(\d+)(s|m|h|d|w)$/.exec(value)
  if (rel) {
    const unit = { s: 1000, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY }[rel[2] as 's' | 'm' | 'h' | 'd' | 'w']
    return now - Number(rel[1]) * unit
  }
  if (value === 'now') return now
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}

const pad = (n: number) => String(n).padStart(2, '0')

/** Epoch ms → the local `YYYY-MM-DDTHH:mm` a `<input type="datetime-local">` holds. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** A datetime-local value (local time) → epoch ms, or null when incomplete. */
export function fromLocalInput(value: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return null
  const ms = new Date(value).getTime()
  return Number.isNaN(ms) ? null : ms
}

/**
 * The range in words for headings and empty states.
 * @example describeRange({ preset: '24h' }, w) // 'the last 24 h'
 */
export function describeRange(range: RangeSpec, window: TimeWindow): string {
  if (range.preset !== 'custom') return `the last ${formatSpan(PRESET_MS[range.preset])}`
  return `${formatDateTime(window.from).slice(0, 16)} – ${formatDateTime(window.to).slice(0, 16)}`
}

/**
 * Every number the dashboard shows goes through here, so a unit reads the
 * same in a card, a table, a chart axis and a legend. Pure and locale-free
 * (always `1,234.5`): the e2e test compares what the page shows with these
 * functions applied to the API's numbers.
 */

const DASH = '—'
const MINUS = '−'

function isMissing(v: number | null | undefined): v is null | undefined {
  return v === null || v === undefined || Number.isNaN(v)
}

/** `1234567.891` → `1,234,567.89` with `digits` decimals. */
function grouped(v: number, digits: number): string {
  const [int = '0', frac] = Math.abs(v).toFixed(digits).split('.')
  const withCommas = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return (v < 0 ? MINUS : '') + (frac ? `${withCommas}.${frac}` : withCommas)
}

/** Drops trailing zeros after the decimal point: `1.50` → `1.5`, `2.0` → `2`. */
function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text
}

/** Fixed decimals such that `v` keeps `significant` significant digits. */
function significantDecimals(v: number, significant: number): number {
  const magnitude = Math.floor(Math.log10(Math.abs(v)))
  return Math.max(0, significant - 1 - magnitude)
}

/**
 * US dollars. At least cents; below $1 two significant digits, so tiny
 * per-request prices stay meaningful instead of rounding to $0.00.
 * @example formatUsd(1234.5) // '$1,234.50'
 * @example formatUsd(0.00042) // '$0.00042'
 * @example formatUsd(0.5) // '$0.50'
 */
export function formatUsd(v: number | null | undefined): string {
  if (isMissing(v)) return DASH
  const abs = Math.abs(v)
  const sign = v < 0 ? MINUS : ''
  // genai-prices amounts are rounded to 1e-9; anything smaller is float noise.
  if (abs < 5e-10) return '$0.00'
  if (abs >= 1e7) return `${sign}$${compact(abs)}`
  if (abs >= 0.995) return `${sign}$${grouped(abs, 2)}`
  const decimals = Math.max(2, significantDecimals(abs, 2))
  let text = abs.toFixed(decimals)
  // Keep cents for amounts of a cent or more (`$0.50`, not `$0.5`), trim past that.
  if (decimals > 2) text = trimZeros(text)
  return `${sign}$${text}`
}

/** `1234` → `1.23k`; three significant digits with k/M/B/T suffixes. */
function compact(abs: number): string {
  const units = ['', 'k', 'M', 'B', 'T']
  let i = 0
  let scaled = abs
  while (scaled >= 999.5 && i < units.length - 1) {
    scaled /= 1000
    i++
  }
  const digits = scaled >= 100 ? 0 : scaled >= 10 ? 1 : 2
  return `${trimZeros(scaled.toFixed(digits))}${units[i]}`
}

/**
 * A count (requests, tokens): exact below 1,000, then k/M/B with three
 * significant digits.
 * @example formatCount(950) // '950'
 * @example formatCount(12_345) // '12.3k'
 */
export function formatCount(v: number | null | undefined): string {
  if (isMissing(v)) return DASH
  const abs = Math.abs(v)
  const sign = v < 0 ? MINUS : ''
  // Counts are whole; an average (tokens per request) keeps a little precision.
  if (abs < 1000) return sign + (Number.isInteger(abs) ? String(abs) : trimZeros(abs.toFixed(abs < 10 ? 2 : 1)))
  return sign + compact(abs)
}

/**
 * A duration in milliseconds: `ms` below a second, `s` below a minute, then `min`.
 * @example formatMs(4.25) // '4.3 ms'
 * @example formatMs(1530) // '1.53 s'
 */
export function formatMs(v: number | null | undefined): string {
  if (isMissing(v)) return DASH
  const abs = Math.abs(v)
  const sign = v < 0 ? MINUS : ''
  if (abs < 10) return `${sign}${trimZeros(abs.toFixed(1))} ms`
  if (abs < 999.5) return `${sign}${abs.toFixed(0)} ms`
  if (abs < 9995) return `${sign}${trimZeros((abs / 1000).toFixed(2))} s`
  if (abs < 59_950) return `${sign}${trimZeros((abs / 1000).toFixed(1))} s`
  return `${sign}${trimZeros((abs / 60_000).toFixed(1))} min`
}

/**
 * A ratio (0–1) as a percentage; small non-zero rates keep two significant digits.
 * @example formatPercent(0.0123) // '1.2%'
 * @example formatPercent(0.00042) // '0.042%'
 */
export function formatPercent(v: number | null | undefined): string {
  if (isMissing(v)) return DASH
  const pct = v * 100
  const abs = Math.abs(pct)
  if (abs === 0) return '0%'
  const sign = pct < 0 ? MINUS : ''
  if (abs < 0.1) return `${sign}${trimZeros(abs.toFixed(significantDecimals(abs, 2)))}%`
  return `${sign}${trimZeros(abs.toFixed(1))}%`
}

/**
 * Output tokens per second.
 * @example formatTokensPerSecond(85.27) // '85.3 tok/s'
 */
export function formatTokensPerSecond(v: number | null | undefined): string {
  if (isMissing(v)) return DASH
  const abs = Math.abs(v)
  if (abs >= 1000) return `${compact(abs)} tok/s`
  return `${trimZeros(abs.toFixed(abs < 10 ? 2 : 1))} tok/s`
}

/**
 * Bytes, 1024-based.
 * @example formatBytes(1536) // '1.5 KiB'
 */
export function formatBytes(v: number | null | undefined): string {
  if (isMissing(v)) return DASH
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let scaled = Math.abs(v)
  while (scaled >= 1024 && i < units.length - 1) {
    scaled /= 1024
    i++
  }
  return `${i === 0 ? scaled.toFixed(0) : trimZeros(scaled.toFixed(scaled < 10 ? 1 : 0))} ${units[i]}`
}

export type DeltaDirection = 'up' | 'down' | 'flat' | 'new'

export interface Delta {
  /** `+12%`, `−3.4 pp`, `new`, or `—` when both periods are empty. */
  text: string
  direction: DeltaDirection
}

/**
 * The change from the previous period to this one. Rates compare in
 * percentage points (`pp`): 2% → 3% is `+1 pp`, not `+50%`.
 * @example formatDelta(120, 100) // { text: '+20%', direction: 'up' }
 * @example formatDelta(0.03, 0.02, 'points') // { text: '+1 pp', direction: 'up' }
 */
export function formatDelta(current: number | null | undefined, previous: number | null | undefined, kind: 'relative' | 'points' = 'relative'): Delta {
  if (isMissing(current) || isMissing(previous)) return { text: DASH, direction: 'flat' }
  if (kind === 'points') {
    const pp = (current - previous) * 100
    if (Math.abs(pp) < 0.05) return { text: '0 pp', direction: 'flat' }
    return { text: `${pp > 0 ? '+' : MINUS}${trimZeros(Math.abs(pp).toFixed(1))} pp`, direction: pp > 0 ? 'up' : 'down' }
  }
  if (previous === 0) return current === 0 ? { text: DASH, direction: 'flat' } : { text: 'new', direction: 'new' }
  const change = ((current - previous) / Math.abs(previous)) * 100
  const abs = Math.abs(change)
  if (abs < 0.05) return { text: '0%', direction: 'flat' }
  const digits = abs < 10 ? 1 : 0
  return { text: `${change > 0 ? '+' : MINUS}${trimZeros(abs.toFixed(digits))}%`, direction: change > 0 ? 'up' : 'down' }
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/**
 * A local date and time, `2025-06-11 14:03:22`, with milliseconds on request.
 * @example formatDateTime(Date.parse('2025-06-11T14:03:22.5')) // '2025-06-11 14:03:22'
 */
export function formatDateTime(v: number | string | null | undefined, options: { ms?: boolean } = {}): string {
  if (v === null || v === undefined) return DASH
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return DASH
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return options.ms ? `${text}.${pad(d.getMilliseconds(), 3)}` : text
}

/**
 * A span of time in words, for range labels.
 * @example formatSpan(86_400_000) // '24 h'
 */
export function formatSpan(ms: number): string {
  const minutes = ms / 60_000
  if (minutes < 60) return `${trimZeros(minutes.toFixed(minutes < 10 ? 1 : 0))} min`
  const hours = minutes / 60
  if (hours <= 48) return `${trimZeros(hours.toFixed(hours < 10 ? 1 : 0))} h`
  return `${trimZeros((hours / 24).toFixed(1))} d`
}

/** `null` and empty strings as a visible placeholder; the collector stores "no user" as ''. */
export function formatLabel(v: string | null | undefined): string {
  return v === null || v === undefined || v === '' ? '(none)' : v
}

/**
 * A captured body for reading: JSON indented, anything else (SSE streams,
 * bodies cut at the capture cap) as it was.
 * @example formatBody('{"a":1}') // '{\n  "a": 1\n}'
 */
export function formatBody(text: string): string {
  const trimmed = text.trim()
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return text
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2)
  } catch {
    return text
  }
}

/**
 * Query-string parsing for the collector API: one zod schema per endpoint, and
 * a 400 message that names each bad parameter.
 */
import { z } from 'zod'
import { MAX_SUMMARY_GROUPS, SUMMARY_GROUPS, TIMESERIES_GROUPS, TIMESERIES_METRIC_NAMES, decodeCursor, type SpanFilters } from '../queries.ts'

const DAY_MS = 86_400_000
/** Longest range one query may cover. */
const MAX_RANGE_MS = 400 * DAY_MS

/** Epoch ms, epoch s (10 digits), ISO-8601, or relative `now-15m` / `-24h` / `7d`. */
export function parseTime(value: string, now: number): number | null {
  if (/^\d{13}$/.test(value)) return Number(value)
  if (/^\d{10}$/.test(value)) return Number(value) * 1000
  const rel = /^(?:now)?-?(\d+)(s|m|h|d|w)$/.exec(value)
  if (rel) return now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: DAY_MS, w: 7 * DAY_MS }[rel[2] as 's']
  if (value === 'now') return now
  // ISO-8601 only: Date.parse alone also takes '1' (2001-01-01, local time) and other loose forms.
  if (!/^\d{4}-\d{2}-\d{2}(?:[T ]|$)/.test(value)) return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}

const time = z.string().max(40)
const text = (max: number) => z.string().min(1).max(max)

const filterShape = {
  from: time.optional(),
  to: time.optional(),
  model: text(256).optional(),
  provider: text(64).optional(),
  status: text(32).optional(),
  user: text(256).optional(),
  session: text(256).optional(),
  app: text(256).optional(),
  endpoint: text(32).optional(),
  property: text(512).optional(),
  q: text(128).optional(),
}

const spansSchema = z.object({
  ...filterShape,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(200).refine((c) => decodeCursor(c) !== null, 'not a next_cursor value from /api/spans').optional(),
})
const summarySchema = z
  .object({
    ...filterShape,
    group_by: z.enum(SUMMARY_GROUPS).optional(),
    property_key: text(128).optional(),
    // The top groups by spend; the dashboard's top-users table needs 20, not every user.
    limit: z.coerce.number().int().min(1).max(MAX_SUMMARY_GROUPS).optional(),
  })
  .refine((v) => v.group_by !== 'property' || v.property_key !== undefined, { message: 'group_by=property needs property_key', path: ['property_key'] })
const timeseriesSchema = z.object({
  ...filterShape,
  step: z.coerce.number().int().min(1).max(86_400 * 7).optional(),
  // One metric, or several comma-separated: one query then computes them all
  // (a t-digest merge shared by its quantiles), where a call each would queue
  // behind one another on the embedded store's single query thread.
  metric: z
    .string()
    .default('requests')
    .transform((v) => v.split(','))
    .pipe(z.array(z.enum(TIMESERIES_METRIC_NAMES)).min(1).max(TIMESERIES_METRIC_NAMES.length))
    .refine((list) => new Set(list).size === list.length, 'a metric is listed twice'),
  group_by: z.enum(TIMESERIES_GROUPS).optional(),
})

const recommendationsSchema = z.object({ from: time.optional(), to: time.optional() })

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string }

function parseWith<S extends z.ZodType>(schema: S, params: URLSearchParams): Parsed<z.infer<S>> {
  const result = schema.safeParse(Object.fromEntries(params))
  if (!result.success) return { ok: false, message: result.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ') }
  return { ok: true, value: result.data }
}

/** from/to default to the `defaultSpanMs` (24 hours) before now; to must follow from; ranges are capped. */
function resolveRange(
  raw: { from?: string | undefined; to?: string | undefined },
  now: number,
  defaultSpanMs = DAY_MS,
): Parsed<{ from: number; to: number }> {
  const to = raw.to === undefined ? now : parseTime(raw.to, now)
  const from = raw.from === undefined ? (to ?? now) - defaultSpanMs : parseTime(raw.from, now)
  if (from === null) return { ok: false, message: 'from: expected epoch ms, ISO-8601 or a relative time like now-24h' }
  if (to === null) return { ok: false, message: 'to: expected epoch ms, ISO-8601 or a relative time like now' }
  if (to <= from) return { ok: false, message: 'to: must be after from' }
  if (to - from > MAX_RANGE_MS) return { ok: false, message: 'from: range longer than 400 days' }
  return { ok: true, value: { from, to } }
}

function withRange<T extends { from?: string | undefined; to?: string | undefined }>(
  parsed: Parsed<T>,
  now: number,
  defaultSpanMs = DAY_MS,
): Parsed<Omit<T, 'from' | 'to'> & { from: number; to: number }> {
  if (!parsed.ok) return parsed
  const range = resolveRange(parsed.value, now, defaultSpanMs)
  if (!range.ok) return range
  return { ok: true, value: { ...parsed.value, ...range.value } }
}

export const parseSpansQuery = (p: URLSearchParams, now = Date.now()) => withRange(parseWith(spansSchema, p), now)
export const parseSummaryQuery = (p: URLSearchParams, now = Date.now()) => withRange(parseWith(summarySchema, p), now)
export const parseTimeseriesQuery = (p: URLSearchParams, now = Date.now()) => withRange(parseWith(timeseriesSchema, p), now)
/** GET /api/recommendations: from/to only; the default window is the last 7 days. */
export const parseRecommendationsQuery = (p: URLSearchParams, now = Date.now()) =>
  withRange(parseWith(recommendationsSchema, p), now, 7 * DAY_MS)

export type { SpanFilters }

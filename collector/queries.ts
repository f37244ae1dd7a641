/**
 * Named queries behind the collector API. Every value from a request reaches
 * ClickHouse as a bound parameter ({name:Type}); only identifiers chosen from
 * closed sets here are put into SQL text. Aggregates over minutes or longer
 * read the rollups; only per-user/session views and sub-minute steps read the
 * raw table.
 */
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client'
import type { SpanTables } from './store.ts'
import type { Span } from './schema.ts'
import type { SummaryGroup, SummaryRow, Timeseries, TimeseriesGroup, TimeseriesMetric } from './api/shapes.ts'

export { SUMMARY_GROUPS, TIMESERIES_GROUPS, TIMESERIES_METRIC_NAMES } from './api/shapes.ts'
export type { SummaryGroup, SummaryRow, Timeseries, TimeseriesGroup, TimeseriesMetric } from './api/shapes.ts'

const MINUTE_MS = 60_000
const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000

export interface QueryContext {
  client: ClickHouseClient
  tables: SpanTables
  settings: ClickHouseSettings
}

export interface SpanFilters {
  from: number
  to: number
  model?: string | undefined
  provider?: string | undefined
  /** An error_type, `error` (any failure) or `ok`. */
  status?: string | undefined
  user?: string | undefined
  session?: string | undefined
  app?: string | undefined
  endpoint?: string | undefined
  /** `key:value` on properties. */
  property?: string | undefined
  /** Case-insensitive text in the model name. */
  q?: string | undefined
}

type Params = Record<string, unknown>

/** WHERE conditions for raw-table filters; `col` maps a logical field to its column. */
function filterClauses(f: SpanFilters, params: Params, options: { raw: boolean }): string[] {
  const clauses: string[] = []
  if (f.model !== undefined) {
    params.model = f.model
    // The one model a span counts under (schema.ts spanModel), in the rollups and the raw table alike.
    clauses.push('model = {model:String}')
  }
  if (f.provider !== undefined) {
    params.provider = f.provider
    clauses.push('provider = {provider:String}')
  }
  if (f.endpoint !== undefined) {
    params.endpoint = f.endpoint
    clauses.push('endpoint = {endpoint:String}')
  }
  if (f.app !== undefined) {
    params.app = f.app
    clauses.push('app = {app:String}')
  }
  if (f.status === 'error') clauses.push("error_type != 'none'")
  else if (f.status === 'ok') clauses.push("error_type = 'none'")
  else if (f.status !== undefined) {
    params.status = f.status
    clauses.push('error_type = {status:String}')
  }
  if (f.q !== undefined) {
    params.q = f.q
    clauses.push('positionCaseInsensitiveUTF8(model, {q:String}) > 0')
  }
  if (options.raw) {
    if (f.user !== undefined) {
      params.user = f.user
      clauses.push('user = {user:String}')
    }
    if (f.session !== undefined) {
      params.session = f.session
      clauses.push('session = {session:String}')
    }
    if (f.property !== undefined) {
      const i = f.property.indexOf(':')
      params.prop_key = i < 0 ? f.property : f.property.slice(0, i)
      if (i < 0) clauses.push('mapContains(properties, {prop_key:String})')
      else {
        params.prop_value = f.property.slice(i + 1)
        clauses.push('properties[{prop_key:String}] = {prop_value:String}')
      }
    }
  }
  return clauses
}

/** True when a filter needs columns only the raw table has. */
export function needsRawTable(f: SpanFilters): boolean {
  return f.user !== undefined || f.session !== undefined || f.property !== undefined
}

async function rows<T>(ctx: QueryContext, query: string, params: Params): Promise<T[]> {
  const result = await ctx.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: ctx.settings })
  return result.json<T>()
}

// ---------------------------------------------------------------- /api/spans

export interface SpanListParams extends SpanFilters {
  limit: number
  cursor?: string | undefined
}

export interface SpanList {
  spans: Span[]
  next_cursor: string | null
}

interface SpanRow {
  span_id: string
  started_ms: number
  ended_ms: number
  mode: Span['mode']
  provider: string
  endpoint: Span['endpoint']
  request_model: string | null
  response_model: string | null
  stream: boolean
  status_code: number
  error_type: Span['error_type']
  duration_ms: number
  ttft_ms: number | null
  input_tokens: number | null
  output_tokens: number | null
  cached_input_tokens: number | null
  cache_write_tokens: number | null
  reasoning_tokens: number | null
  cost_usd: number | null
  cost_status: Span['cost_status']
  finish_reason: string | null
  user: string
  session: string
  app: string
  properties: Record<string, string>
  request_bytes: number
  response_bytes: number
  client_addr: string
  request_hash: string
  prefix_hash: string
  prefix_bytes: number
}

// span_id keeps its own name and type: an alias named span_id would shadow the
// UUID column in WHERE and ORDER BY (ClickHouse resolves aliases first).
const SPAN_COLUMNS = `span_id, toUnixTimestamp64Milli(started_at) AS started_ms,
  toUnixTimestamp64Milli(ended_at) AS ended_ms, mode, provider, endpoint, request_model, response_model, stream,
  status_code, error_type, duration_ms, ttft_ms, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens,
  reasoning_tokens, cost_usd, cost_status, finish_reason, user, session, app, properties, request_bytes,
  response_bytes, client_addr, request_hash, prefix_hash, prefix_bytes`

/** Cursor = the last span's (started_at ms, span_id): keyset paging stays exact while new spans arrive. */
export function encodeCursor(startedMs: number, spanId: string): string {
  return Buffer.from(`${startedMs}_${spanId}`).toString('base64url')
}

export function decodeCursor(cursor: string): { startedMs: number; spanId: string } | null {
  const m = /^(\d{1,15})_([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString())
  return m ? { startedMs: Number(m[1]), spanId: m[2]! } : null
}

export async function listSpans(ctx: QueryContext, p: SpanListParams): Promise<SpanList> {
  const params: Params = {}
  const clauses = ['started_at >= fromUnixTimestamp64Milli({w_from:Int64})', 'started_at < fromUnixTimestamp64Milli({w_to:Int64})', ...filterClauses(p, params, { raw: true })]
  const cursor = p.cursor ? decodeCursor(p.cursor) : null
  let newest = p.to
  if (cursor) {
    params.cursor_ms = cursor.startedMs
    params.cursor_id = cursor.spanId
    clauses.push('(started_at, span_id) < (fromUnixTimestamp64Milli({cursor_ms:Int64}), toUUID({cursor_id:String}))')
    newest = Math.min(newest, cursor.startedMs + 1)
  }
  // Two steps. First the page's keys, newest first, read in the table's
  // sort-key order (toStartOfHour is monotonic, so the order is the same) and
  // window by window back from the newest (an hour, a day, a week, the rest):
  // over a whole month ClickHouse filters every granule of the range before
  // the limit can stop it, over an hour it reads a few. Then the page's
  // columns from the narrow window its keys span. On 10 M spans over 30 days
  // the first page went from ~500 ms to a few tens.
  const keys: { id: string; ms: number }[] = []
  let upper = newest
  for (const reach of [HOUR_MS, DAY_MS, 7 * DAY_MS, Number.POSITIVE_INFINITY]) {
    const lower = Math.max(p.from, newest - reach)
    if (lower >= upper) continue
    keys.push(
      ...(await rows<{ id: string; ms: number }>(
        ctx,
        `SELECT toString(span_id) AS id, toUnixTimestamp64Milli(started_at) AS ms FROM ${ctx.tables.spans}
         WHERE ${clauses.join(' AND ')}
         ORDER BY toStartOfHour(started_at) DESC, started_at DESC, span_id DESC LIMIT {limit:UInt32}`,
        { ...params, w_from: lower, w_to: upper, limit: p.limit + 1 - keys.length },
      )),
    )
    upper = lower
    if (keys.length > p.limit || lower <= p.from) break
  }
  let found: SpanRow[] = []
  if (keys.length > 0) {
    const times = keys.map((k) => Number(k.ms))
    const byId = await rows<SpanRow>(
      ctx,
      `SELECT ${SPAN_COLUMNS} FROM ${ctx.tables.spans}
       WHERE started_at >= fromUnixTimestamp64Milli({lo:Int64}) AND started_at <= fromUnixTimestamp64Milli({hi:Int64})
         AND span_id IN {ids:Array(UUID)}
       LIMIT 1 BY span_id`,
      { lo: Math.min(...times), hi: Math.max(...times), ids: keys.map((k) => k.id) },
    )
    const rowsById = new Map(byId.map((r) => [r.span_id, r]))
    found = keys.map((k) => rowsById.get(k.id)).filter((r): r is SpanRow => r !== undefined)
  }
  const page = found.slice(0, p.limit).map(rowToSpan)
  const last = found.length > p.limit ? found[p.limit - 1] : undefined
  return { spans: page, next_cursor: last ? encodeCursor(last.started_ms, last.span_id) : null }
}

/** One span by id, with its captured bodies (the list leaves them out). Null when unknown. */
export async function getSpan(ctx: QueryContext, spanId: string): Promise<Span | null> {
  const found = await rows<SpanRow & { request_body: string; response_body: string }>(
    ctx,
    `SELECT ${SPAN_COLUMNS}, request_body, response_body FROM ${ctx.tables.spans} WHERE span_id = {id:UUID} LIMIT 1`,
    { id: spanId },
  )
  const r = found[0]
  if (!r) return null
  return { ...rowToSpan(r), request_body: r.request_body || null, response_body: r.response_body || null }
}

function rowToSpan(r: SpanRow): Span {
  return {
    span_id: r.span_id,
    started_at: new Date(r.started_ms).toISOString(),
    ended_at: new Date(r.ended_ms).toISOString(),
    mode: r.mode,
    provider: r.provider,
    endpoint: r.endpoint,
    request_model: r.request_model,
    response_model: r.response_model,
    stream: r.stream,
    status_code: r.status_code,
    error_type: r.error_type,
    duration_ms: r.duration_ms,
    ttft_ms: r.ttft_ms,
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    cached_input_tokens: r.cached_input_tokens,
    cache_write_tokens: r.cache_write_tokens,
    reasoning_tokens: r.reasoning_tokens,
    cost_usd: r.cost_usd,
    cost_status: r.cost_status,
    finish_reason: r.finish_reason,
    user: r.user || null,
    session: r.session || null,
    app: r.app || null,
    properties: r.properties,
    request_bytes: Number(r.request_bytes),
    response_bytes: Number(r.response_bytes),
    client_addr: r.client_addr || null,
    request_hash: r.request_hash || null,
    prefix_hash: r.prefix_hash || null,
    prefix_bytes: r.prefix_hash ? Number(r.prefix_bytes) : null,
  }
}

// ---------------------------------------------------------------- sources

/**
 * [from, to) cut into pieces of whole units, coarsest first: the whole
 * `sizes[0]` units inside, then on each side whole units of the next size,
 * and so on; the last level takes whatever is left. Each piece is
 * [level, lo, hi], in time order, none empty.
 * @example coverRange(t0 + 90 * MINUTE_MS, t0 + 2 * DAY_MS, [DAY_MS, HOUR_MS, 1])
 */
function coverRange(from: number, to: number, sizes: readonly number[]): [number, number, number][] {
  const pieces: [number, number, number][] = []
  const cover = (lo: number, hi: number, level: number): void => {
    if (hi <= lo) return
    if (level === sizes.length - 1) return void pieces.push([level, lo, hi])
    const size = sizes[level]!
    const innerLo = Math.ceil(lo / size) * size
    const innerHi = Math.floor(hi / size) * size
    if (innerHi <= innerLo) return cover(lo, hi, level + 1)
    cover(lo, innerLo, level + 1)
    pieces.push([level, innerLo, innerHi])
    cover(innerHi, hi, level + 1)
  }
  cover(from, to, 0)
  return pieces
}

/**
 * The rollup rows covering [from, to), minute-exact: the whole days inside
 * from the daily rollup, then whole six-hour blocks, whole hours and, at the
 * ragged ends, minutes, each from its own rollup. Fewer, coarser rows are
 * what keep a month's quantile-state merge fast. `prefix` names the bound
 * parameters, so one query can hold several windows.
 */
export function rollupSource(tables: SpanTables, from: number, to: number, params: Params, prefix = 'r'): string {
  const tablesBySize = [tables.spans1d, tables.spans6h, tables.spans1h, tables.spans1m]
  const pieces = coverRange(Math.floor(from / MINUTE_MS) * MINUTE_MS, Math.ceil(to / MINUTE_MS) * MINUTE_MS, [DAY_MS, 6 * HOUR_MS, HOUR_MS, MINUTE_MS])
  if (pieces.length === 0) pieces.push([tablesBySize.length - 1, 0, 0])
  const selects = pieces.map(([level, lo, hi], i) => {
    params[`${prefix}${i}_from`] = lo / 1000
    params[`${prefix}${i}_to`] = hi / 1000
    return `SELECT * FROM ${tablesBySize[level]} WHERE bucket >= toDateTime({${prefix}${i}_from:UInt32}) AND bucket < toDateTime({${prefix}${i}_to:UInt32})`
  })
  return `(${selects.join('\n    UNION ALL ')})`
}

/**
 * The counts a rollup row keeps apart: per-row conditions on the rollups
 * keyed by error_type and cost_status, stored columns on the per-user ones.
 */
interface RollupCounts {
  errors: string
  rateLimited: string
  unpriced: string
  noUsage: string
  /** The latency and TTFT quantile arrays; NULL where no sketches are kept. */
  durationQ: string
  ttftQ: string
}

const KEYED_COUNTS: RollupCounts = {
  errors: "sumIf(requests, error_type != 'none')",
  rateLimited: "sumIf(requests, error_type = 'rate_limited')",
  unpriced: "sumIf(requests, cost_status = 'unpriced')",
  noUsage: "sumIf(requests, cost_status = 'no_usage')",
  durationQ: 'quantilesBFloat16Merge(0.5, 0.9, 0.95, 0.99)(duration_bf)',
  ttftQ: 'quantilesBFloat16Merge(0.5, 0.9, 0.95, 0.99)(ttft_bf)',
}

const USER_COUNTS: RollupCounts = {
  errors: 'sum(errors)',
  rateLimited: 'sum(rate_limited)',
  unpriced: 'sum(unpriced_requests)',
  noUsage: 'sum(no_usage_requests)',
  // Per user only sums are kept (migrations/0014): the average latency, no quantiles.
  durationQ: 'NULL',
  ttftQ: 'NULL',
}

/** Aggregates over rollup rows. */
function rollupAggregates(c: RollupCounts): string {
  return `
  sum(requests) AS a_requests,
  ${c.errors} AS a_errors,
  ${c.rateLimited} AS a_rate_limited,
  sum(streams) AS a_streams,
  sum(input_tokens) AS a_input_tokens,
  sum(output_tokens) AS a_output_tokens,
  sum(cached_input_tokens) AS a_cached_input_tokens,
  sum(cache_write_tokens) AS a_cache_write_tokens,
  sum(reasoning_tokens) AS a_reasoning_tokens,
  sum(cost_usd) AS a_cost_usd,
  ${c.unpriced} AS a_unpriced_requests,
  ${c.noUsage} AS a_no_usage_requests,
  sum(duration_ms_sum) AS a_duration_ms_sum,
  sum(gen_output_tokens) AS a_gen_output_tokens,
  sum(gen_ms_sum) AS a_gen_ms_sum,
  ${c.durationQ} AS a_duration_q,
  ${c.ttftQ} AS a_ttft_q`
}

/** The same aggregates computed from raw spans. */
const RAW_AGGREGATES = `
  count() AS a_requests,
  countIf(error_type != 'none') AS a_errors,
  countIf(error_type = 'rate_limited') AS a_rate_limited,
  countIf(stream) AS a_streams,
  sum(ifNull(input_tokens, 0)) AS a_input_tokens,
  sum(ifNull(output_tokens, 0)) AS a_output_tokens,
  sum(ifNull(cached_input_tokens, 0)) AS a_cached_input_tokens,
  sum(ifNull(cache_write_tokens, 0)) AS a_cache_write_tokens,
  sum(ifNull(reasoning_tokens, 0)) AS a_reasoning_tokens,
  sum(ifNull(cost_usd, 0)) AS a_cost_usd,
  countIf(cost_status = 'unpriced') AS a_unpriced_requests,
  countIf(cost_status = 'no_usage') AS a_no_usage_requests,
  sum(duration_ms) AS a_duration_ms_sum,
  sumIf(ifNull(output_tokens, 0), output_tokens > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms) AS a_gen_output_tokens,
  sumIf(duration_ms - ifNull(ttft_ms, 0), output_tokens > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms) AS a_gen_ms_sum,
  quantilesTDigest(0.5, 0.9, 0.95, 0.99)(duration_ms) AS a_duration_q,
  quantilesTDigest(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS a_ttft_q`

interface AggregateRow {
  a_requests: number
  a_errors: number
  a_rate_limited: number
  a_streams: number
  a_input_tokens: number
  a_output_tokens: number
  a_cached_input_tokens: number
  a_cache_write_tokens: number
  a_reasoning_tokens: number
  a_cost_usd: number
  a_unpriced_requests: number
  a_no_usage_requests: number
  a_duration_ms_sum: number
  a_gen_output_tokens: number
  a_gen_ms_sum: number
  a_duration_q: number[]
  a_ttft_q: (number | null)[]
}

// ---------------------------------------------------------------- /api/summary

/** Most groups one summary returns (the top by spend). */
export const MAX_SUMMARY_GROUPS = 10_000

/** Groups only the raw table has (not in the rollups' key). */
const RAW_ONLY_GROUPS: ReadonlySet<string> = new Set(['user', 'session', 'property'])

/** Group-by name → [output key, SQL expression]; `property` groups by one key's value. */
function groupExpressions(groupBy: string | undefined, params: Params, propertyKey: string | undefined): [string, string][] {
  if (!groupBy) return []
  if (groupBy === 'model') return [['provider', 'provider'], ['model', 'model']]
  if (groupBy === 'property') {
    params.group_property = propertyKey ?? ''
    return [[`property`, 'properties[{group_property:String}]']]
  }
  return [[groupBy, `toString(${groupBy})`]]
}

/**
 * Aggregates per group over [from, to).
 * @param propertyKey with group_by=property: the property whose values form the groups.
 */
export async function summary(
  ctx: QueryContext,
  f: SpanFilters,
  groupBy: SummaryGroup | undefined,
  propertyKey?: string,
  limit = MAX_SUMMARY_GROUPS,
): Promise<SummaryRow[]> {
  const params: Params = { limit: Math.min(limit, MAX_SUMMARY_GROUPS) }
  const byUser = groupBy === 'user' && userRollupServes(f)
  const raw = !byUser && (needsRawTable(f) || (groupBy !== undefined && RAW_ONLY_GROUPS.has(groupBy)))
  const groups = groupExpressions(groupBy, params, propertyKey)
  const where = filterClauses(f, params, { raw: raw || byUser })
  if (groupBy === 'property') where.push('mapContains(properties, {group_property:String})')
  // The per-user pieces take the conditions inside (they are all on user).
  const source = byUser ? userRollupSource(ctx.tables, f.from, f.to, params, where) : raw ? rawSource(ctx.tables, f, params) : rollupSource(ctx.tables, f.from, f.to, params)
  const outer = byUser ? [] : where
  const found = await rows<AggregateRow & Record<string, string>>(
    ctx,
    `SELECT ${groups.map(([name, expr]) => `${expr} AS g_${name}`).join(', ')}${groups.length ? ',' : ''} ${raw ? RAW_AGGREGATES : rollupAggregates(byUser ? USER_COUNTS : KEYED_COUNTS)}
     FROM ${source} ${outer.length ? `WHERE ${outer.join(' AND ')}` : ''}
     ${groups.length ? `GROUP BY ${groups.map(([name]) => `g_${name}`).join(', ')} ORDER BY a_cost_usd DESC, a_requests DESC` : ''}
     LIMIT {limit:UInt32}`,
    params,
  )
  return found
    .filter((r) => groups.length === 0 || Number(r.a_requests) > 0)
    .map((r) => toSummaryRow(r, groups.length ? Object.fromEntries(groups.map(([name]) => [name, String(r[`g_${name}`] ?? '')])) : null))
}

/** Whether the per-user rollups can answer: they keep the user, so the user filter applies and no other. */
function userRollupServes(f: SpanFilters): boolean {
  return (
    f.model === undefined && f.provider === undefined && f.endpoint === undefined && f.app === undefined &&
    f.status === undefined && f.q === undefined && f.session === undefined && f.property === undefined
  )
}

/**
 * Per-user rows covering [from, to) to the millisecond: whole days from the
 * daily per-user rollup, whole hours from the hourly one, and the ragged ends
 * from raw spans, aggregated to the rollups' shape.
 */
export function userRollupSource(tables: SpanTables, from: number, to: number, params: Params, conditions: readonly string[]): string {
  const and = conditions.map((c) => ` AND ${c}`).join('')
  // Level 2 (units of 1 ms) is whatever whole hours do not cover: raw spans.
  const tablesBySize = [tables.spansUser1d, tables.spansUser1h]
  const selects = coverRange(from, to, [DAY_MS, HOUR_MS, 1]).map(([level, lo, hi], i) => {
    const table = tablesBySize[level]
    if (table === undefined) {
      params[`u${i}_from`] = lo
      params[`u${i}_to`] = hi
      return rawAsUserRollup(tables.spans, `{u${i}_from:Int64}`, `{u${i}_to:Int64}`, and)
    }
    params[`u${i}_from`] = lo / 1000
    params[`u${i}_to`] = hi / 1000
    return `SELECT ${USER_ROLLUP_COLUMNS} FROM ${table} WHERE bucket >= toDateTime({u${i}_from:UInt32}) AND bucket < toDateTime({u${i}_to:UInt32})${and}`
  })
  if (selects.length === 0) selects.push(`SELECT ${USER_ROLLUP_COLUMNS} FROM ${tables.spansUser1h} WHERE 0`)
  return `(${selects.join('\n    UNION ALL ')})`
}

/** The per-user rollups' columns, as plain sums (the raw pieces' types). */
const USER_ROLLUP_COLUMNS = `bucket, user,
  toUInt64(requests) AS requests, toUInt64(errors) AS errors, toUInt64(rate_limited) AS rate_limited,
  toUInt64(unpriced_requests) AS unpriced_requests, toUInt64(no_usage_requests) AS no_usage_requests, toUInt64(streams) AS streams, toUInt64(input_tokens) AS input_tokens,
  toUInt64(output_tokens) AS output_tokens, toUInt64(cached_input_tokens) AS cached_input_tokens,
  toUInt64(cache_write_tokens) AS cache_write_tokens, toUInt64(reasoning_tokens) AS reasoning_tokens,
  toFloat64(cost_usd) AS cost_usd, toFloat64(duration_ms_sum) AS duration_ms_sum,
  toUInt64(gen_output_tokens) AS gen_output_tokens, toFloat64(gen_ms_sum) AS gen_ms_sum`

/**
 * Raw spans in [lo, hi) aggregated like migrations/0014's hourly per-user
 * view (source columns renamed first, so no alias shadows a column).
 */
function rawAsUserRollup(spans: string, lo: string, hi: string, and: string): string {
  return `SELECT toStartOfHour(at) AS bucket, user,
    count() AS requests, countIf(failed) AS errors, countIf(limited) AS rate_limited,
    countIf(unpriced) AS unpriced_requests, countIf(no_usage) AS no_usage_requests,
    countIf(is_stream) AS streams, sum(in_t) AS input_tokens, sum(out_t) AS output_tokens,
    sum(cached_t) AS cached_input_tokens, sum(write_t) AS cache_write_tokens, sum(reason_t) AS reasoning_tokens,
    sum(cost) AS cost_usd, sum(dur) AS duration_ms_sum, sumIf(out_t, generating) AS gen_output_tokens,
    sumIf(dur - first_ms, generating) AS gen_ms_sum
  FROM (
    SELECT started_at AS at, user, error_type != 'none' AS failed, error_type = 'rate_limited' AS limited,
           cost_status = 'unpriced' AS unpriced, cost_status = 'no_usage' AS no_usage, stream AS is_stream,
           toUInt64(ifNull(input_tokens, 0)) AS in_t, toUInt64(ifNull(output_tokens, 0)) AS out_t,
           toUInt64(ifNull(cached_input_tokens, 0)) AS cached_t, toUInt64(ifNull(cache_write_tokens, 0)) AS write_t,
           toUInt64(ifNull(reasoning_tokens, 0)) AS reason_t, ifNull(cost_usd, 0) AS cost, duration_ms AS dur,
           ifNull(ttft_ms, 0) AS first_ms,
           ifNull(output_tokens, 0) > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms AS generating
    FROM ${spans} WHERE started_at >= fromUnixTimestamp64Milli(${lo}) AND started_at < fromUnixTimestamp64Milli(${hi})${and}
  )
  GROUP BY bucket, user`
}

function rawSource(tables: SpanTables, f: SpanFilters, params: Params): string {
  params.raw_from = f.from
  params.raw_to = f.to
  return `(SELECT *, model FROM ${tables.spans} WHERE started_at >= fromUnixTimestamp64Milli({raw_from:Int64}) AND started_at < fromUnixTimestamp64Milli({raw_to:Int64}))`
}

function toSummaryRow(r: AggregateRow, group: Record<string, string> | null): SummaryRow {
  const requests = Number(r.a_requests)
  const errors = Number(r.a_errors)
  const q = (arr: (number | null)[] | undefined, i: number): number | null => {
    const v = requests > 0 ? arr?.[i] : null
    return v === undefined || v === null || Number.isNaN(v) ? null : round(v, 3)
  }
  return {
    group,
    requests,
    errors,
    error_rate: requests ? errors / requests : 0,
    rate_limited: Number(r.a_rate_limited),
    streams: Number(r.a_streams),
    latency_ms: { avg: requests ? round(r.a_duration_ms_sum / requests, 3) : null, p50: q(r.a_duration_q, 0), p90: q(r.a_duration_q, 1), p95: q(r.a_duration_q, 2), p99: q(r.a_duration_q, 3) },
    ttft_ms: { p50: q(r.a_ttft_q, 0), p90: q(r.a_ttft_q, 1), p95: q(r.a_ttft_q, 2), p99: q(r.a_ttft_q, 3) },
    tokens: {
      input: Number(r.a_input_tokens),
      output: Number(r.a_output_tokens),
      cached_input: Number(r.a_cached_input_tokens),
      cache_write: Number(r.a_cache_write_tokens),
      reasoning: Number(r.a_reasoning_tokens),
    },
    output_tokens_per_s: r.a_gen_ms_sum > 0 ? round((Number(r.a_gen_output_tokens) / r.a_gen_ms_sum) * 1000, 2) : null,
    cost_usd: round(r.a_cost_usd, 9),
    unpriced_requests: Number(r.a_unpriced_requests),
    no_usage_requests: Number(r.a_no_usage_requests),
  }
}

// ---------------------------------------------------------------- /api/timeseries

/** Each metric's aggregate over rollup rows. */
function rollupMetrics(c: RollupCounts): Record<TimeseriesMetric, string> {
  return {
    requests: 'sum(requests)',
    errors: c.errors,
    error_rate: `if(sum(requests) = 0, 0, ${c.errors} / sum(requests))`,
    rate_limited: c.rateLimited,
    cost_usd: 'sum(cost_usd)',
    input_tokens: 'sum(input_tokens)',
    output_tokens: 'sum(output_tokens)',
    cached_input_tokens: 'sum(cached_input_tokens)',
    cache_write_tokens: 'sum(cache_write_tokens)',
    reasoning_tokens: 'sum(reasoning_tokens)',
    latency_p50: `${c.durationQ}[1]`,
    latency_p90: `${c.durationQ}[2]`,
    latency_p95: `${c.durationQ}[3]`,
    latency_p99: `${c.durationQ}[4]`,
    ttft_p50: `${c.ttftQ}[1]`,
    ttft_p95: `${c.ttftQ}[3]`,
    output_tokens_per_s: 'if(sum(gen_ms_sum) = 0, NULL, sum(gen_output_tokens) / sum(gen_ms_sum) * 1000)',
  }
}

const KEYED_METRICS = rollupMetrics(KEYED_COUNTS)
/** Quantiles are not among them: the per-user rollups keep no sketches. */
const USER_METRICS = rollupMetrics(USER_COUNTS)

/** Series beyond this many groups are folded into `other` (sums only). */
const MAX_SERIES = 12


/**
 * A step (s) giving about 120 points, rounded to a friendly size. By user,
 * over more than six hours, at least an hour: the per-user rollups are
 * hourly, and finer steps read every raw span of the range (1.1 s for a day
 * of the benchmark's 10 M spans, instead of ~0.1 s).
 */
export function autoStep(from: number, to: number, groupBy?: TimeseriesGroup): number {
  const target = (to - from) / 1000 / 120
  const steps = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
  const step = steps.find((s) => s >= target) ?? 86400
  return groupBy === 'user' && to - from > 6 * HOUR_MS ? Math.max(step, 3600) : step
}

export async function timeseries(
  ctx: QueryContext,
  f: SpanFilters,
  metricOrList: TimeseriesMetric | readonly TimeseriesMetric[],
  stepS: number,
  groupBy: TimeseriesGroup | undefined,
): Promise<Timeseries> {
  const metrics: readonly TimeseriesMetric[] = typeof metricOrList === 'string' ? [metricOrList] : metricOrList
  const stepMs = stepS * 1000
  const from = Math.floor(f.from / stepMs) * stepMs
  const to = Math.ceil(f.to / stepMs) * stepMs
  const params: Params = { step: stepS }
  // Per user by whole hours: the per-user rollups (the range is whole steps already).
  // (Quantiles by user read raw spans: the per-user rollups keep no sketches.)
  const byUser = groupBy === 'user' && stepS % 3600 === 0 && userRollupServes(f) && metrics.every((m) => metricZero(m) === 0)
  // A step that is not whole minutes cannot be built from minute rows.
  const raw = !byUser && (needsRawTable(f) || stepS % 60 !== 0 || (groupBy !== undefined && RAW_ONLY_GROUPS.has(groupBy)))
  let source: string
  if (raw) source = rawSource(ctx.tables, { ...f, from, to }, params)
  else if (byUser) {
    params.h_from = from / 1000
    params.h_to = to / 1000
    source = `(SELECT * FROM ${stepS % 86_400 === 0 ? ctx.tables.spansUser1d : ctx.tables.spansUser1h} WHERE bucket >= toDateTime({h_from:UInt32}) AND bucket < toDateTime({h_to:UInt32}))`
  } else if (stepS % 3600 === 0) {
    // The coarsest rollup whose rows fall whole into one step: fewer rows, a smaller quantile-state merge.
    const table = stepS % 86_400 === 0 ? ctx.tables.spans1d : stepS % 21_600 === 0 ? ctx.tables.spans6h : ctx.tables.spans1h
    params.h_from = from / 1000
    params.h_to = to / 1000
    source = `(SELECT * FROM ${table} WHERE bucket >= toDateTime({h_from:UInt32}) AND bucket < toDateTime({h_to:UInt32}))`
  } else {
    // Minute rows only: an hourly row would land whole in its hour's first bucket.
    params.m_from = from / 1000
    params.m_to = to / 1000
    source = `(SELECT * FROM ${ctx.tables.spans1m} WHERE bucket >= toDateTime({m_from:UInt32}) AND bucket < toDateTime({m_to:UInt32}))`
  }
  // Identical aggregate calls are computed once, so the quantiles of one
  // state column share a single merge.
  const values = metrics.map((m, i) => `${raw ? rawMetric(m) : (byUser ? USER_METRICS : KEYED_METRICS)[m]} AS v${i}`).join(', ')
  const time = raw ? 'started_at' : 'bucket'
  const where = filterClauses(f, params, { raw: raw || byUser })
  let groupExpr = groupBy ? `toString(${groupBy})` : "''"
  let foldedInSql = false
  const only = metrics.length === 1 ? metrics[0]! : undefined
  if (byUser && only !== undefined && isSummable(only)) {
    // Thousands of users × every step is a result of hundreds of thousands of
    // rows, of which seriesOf keeps MAX_SERIES: rank the users in SQL first
    // and fold the rest into `other` there (the same fold, done before the rows leave).
    // Ranked over the same range from whole days where it has them: the
    // hourly rows of a month are millions, its daily rows a tenth of that.
    const top = await rows<{ u: string }>(
      ctx,
      `SELECT user AS u FROM ${userRollupSource(ctx.tables, from, to, params, where)}
       GROUP BY u ORDER BY ${USER_METRICS[only]} DESC, u LIMIT ${MAX_SERIES + 1}`,
      params,
    )
    if (top.length > MAX_SERIES) {
      params.top_users = top.slice(0, MAX_SERIES - 1).map((r) => r.u)
      groupExpr = `if(user IN {top_users:Array(String)}, user, ${OTHER_GROUP_SQL})`
      foldedInSql = true
    }
  }
  const found = await rows<{ t: number; g: string } & Record<`v${number}`, number | null>>(
    ctx,
    `SELECT toUnixTimestamp(toStartOfInterval(${time}, toIntervalSecond({step:UInt32}))) * 1000 AS t, ${groupExpr} AS g, ${values}
     FROM ${source} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     GROUP BY t, g ORDER BY t`,
    params,
  )

  const buckets: number[] = []
  for (let t = from; t < to; t += stepMs) buckets.push(t)
  const index = new Map(buckets.map((t, i) => [t, i]))
  const series = metrics.flatMap((metric, m) => seriesOf(metric, found.map((r) => ({ t: r.t, g: r.g, v: r[`v${m}`] ?? null })), buckets, index, groupBy, foldedInSql))
  return { metric: metrics.join(','), step_s: stepS, from, to, buckets, series }
}

/** The group past MAX_SERIES folds into. */
const OTHER_GROUP = 'other'
const OTHER_GROUP_SQL = `'${OTHER_GROUP}'`

/** A metric whose values add up across groups, so folded groups can be summed into `other`. */
function isSummable(metric: TimeseriesMetric): boolean {
  return metricZero(metric) === 0 && metric !== 'error_rate'
}

/** What an empty bucket holds: 0 for counts and sums, null for quantiles and rates of nothing. */
function metricZero(metric: TimeseriesMetric): 0 | null {
  return metric.startsWith('latency') || metric.startsWith('ttft') || metric === 'output_tokens_per_s' ? null : 0
}

/** One metric's zero-filled series per group, past MAX_SERIES folded into `other`. */
function seriesOf(
  metric: TimeseriesMetric,
  found: { t: number; g: string; v: number | null }[],
  buckets: number[],
  index: Map<number, number>,
  groupBy: TimeseriesGroup | undefined,
  foldedInSql: boolean,
): Timeseries['series'] {
  const zero = metricZero(metric)
  const byGroup = new Map<string, (number | null)[]>()
  for (const r of found) {
    const i = index.get(Number(r.t))
    if (i === undefined) continue
    let values = byGroup.get(r.g)
    if (!values) byGroup.set(r.g, (values = buckets.map(() => zero)))
    values[i] = r.v === null || Number.isNaN(Number(r.v)) ? null : round(Number(r.v), 9)
  }
  let series = [...byGroup.entries()].map(([group, values]) => ({ metric, group: groupBy ? group : null, values }))
  // Ungrouped, an empty range is still one series of zeros (or nulls), not none.
  if (!groupBy && series.length === 0) series = [{ metric, group: null, values: buckets.map(() => zero) }]
  const total = (v: (number | null)[]) => v.reduce<number>((s, x) => s + (x ?? 0), 0)
  if (foldedInSql) {
    // Already MAX_SERIES at most: the same order as a fold here, `other` last.
    series.sort((a, b) => Number(a.group === OTHER_GROUP) - Number(b.group === OTHER_GROUP) || total(b.values) - total(a.values))
  } else if (series.length > MAX_SERIES) {
    series.sort((a, b) => total(b.values) - total(a.values))
    const kept = series.slice(0, MAX_SERIES - 1)
    if (isSummable(metric)) {
      const rest = series.slice(MAX_SERIES - 1)
      kept.push({ metric, group: OTHER_GROUP, values: buckets.map((_, i) => rest.reduce((s, x) => s + (x.values[i] ?? 0), 0)) })
    }
    series = kept
  }
  return series
}

/** The metric computed from raw spans (sub-minute steps, per-user filters). */
function rawMetric(metric: TimeseriesMetric): string {
  const map: Record<TimeseriesMetric, string> = {
    requests: 'count()',
    errors: "countIf(error_type != 'none')",
    error_rate: "countIf(error_type != 'none') / count()",
    rate_limited: "countIf(error_type = 'rate_limited')",
    cost_usd: 'sum(ifNull(cost_usd, 0))',
    input_tokens: 'sum(ifNull(input_tokens, 0))',
    output_tokens: 'sum(ifNull(output_tokens, 0))',
    cached_input_tokens: 'sum(ifNull(cached_input_tokens, 0))',
    cache_write_tokens: 'sum(ifNull(cache_write_tokens, 0))',
    reasoning_tokens: 'sum(ifNull(reasoning_tokens, 0))',
    latency_p50: 'quantileTDigest(0.5)(duration_ms)',
    latency_p90: 'quantileTDigest(0.9)(duration_ms)',
    latency_p95: 'quantileTDigest(0.95)(duration_ms)',
    latency_p99: 'quantileTDigest(0.99)(duration_ms)',
    ttft_p50: 'quantileTDigest(0.5)(ttft_ms)',
    ttft_p95: 'quantileTDigest(0.95)(ttft_ms)',
    output_tokens_per_s:
      'if(sumIf(duration_ms - ifNull(ttft_ms, 0), output_tokens > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms) = 0, NULL, sumIf(ifNull(output_tokens, 0), output_tokens > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms) / sumIf(duration_ms - ifNull(ttft_ms, 0), output_tokens > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms) * 1000)',
  }
  return map[metric]
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(Number(n) * f) / f
}

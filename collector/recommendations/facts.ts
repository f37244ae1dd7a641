/**
 * One set of queries → the plain facts the recommendation rules read.
 * Aggregates per provider×model and per app come from the rollups; what the
 * rollups cannot hold (output-token spread, request and prefix hashes,
 * users) comes from the raw table. Every value is a bound parameter; only
 * table names chosen by the store are put into SQL text.
 *
 * Aliases: outputs are `g_*` (group keys) and `a_*` (aggregates), never a
 * column's own name — a ClickHouse alias shadows the column it names within
 * the whole SELECT.
 */
import { rollupSource, type QueryContext } from '../queries.ts'
import { DAY_MS } from './common.ts'
import type { Facts, ModelFacts, PrefixFacts, RecommendationThresholds, RepeatFacts, SpendFacts } from './types.ts'

const MINUTE_MS = 60_000

type Params = Record<string, unknown>
/** UInt64 arrives as a string in JSON; Float64 as a number (or null / "nan"). */
type Num = number | string | null

async function rows<T>(ctx: QueryContext, query: string, params: Params): Promise<T[]> {
  const result = await ctx.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: ctx.settings })
  return result.json<T>()
}

function num(v: Num | undefined): number {
  const n = Number(v ?? 0)
  return Number.isFinite(n) ? n : 0
}

function numOrNull(v: Num | undefined): number | null {
  if (v === null || v === undefined) return null
  const n = Number(v)
  return Number.isFinite(n) ? n : null
}

/** Minute-aligned window: the grain at which rollup and raw counts agree exactly. */
export function alignWindow(from: number, to: number): { from: number; to: number } {
  return { from: Math.floor(from / MINUTE_MS) * MINUTE_MS, to: Math.ceil(to / MINUTE_MS) * MINUTE_MS }
}

/** Raw-table window condition, bound as raw_from / raw_to. */
function rawWindow(params: Params, from: number, to: number): string {
  params.raw_from = from
  params.raw_to = to
  return 'started_at >= fromUnixTimestamp64Milli({raw_from:Int64}) AND started_at < fromUnixTimestamp64Milli({raw_to:Int64})'
}

interface ModelRow {
  g_provider: string
  g_model: string
  a_requests: Num
  a_errors: Num
  a_http_4xx: Num
  a_http_5xx: Num
  a_rate_limited: Num
  a_timeouts: Num
  a_upstream_resets: Num
  a_proxy_errors: Num
  a_error_cost_usd: Num
  a_ok_requests: Num
  a_ok_cost_usd: Num
  a_ok_priced: Num
  a_ok_unpriced: Num
  a_ok_no_usage: Num
  a_ok_no_usage_streams: Num
  a_input_tokens: Num
  a_output_tokens: Num
  a_cached_input_tokens: Num
  a_cache_write_tokens: Num
  a_duration_q: Num[]
  a_ttft_q: Num[]
}

async function modelFacts(ctx: QueryContext, from: number, to: number): Promise<ModelFacts[]> {
  const params: Params = {}
  const source = rollupSource(ctx.tables, from, to, params, 'm')
  const found = await rows<ModelRow>(
    ctx,
    `SELECT provider AS g_provider, model AS g_model,
       sum(requests) AS a_requests,
       sumIf(requests, error_type != 'none') AS a_errors,
       sumIf(requests, error_type = 'http_4xx') AS a_http_4xx,
       sumIf(requests, error_type = 'http_5xx') AS a_http_5xx,
       sumIf(requests, error_type = 'rate_limited') AS a_rate_limited,
       sumIf(requests, error_type = 'timeout') AS a_timeouts,
       sumIf(requests, error_type = 'upstream_reset') AS a_upstream_resets,
       sumIf(requests, error_type = 'proxy_error') AS a_proxy_errors,
       sumIf(cost_usd, error_type != 'none') AS a_error_cost_usd,
       sumIf(requests, error_type = 'none') AS a_ok_requests,
       sumIf(cost_usd, error_type = 'none') AS a_ok_cost_usd,
       sumIf(requests, error_type = 'none' AND cost_status = 'priced') AS a_ok_priced,
       sumIf(requests, error_type = 'none' AND cost_status = 'unpriced') AS a_ok_unpriced,
       sumIf(requests, error_type = 'none' AND cost_status = 'no_usage') AS a_ok_no_usage,
       sumIf(streams, error_type = 'none' AND cost_status = 'no_usage') AS a_ok_no_usage_streams,
       sumIf(input_tokens, error_type = 'none') AS a_input_tokens,
       sumIf(output_tokens, error_type = 'none') AS a_output_tokens,
       sumIf(cached_input_tokens, error_type = 'none') AS a_cached_input_tokens,
       sumIf(cache_write_tokens, error_type = 'none') AS a_cache_write_tokens,
       -- Latency of successful calls only: fast 5xx and slow timeouts say nothing about serving speed.
       quantilesBFloat16MergeIf(0.5, 0.9, 0.95, 0.99)(duration_bf, error_type = 'none') AS a_duration_q,
       quantilesBFloat16MergeIf(0.5, 0.9, 0.95, 0.99)(ttft_bf, error_type = 'none') AS a_ttft_q
     FROM ${source}
     WHERE model != ''
     GROUP BY g_provider, g_model
     ORDER BY g_provider, g_model
     LIMIT 10000`,
    params,
  )
  return found.map((r) => {
    const ok = num(r.a_ok_requests)
    return {
      provider: r.g_provider,
      model: r.g_model,
      requests: num(r.a_requests),
      errors: num(r.a_errors),
      http_4xx: num(r.a_http_4xx),
      http_5xx: num(r.a_http_5xx),
      rate_limited: num(r.a_rate_limited),
      timeouts: num(r.a_timeouts),
      upstream_resets: num(r.a_upstream_resets),
      proxy_errors: num(r.a_proxy_errors),
      error_cost_usd: num(r.a_error_cost_usd),
      ok_requests: ok,
      ok_cost_usd: num(r.a_ok_cost_usd),
      ok_priced_requests: num(r.a_ok_priced),
      ok_unpriced_requests: num(r.a_ok_unpriced),
      ok_no_usage_requests: num(r.a_ok_no_usage),
      ok_no_usage_streams: num(r.a_ok_no_usage_streams),
      input_tokens: num(r.a_input_tokens),
      output_tokens: num(r.a_output_tokens),
      cached_input_tokens: num(r.a_cached_input_tokens),
      cache_write_tokens: num(r.a_cache_write_tokens),
      p95_ms: ok > 0 ? numOrNull(r.a_duration_q[2]) : null,
      p95_ttft_ms: ok > 0 ? numOrNull(r.a_ttft_q[2]) : null,
      output_samples: 0,
      output_mean: null,
      output_stddev: null,
    }
  })
}

/** Output-token spread per provider×model: the rollups keep sums only, so this reads raw spans. */
async function outputStats(ctx: QueryContext, from: number, to: number): Promise<Map<string, { n: number; mean: number | null; sd: number | null }>> {
  const params: Params = {}
  const found = await rows<{ g_provider: string; g_model: string; a_n: Num; a_mean: Num; a_sd: Num }>(
    ctx,
    `SELECT provider AS g_provider, model AS g_model, count() AS a_n, avg(output_tokens) AS a_mean, stddevPop(output_tokens) AS a_sd
     FROM ${ctx.tables.spans}
     WHERE ${rawWindow(params, from, to)} AND error_type = 'none' AND output_tokens IS NOT NULL AND model != ''
     GROUP BY g_provider, g_model
     LIMIT 10000`,
    params,
  )
  return new Map(found.map((r) => [`${r.g_provider}\u0000${r.g_model}`, { n: num(r.a_n), mean: numOrNull(r.a_mean), sd: numOrNull(r.a_sd) }]))
}

/** Successful calls whose exact body (request_hash) was sent before in the window. */
async function repeatFacts(ctx: QueryContext, from: number, to: number): Promise<RepeatFacts[]> {
  const params: Params = {}
  const found = await rows<{ g_provider: string; g_model: string; a_groups: Num; a_calls: Num; a_repeat_calls: Num; a_repeat_cost: Num }>(
    ctx,
    `SELECT g_provider, g_model, count() AS a_groups, sum(a_n) AS a_calls, sum(a_n - 1) AS a_repeat_calls, sum(a_repeat_cost) AS a_repeat_cost
     FROM (
       SELECT provider AS g_provider, model AS g_model, request_hash AS g_hash, count() AS a_n,
              -- Everything but the first call of the group: what a response cache would have answered.
              sum(ifNull(cost_usd, 0)) - argMin(ifNull(cost_usd, 0), (started_at, span_id)) AS a_repeat_cost
       FROM ${ctx.tables.spans}
       WHERE ${rawWindow(params, from, to)} AND error_type = 'none' AND request_hash != '' AND model != ''
       GROUP BY g_provider, g_model, g_hash
       HAVING a_n >= 2
     )
     GROUP BY g_provider, g_model
     ORDER BY g_provider, g_model
     LIMIT 10000`,
    params,
  )
  return found.map((r) => ({
    provider: r.g_provider,
    model: r.g_model,
    groups: num(r.a_groups),
    calls: num(r.a_calls),
    repeat_calls: num(r.a_repeat_calls),
    repeat_cost_usd: num(r.a_repeat_cost),
  }))
}

/**
 * Prefix groups (prefix_hash) of at least `minPrefixBytes` seen in at least
 * `minPrefixCalls` successful calls whose cached input stayed at or below
 * `maxCachedShare` of the prefix tokens: a prompt cache was not used. Tokens
 * ≈ bytes / 4, capped at the smallest input of the group.
 */
async function prefixFacts(ctx: QueryContext, from: number, to: number, t: RecommendationThresholds['caching']): Promise<PrefixFacts[]> {
  const params: Params = { min_bytes: t.minPrefixBytes, min_calls: t.minPrefixCalls, max_cached: t.maxCachedShare }
  const found = await rows<{ g_provider: string; g_model: string; a_groups: Num; a_calls: Num; a_prefix_tokens: Num; a_repeat_tokens: Num; a_cached: Num }>(
    ctx,
    `SELECT g_provider, g_model, count() AS a_groups, sum(a_n) AS a_calls, sum(a_tokens) AS a_prefix_tokens,
            sum(a_tokens * (a_n - 1)) AS a_repeat_tokens, sum(a_group_cached) AS a_cached
     FROM (
       SELECT provider AS g_provider, model AS g_model, prefix_hash AS g_hash, count() AS a_n,
              if(countIf(input_tokens IS NOT NULL) = 0, intDiv(max(prefix_bytes), 4),
                 least(intDiv(max(prefix_bytes), 4), minIf(assumeNotNull(input_tokens), input_tokens IS NOT NULL))) AS a_tokens,
              sum(ifNull(cached_input_tokens, 0)) AS a_group_cached
       FROM ${ctx.tables.spans}
       WHERE ${rawWindow(params, from, to)} AND error_type = 'none' AND prefix_hash != '' AND model != ''
         AND prefix_bytes >= {min_bytes:UInt32}
       GROUP BY g_provider, g_model, g_hash
       HAVING a_n >= {min_calls:UInt32} AND a_group_cached <= {max_cached:Float64} * a_tokens * a_n
     )
     GROUP BY g_provider, g_model
     ORDER BY g_provider, g_model
     LIMIT 10000`,
    params,
  )
  return found.map((r) => ({
    provider: r.g_provider,
    model: r.g_model,
    groups: num(r.a_groups),
    calls: num(r.a_calls),
    prefix_tokens: num(r.a_prefix_tokens),
    repeat_prefix_tokens: num(r.a_repeat_tokens),
    cached_input_tokens: num(r.a_cached),
  }))
}

/**
 * Spend per user (raw table: users are not in the rollups) and per app
 * (rollups, one source per side of `recentFrom`, so no hourly row straddles
 * it). Only keys whose last 24 hours reach `spikeMinUsd` come back.
 */
async function spendFacts(ctx: QueryContext, from: number, to: number, recentFrom: number, minUsd: number): Promise<SpendFacts[]> {
  const userParams: Params = { recent_from: recentFrom, min_usd: minUsd }
  const users = await rows<{ g_key: string; a_recent_usd: Num; a_recent_requests: Num; a_baseline_usd: Num }>(
    ctx,
    `SELECT user AS g_key,
            sumIf(ifNull(cost_usd, 0), started_at >= fromUnixTimestamp64Milli({recent_from:Int64})) AS a_recent_usd,
            countIf(started_at >= fromUnixTimestamp64Milli({recent_from:Int64})) AS a_recent_requests,
            sumIf(ifNull(cost_usd, 0), started_at < fromUnixTimestamp64Milli({recent_from:Int64})) AS a_baseline_usd
     FROM ${ctx.tables.spans}
     WHERE ${rawWindow(userParams, from, to)} AND user != ''
     GROUP BY g_key
     HAVING a_recent_usd >= {min_usd:Float64}
     ORDER BY g_key
     LIMIT 10000`,
    userParams,
  )
  const appParams: Params = { min_usd: minUsd }
  const recent = rollupSource(ctx.tables, recentFrom, to, appParams, 'r')
  const base = recentFrom > from ? rollupSource(ctx.tables, from, recentFrom, appParams, 'b') : null
  const apps = await rows<{ g_key: string; a_recent_usd: Num; a_recent_requests: Num; a_baseline_usd: Num }>(
    ctx,
    `SELECT g_key, sum(a_r_usd) AS a_recent_usd, sum(a_r_requests) AS a_recent_requests, sum(a_b_usd) AS a_baseline_usd
     FROM (
       SELECT app AS g_key, sum(cost_usd) AS a_r_usd, sum(requests) AS a_r_requests, 0 AS a_b_usd FROM ${recent} WHERE app != '' GROUP BY g_key
       ${base ? `UNION ALL SELECT app AS g_key, 0 AS a_r_usd, 0 AS a_r_requests, sum(cost_usd) AS a_b_usd FROM ${base} WHERE app != '' GROUP BY g_key` : ''}
     )
     GROUP BY g_key
     HAVING a_recent_usd >= {min_usd:Float64}
     ORDER BY g_key
     LIMIT 10000`,
    appParams,
  )
  const toFacts = (dimension: SpendFacts['dimension']) => (r: { g_key: string; a_recent_usd: Num; a_recent_requests: Num; a_baseline_usd: Num }): SpendFacts => ({
    dimension,
    key: r.g_key,
    recent_usd: num(r.a_recent_usd),
    recent_requests: num(r.a_recent_requests),
    baseline_usd: num(r.a_baseline_usd),
  })
  return [...users.map(toFacts('user')), ...apps.map(toFacts('app'))]
}

/**
 * Every fact for the window [from, to), which is first aligned to whole
 * minutes (the rollups' grain) so rollup and raw-table counts agree and each
 * rule's spans_query returns exactly the spans it counted.
 */
export async function collectFacts(ctx: QueryContext, window: { from: number; to: number }, t: RecommendationThresholds): Promise<Facts> {
  const { from, to } = alignWindow(window.from, window.to)
  const recentFrom = Math.max(from, to - DAY_MS)
  // Sequential on purpose: embedded chDB runs one query at a time anyway, and a server is spared the burst.
  const models = await modelFacts(ctx, from, to)
  const stats = await outputStats(ctx, from, to)
  for (const m of models) {
    const s = stats.get(`${m.provider}\u0000${m.model}`)
    if (s) {
      m.output_samples = s.n
      m.output_mean = s.mean
      m.output_stddev = s.sd
    }
  }
  const repeats = await repeatFacts(ctx, from, to)
  const prefixes = await prefixFacts(ctx, from, to, t.caching)
  const spend = await spendFacts(ctx, from, to, recentFrom, t.hygiene.spikeMinUsd)
  return { from, to, recent_from: recentFrom, models, repeats, prefixes, spend }
}

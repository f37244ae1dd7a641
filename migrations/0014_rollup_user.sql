-- Per-user rollups, for spend by user (the Spend page's top users and its
-- split by user). Users are not in the other rollups' key, so grouping by
-- user read every raw span of the range: 5.6 s for 30 days of 10 M spans.
-- Hourly rows come from a view on spans; daily rows cascade from the hourly
-- insert blocks. The key is the bucket and the user alone, with errors and
-- cost statuses counted in columns (in the key they made 7.7 rows per
-- user-day on the benchmark's 10 M spans). Sums only, no latency sketches:
-- a sketch per user-hour made an insert ~20 % dearer (~10 µs per span with
-- 5,000 active users) and merging a month of them took 2 s; per user the
-- API gives the average latency, as Helicone and Langfuse do.
CREATE TABLE IF NOT EXISTS ${DB}.spans_user_1h ${ON_CLUSTER}
(
    bucket              DateTime('UTC'),
    user                String,
    requests            SimpleAggregateFunction(sum, UInt64),
    errors              SimpleAggregateFunction(sum, UInt64),
    rate_limited        SimpleAggregateFunction(sum, UInt64),
    unpriced_requests   SimpleAggregateFunction(sum, UInt64),
    no_usage_requests   SimpleAggregateFunction(sum, UInt64),
    streams             SimpleAggregateFunction(sum, UInt64),
    input_tokens        SimpleAggregateFunction(sum, UInt64),
    output_tokens       SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens  SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens    SimpleAggregateFunction(sum, UInt64),
    cost_usd            SimpleAggregateFunction(sum, Float64),
    duration_ms_sum     SimpleAggregateFunction(sum, Float64),
    gen_output_tokens   SimpleAggregateFunction(sum, UInt64),
    gen_ms_sum          SimpleAggregateFunction(sum, Float64)
)
ENGINE = ${ENGINE:AggregatingMergeTree}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, user)
TTL bucket + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS ${DB}.spans_user_1d ${ON_CLUSTER} AS ${DB}.spans_user_1h
ENGINE = ${ENGINE:AggregatingMergeTree}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, user)
TTL bucket + INTERVAL 800 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}.spans_user_1h_mv ${ON_CLUSTER} TO ${DB}.spans_user_1h AS
SELECT
    toStartOfHour(at) AS bucket,
    user,
    count() AS requests,
    countIf(failed) AS errors,
    countIf(limited) AS rate_limited,
    countIf(unpriced) AS unpriced_requests,
    countIf(no_usage) AS no_usage_requests,
    countIf(is_stream) AS streams,
    sum(in_t) AS input_tokens,
    sum(out_t) AS output_tokens,
    sum(cached_t) AS cached_input_tokens,
    sum(write_t) AS cache_write_tokens,
    sum(reason_t) AS reasoning_tokens,
    sum(cost) AS cost_usd,
    sum(dur) AS duration_ms_sum,
    sumIf(out_t, generating) AS gen_output_tokens,
    sumIf(dur - first_ms, generating) AS gen_ms_sum
FROM (
    -- Source columns under names the outer aliases do not shadow.
    SELECT started_at AS at, user, error_type != 'none' AS failed, error_type = 'rate_limited' AS limited,
           cost_status = 'unpriced' AS unpriced, cost_status = 'no_usage' AS no_usage,
           stream AS is_stream, ifNull(input_tokens, 0) AS in_t, ifNull(output_tokens, 0) AS out_t,
           ifNull(cached_input_tokens, 0) AS cached_t, ifNull(cache_write_tokens, 0) AS write_t,
           ifNull(reasoning_tokens, 0) AS reason_t, ifNull(cost_usd, 0) AS cost, duration_ms AS dur,
           ifNull(ttft_ms, 0) AS first_ms,
           ifNull(output_tokens, 0) > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms AS generating
    FROM ${DB}.spans
)
GROUP BY bucket, user;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}.spans_user_1d_mv ${ON_CLUSTER} TO ${DB}.spans_user_1d AS
SELECT
    toStartOfDay(hour) AS bucket,
    user,
    sum(h_requests) AS requests,
    sum(h_errors) AS errors,
    sum(h_rate_limited) AS rate_limited,
    sum(h_unpriced) AS unpriced_requests,
    sum(h_no_usage) AS no_usage_requests,
    sum(h_streams) AS streams,
    sum(h_input) AS input_tokens,
    sum(h_output) AS output_tokens,
    sum(h_cached) AS cached_input_tokens,
    sum(h_write) AS cache_write_tokens,
    sum(h_reasoning) AS reasoning_tokens,
    sum(h_cost) AS cost_usd,
    sum(h_duration) AS duration_ms_sum,
    sum(h_gen_output) AS gen_output_tokens,
    sum(h_gen_ms) AS gen_ms_sum
FROM (
    -- Source columns under names the outer aliases do not shadow.
    SELECT bucket AS hour, user,
           requests AS h_requests, errors AS h_errors, rate_limited AS h_rate_limited,
           unpriced_requests AS h_unpriced, no_usage_requests AS h_no_usage, streams AS h_streams, input_tokens AS h_input, output_tokens AS h_output,
           cached_input_tokens AS h_cached, cache_write_tokens AS h_write, reasoning_tokens AS h_reasoning,
           cost_usd AS h_cost, duration_ms_sum AS h_duration, gen_output_tokens AS h_gen_output,
           gen_ms_sum AS h_gen_ms
    FROM ${DB}.spans_user_1h
)
GROUP BY bucket, user;

-- tollgate:single-server-only (on a cluster each shard's spans are local:
-- backfill there with this statement on every shard, by hand)
-- The raw spans already stored (the daily rows follow through the cascade).
-- A single server takes no inserts while Tollgate migrates at start-up, so no
-- row is both here and in the view; buckets older than the raw retention get
-- no per-user rows.
INSERT INTO ${DB}.spans_user_1h
SELECT
    toStartOfHour(started_at) AS b, user,
    count(), countIf(error_type != 'none'), countIf(error_type = 'rate_limited'),
    countIf(cost_status = 'unpriced'), countIf(cost_status = 'no_usage'),
    countIf(stream), sum(ifNull(input_tokens, 0)), sum(ifNull(output_tokens, 0)),
    sum(ifNull(cached_input_tokens, 0)), sum(ifNull(cache_write_tokens, 0)), sum(ifNull(reasoning_tokens, 0)),
    sum(ifNull(cost_usd, 0)), sum(duration_ms),
    sumIf(ifNull(output_tokens, 0), ifNull(output_tokens, 0) > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms),
    sumIf(duration_ms - ifNull(ttft_ms, 0), ifNull(output_tokens, 0) > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms)
FROM ${DB}.spans
GROUP BY b, user;

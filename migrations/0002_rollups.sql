-- Rollups per minute and per hour, fed by materialized views on every insert
-- into spans. Dashboards over days read these, never the raw table. Sums are
-- SimpleAggregateFunction (read with sum()); latency and TTFT keep t-digest
-- states (read with quantilesTDigestMerge). Null TTFT (no content) is skipped
-- by the aggregate, as it should be.
CREATE TABLE IF NOT EXISTS ${DB}.spans_1m ${ON_CLUSTER}
(
    bucket              DateTime('UTC'),
    provider            LowCardinality(String),
    model               LowCardinality(String),
    endpoint            LowCardinality(String),
    app                 LowCardinality(String),
    error_type          LowCardinality(String),
    status_code         UInt16,
    cost_status         LowCardinality(String),
    requests            SimpleAggregateFunction(sum, UInt64),
    streams             SimpleAggregateFunction(sum, UInt64),
    input_tokens        SimpleAggregateFunction(sum, UInt64),
    output_tokens       SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens  SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens    SimpleAggregateFunction(sum, UInt64),
    cost_usd            SimpleAggregateFunction(sum, Float64),
    duration_ms_sum     SimpleAggregateFunction(sum, Float64),
    -- Output tokens and generation time (after the first token) of calls that
    -- have both, for tokens per second.
    gen_output_tokens   SimpleAggregateFunction(sum, UInt64),
    gen_ms_sum          SimpleAggregateFunction(sum, Float64),
    duration_q          AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float64),
    ttft_q              AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(Float64))
)
ENGINE = ${ENGINE:AggregatingMergeTree}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, provider, model, endpoint, app, error_type, status_code, cost_status)
TTL bucket + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS ${DB}.spans_1h ${ON_CLUSTER} AS ${DB}.spans_1m
ENGINE = ${ENGINE:AggregatingMergeTree}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, provider, model, endpoint, app, error_type, status_code, cost_status)
TTL bucket + INTERVAL 800 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}.spans_1m_mv ${ON_CLUSTER} TO ${DB}.spans_1m AS
SELECT
    toStartOfMinute(at) AS bucket,
    provider, model, endpoint, app, error_type, status_code, cost_status,
    count() AS requests,
    countIf(is_stream) AS streams,
    sum(in_t) AS input_tokens,
    sum(out_t) AS output_tokens,
    sum(cached_t) AS cached_input_tokens,
    sum(write_t) AS cache_write_tokens,
    sum(reason_t) AS reasoning_tokens,
    sum(cost) AS cost_usd,
    sum(dur) AS duration_ms_sum,
    sumIf(out_t, generating) AS gen_output_tokens,
    sumIf(dur - first_ms, generating) AS gen_ms_sum,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(dur) AS duration_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft) AS ttft_q
FROM (
    -- Source columns under names the outer aliases do not shadow.
    SELECT started_at AS at, provider, model, endpoint, app, error_type, status_code, cost_status,
           stream AS is_stream, ifNull(input_tokens, 0) AS in_t, ifNull(output_tokens, 0) AS out_t,
           ifNull(cached_input_tokens, 0) AS cached_t, ifNull(cache_write_tokens, 0) AS write_t,
           ifNull(reasoning_tokens, 0) AS reason_t, ifNull(cost_usd, 0) AS cost, duration_ms AS dur,
           ttft_ms AS ttft, ifNull(ttft_ms, 0) AS first_ms,
           ifNull(output_tokens, 0) > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms AS generating
    FROM ${DB}.spans
)
GROUP BY bucket, provider, model, endpoint, app, error_type, status_code, cost_status;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}.spans_1h_mv ${ON_CLUSTER} TO ${DB}.spans_1h AS
SELECT
    toStartOfHour(at) AS bucket,
    provider, model, endpoint, app, error_type, status_code, cost_status,
    count() AS requests,
    countIf(is_stream) AS streams,
    sum(in_t) AS input_tokens,
    sum(out_t) AS output_tokens,
    sum(cached_t) AS cached_input_tokens,
    sum(write_t) AS cache_write_tokens,
    sum(reason_t) AS reasoning_tokens,
    sum(cost) AS cost_usd,
    sum(dur) AS duration_ms_sum,
    sumIf(out_t, generating) AS gen_output_tokens,
    sumIf(dur - first_ms, generating) AS gen_ms_sum,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(dur) AS duration_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft) AS ttft_q
FROM (
    -- Source columns under names the outer aliases do not shadow.
    SELECT started_at AS at, provider, model, endpoint, app, error_type, status_code, cost_status,
           stream AS is_stream, ifNull(input_tokens, 0) AS in_t, ifNull(output_tokens, 0) AS out_t,
           ifNull(cached_input_tokens, 0) AS cached_t, ifNull(cache_write_tokens, 0) AS write_t,
           ifNull(reasoning_tokens, 0) AS reason_t, ifNull(cost_usd, 0) AS cost, duration_ms AS dur,
           ttft_ms AS ttft, ifNull(ttft_ms, 0) AS first_ms,
           ifNull(output_tokens, 0) > 0 AND ttft_ms IS NOT NULL AND duration_ms > ttft_ms AS generating
    FROM ${DB}.spans
)
GROUP BY bucket, provider, model, endpoint, app, error_type, status_code, cost_status;

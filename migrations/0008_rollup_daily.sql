-- A daily rollup: a 30-day summary then merges ~30 days of t-digest states
-- instead of ~720 hours' worth (the hourly merge was most of its time on 10 M
-- spans). Same columns and key as the minute and hour rollups.
CREATE TABLE IF NOT EXISTS ${DB}.spans_1d ${ON_CLUSTER} AS ${DB}.spans_1m
ENGINE = ${ENGINE:AggregatingMergeTree}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, provider, model, endpoint, app, error_type, status_code, cost_status)
TTL bucket + INTERVAL 800 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}.spans_1d_mv ${ON_CLUSTER} TO ${DB}.spans_1d AS
SELECT
    toStartOfDay(at) AS bucket,
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

-- tollgate:single-server-only (on a cluster each shard's hourly rows are local:
-- backfill there with this statement on every shard, by hand)
-- Days already in the hourly rollup, up to the hour this migration runs in
-- (rows of that hour inserted before the view existed are the only ones the
-- daily rollup can miss, and only on a store taking writes while it upgrades).
INSERT INTO ${DB}.spans_1d
SELECT
    toStartOfDay(bucket) AS day,
    provider, model, endpoint, app, error_type, status_code, cost_status,
    sum(requests), sum(streams), sum(input_tokens), sum(output_tokens), sum(cached_input_tokens),
    sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_usd), sum(duration_ms_sum),
    sum(gen_output_tokens), sum(gen_ms_sum),
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(duration_q),
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_q)
FROM ${DB}.spans_1h
WHERE bucket < toStartOfHour(now())
GROUP BY day, provider, model, endpoint, app, error_type, status_code, cost_status;

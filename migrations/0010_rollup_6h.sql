-- A six-hour rollup for month-long charts: /api/timeseries picks a 6 h step
-- for 30 days, and merging every hour's t-digest states for it was ~470 ms on
-- 10 M spans (one thread); six-hour rows make that merge about six times
-- smaller. Its view reads the hourly rollup's insert blocks, not raw spans
-- (a cascade: ClickHouse runs a table's views on what other views write into
-- it), so it adds next to nothing to the cost of an insert.
CREATE TABLE IF NOT EXISTS ${DB}.spans_6h ${ON_CLUSTER} AS ${DB}.spans_1m
ENGINE = ${ENGINE:AggregatingMergeTree}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, provider, model, endpoint, app, error_type, status_code, cost_status)
TTL bucket + INTERVAL 800 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}.spans_6h_mv ${ON_CLUSTER} TO ${DB}.spans_6h AS
SELECT
    toStartOfInterval(hour, INTERVAL 6 HOUR) AS bucket,
    provider, model, endpoint, app, error_type, status_code, cost_status,
    sum(h_requests) AS requests,
    sum(h_streams) AS streams,
    sum(h_input) AS input_tokens,
    sum(h_output) AS output_tokens,
    sum(h_cached) AS cached_input_tokens,
    sum(h_write) AS cache_write_tokens,
    sum(h_reasoning) AS reasoning_tokens,
    sum(h_cost) AS cost_usd,
    sum(h_duration) AS duration_ms_sum,
    sum(h_gen_output) AS gen_output_tokens,
    sum(h_gen_ms) AS gen_ms_sum,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(h_duration_q) AS duration_q,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(h_ttft_q) AS ttft_q
FROM (
    -- Source columns under names the outer aliases do not shadow.
    SELECT bucket AS hour, provider, model, endpoint, app, error_type, status_code, cost_status,
           requests AS h_requests, streams AS h_streams, input_tokens AS h_input, output_tokens AS h_output,
           cached_input_tokens AS h_cached, cache_write_tokens AS h_write, reasoning_tokens AS h_reasoning,
           cost_usd AS h_cost, duration_ms_sum AS h_duration, gen_output_tokens AS h_gen_output,
           gen_ms_sum AS h_gen_ms, duration_q AS h_duration_q, ttft_q AS h_ttft_q
    FROM ${DB}.spans_1h
)
GROUP BY bucket, provider, model, endpoint, app, error_type, status_code, cost_status;

-- tollgate:single-server-only (on a cluster each shard's hourly rows are local:
-- backfill there with this statement on every shard, by hand)
-- Hours already in the hourly rollup, up to the hour this migration runs in
-- (only rows of that hour inserted before the view existed can be missed).
INSERT INTO ${DB}.spans_6h
SELECT
    toStartOfInterval(bucket, INTERVAL 6 HOUR) AS six,
    provider, model, endpoint, app, error_type, status_code, cost_status,
    sum(requests), sum(streams), sum(input_tokens), sum(output_tokens), sum(cached_input_tokens),
    sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_usd), sum(duration_ms_sum),
    sum(gen_output_tokens), sum(gen_ms_sum),
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(duration_q),
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_q)
FROM ${DB}.spans_1h
WHERE bucket < toStartOfHour(now())
GROUP BY six, provider, model, endpoint, app, error_type, status_code, cost_status;

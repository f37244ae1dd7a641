-- Raw spans: one row per upstream LLM call. Plain MergeTree: duplicates are
-- kept out before insert (spool positions as insert_deduplication_token, a
-- span_id check on replay, batch ids from proxies), so rollups stay exact and
-- no query needs FINAL.
CREATE TABLE IF NOT EXISTS ${DB}.spans ${ON_CLUSTER}
(
    span_id             UUID,
    started_at          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    ended_at            DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    mode                LowCardinality(String),
    provider            LowCardinality(String),
    endpoint            LowCardinality(String),
    request_model       LowCardinality(Nullable(String)),
    response_model      LowCardinality(Nullable(String)),
    -- The one model a span counts under (collector/schema.ts spanModel).
    model               LowCardinality(String) MATERIALIZED coalesce(response_model, request_model, ''),
    stream              Bool,
    status_code         UInt16,
    error_type          LowCardinality(String),
    duration_ms         Float64 CODEC(ZSTD(1)),
    ttft_ms             Nullable(Float64) CODEC(ZSTD(1)),
    input_tokens        Nullable(UInt32) CODEC(ZSTD(1)),
    output_tokens       Nullable(UInt32) CODEC(ZSTD(1)),
    cached_input_tokens Nullable(UInt32) CODEC(ZSTD(1)),
    cache_write_tokens  Nullable(UInt32) CODEC(ZSTD(1)),
    reasoning_tokens    Nullable(UInt32) CODEC(ZSTD(1)),
    cost_usd            Nullable(Float64) CODEC(ZSTD(1)),
    cost_status         LowCardinality(String),
    finish_reason       LowCardinality(Nullable(String)),
    -- '' stands for "not attributed": bloom filters index plain strings best.
    user                String CODEC(ZSTD(1)),
    session             String CODEC(ZSTD(1)),
    app                 LowCardinality(String),
    properties          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    request_bytes       UInt64 CODEC(T64, ZSTD(1)),
    response_bytes      UInt64 CODEC(T64, ZSTD(1)),
    client_addr         LowCardinality(String),
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),

    INDEX idx_span_id   span_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_user      user TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session   session TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_prop_keys mapKeys(properties) TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_prop_vals mapValues(properties) TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_duration  duration_ms TYPE minmax GRANULARITY 4
)
ENGINE = ${ENGINE:MergeTree}
PARTITION BY toYYYYMM(started_at)
ORDER BY (toStartOfHour(started_at), provider, model, started_at)
TTL toDateTime(started_at) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- Hashes of each request body and of its reusable prefix (model, system,
-- tools, earlier messages), so caching advice can find repeats without
-- storing a single prompt. '' / 0 = not known (older senders, OTLP).
ALTER TABLE ${DB}.spans ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS request_hash String DEFAULT '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS prefix_hash String DEFAULT '' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS prefix_bytes UInt32 DEFAULT 0 CODEC(T64, ZSTD(1)),
    ADD INDEX IF NOT EXISTS idx_prefix_hash prefix_hash TYPE bloom_filter(0.01) GRANULARITY 4;

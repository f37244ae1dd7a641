-- Captured bodies (TOLLGATE_CAPTURE_BODIES=errors|all), capped and redacted by
-- the proxy. Columns of the raw table, so they travel through the same spool
-- and dedup as the span itself; columnar storage keeps them out of every
-- aggregate's way, ZSTD(3) keeps them small, and a column TTL empties them
-- after 7 days while the span stays for the table's full retention.
ALTER TABLE ${DB}.spans ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS request_body String DEFAULT '' CODEC(ZSTD(3)) TTL toDateTime(started_at) + INTERVAL 7 DAY,
    ADD COLUMN IF NOT EXISTS response_body String DEFAULT '' CODEC(ZSTD(3)) TTL toDateTime(started_at) + INTERVAL 7 DAY;

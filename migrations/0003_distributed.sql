-- tollgate:cluster-only
-- In cluster mode writes go through spans_dist (sharded by span_id, so a
-- replayed span lands on the same shard) and reads through the *_dist tables.
-- The rollup views above run on each shard's local spans table.
CREATE TABLE IF NOT EXISTS ${DB}.spans_dist ${ON_CLUSTER} AS ${DB}.spans
ENGINE = Distributed(${CLUSTER}, ${DB}, spans, cityHash64(span_id));

CREATE TABLE IF NOT EXISTS ${DB}.spans_1m_dist ${ON_CLUSTER} AS ${DB}.spans_1m
ENGINE = Distributed(${CLUSTER}, ${DB}, spans_1m);

CREATE TABLE IF NOT EXISTS ${DB}.spans_1h_dist ${ON_CLUSTER} AS ${DB}.spans_1h
ENGINE = Distributed(${CLUSTER}, ${DB}, spans_1h);

-- tollgate:cluster-only
-- Reads of the six-hour rollup go through its Distributed table, like the others.
CREATE TABLE IF NOT EXISTS ${DB}.spans_6h_dist ${ON_CLUSTER} AS ${DB}.spans_6h
ENGINE = Distributed(${CLUSTER}, ${DB}, spans_6h);

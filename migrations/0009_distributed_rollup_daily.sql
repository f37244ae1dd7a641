-- tollgate:cluster-only
-- Reads of the daily rollup go through its Distributed table, like the others.
CREATE TABLE IF NOT EXISTS ${DB}.spans_1d_dist ${ON_CLUSTER} AS ${DB}.spans_1d
ENGINE = Distributed(${CLUSTER}, ${DB}, spans_1d);

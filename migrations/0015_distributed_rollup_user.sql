-- tollgate:cluster-only
-- Reads of the per-user rollups go through Distributed tables, like the others.
CREATE TABLE IF NOT EXISTS ${DB}.spans_user_1h_dist ${ON_CLUSTER} AS ${DB}.spans_user_1h
ENGINE = Distributed(${CLUSTER}, ${DB}, spans_user_1h);

CREATE TABLE IF NOT EXISTS ${DB}.spans_user_1d_dist ${ON_CLUSTER} AS ${DB}.spans_user_1d
ENGINE = Distributed(${CLUSTER}, ${DB}, spans_user_1d);

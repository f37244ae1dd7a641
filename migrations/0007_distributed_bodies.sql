-- tollgate:cluster-only
-- The Distributed table mirrors the body columns 0006 added to the shards' tables.
ALTER TABLE ${DB}.spans_dist ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS request_body String DEFAULT '',
    ADD COLUMN IF NOT EXISTS response_body String DEFAULT '';

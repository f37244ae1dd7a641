-- tollgate:cluster-only
-- The Distributed table mirrors the columns 0004 added to the shards' tables.
ALTER TABLE ${DB}.spans_dist ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS request_hash String DEFAULT '',
    ADD COLUMN IF NOT EXISTS prefix_hash String DEFAULT '',
    ADD COLUMN IF NOT EXISTS prefix_bytes UInt32 DEFAULT 0;

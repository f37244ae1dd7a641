-- tollgate:cluster-only
-- The Distributed tables over the rollups carry the new quantile columns too.
ALTER TABLE ${DB}.spans_1m_dist ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS duration_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Float64),
    ADD COLUMN IF NOT EXISTS ttft_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Nullable(Float64));

ALTER TABLE ${DB}.spans_1h_dist ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS duration_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Float64),
    ADD COLUMN IF NOT EXISTS ttft_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Nullable(Float64));

ALTER TABLE ${DB}.spans_6h_dist ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS duration_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Float64),
    ADD COLUMN IF NOT EXISTS ttft_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Nullable(Float64));

ALTER TABLE ${DB}.spans_1d_dist ${ON_CLUSTER}
    ADD COLUMN IF NOT EXISTS duration_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Float64),
    ADD COLUMN IF NOT EXISTS ttft_bf AggregateFunction(quantilesBFloat16(0.5, 0.9, 0.95, 0.99), Nullable(Float64));

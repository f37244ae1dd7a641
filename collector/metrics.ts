/**
 * The collector's own health as Prometheus metrics (GET :8081/metrics): queue,
 * spool, batches, and what happened to every span received.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { BatcherMetrics } from './batcher.ts'

/** What the budget tracker (collector/budgets.ts) reports; labels are config names only, so series stay bounded. */
export interface BudgetMetrics {
  /** A configured budget: its limit, and its spend once known (null before the first successful query). */
  budget(name: string, period: string, limitUsd: number, spentUsd: number | null): void
  /** Creates the failure counter at 0, so increase() sees its first failure. */
  declareWebhook(name: string): void
  webhookFailed(name: string): void
  refreshFailed(): void
}

export interface CollectorMetrics extends Required<BatcherMetrics> {
  readonly registry: Registry
  readonly budgets: BudgetMetrics
  received(source: 'in_process' | 'http' | 'otlp', n: number): void
  rejected(source: 'http' | 'otlp', n: number): void
  duplicates(n: number): void
}

export function createCollectorMetrics(options: { defaultMetrics?: boolean } = {}): CollectorMetrics {
  const registry = new Registry()
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tollgate_collector_process_' })
  const registers = [registry]
  const queueRows = new Gauge({ name: 'tollgate_collector_queue_rows', help: 'Spans waiting in memory for insert.', registers })
  const spoolBytes = new Gauge({ name: 'tollgate_collector_spool_bytes', help: 'Bytes in the disk spool not yet known to be in ClickHouse.', registers })
  const batchRows = new Histogram({
    name: 'tollgate_collector_batch_rows',
    help: 'Spans per ClickHouse insert.',
    buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000],
    registers,
  })
  const flushSeconds = new Histogram({
    name: 'tollgate_collector_flush_seconds',
    help: 'Duration of one ClickHouse insert.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  })
  const written = new Counter({ name: 'tollgate_collector_spans_written_total', help: 'Spans inserted into ClickHouse.', registers })
  const replayed = new Counter({ name: 'tollgate_collector_spans_replayed_total', help: 'Spans replayed from the spool after a restart.', registers })
  const failures = new Counter({ name: 'tollgate_collector_insert_failures_total', help: 'Failed or timed-out inserts (the spans stay spooled).', registers })
  const dropped = new Counter({ name: 'tollgate_collector_spans_dropped_total', help: 'Spans the collector could not keep, by reason.', labelNames: ['reason'], registers })
  const received = new Counter({ name: 'tollgate_collector_spans_received_total', help: 'Spans received, by source.', labelNames: ['source'], registers })
  const rejected = new Counter({ name: 'tollgate_collector_spans_rejected_total', help: 'Spans rejected as malformed, by source.', labelNames: ['source'], registers })
  const duplicates = new Counter({ name: 'tollgate_collector_spans_duplicate_total', help: 'Spans or batches received again and ignored (retries).', registers })
  const budgetLabels = ['budget', 'period']
  const budgetLimit = new Gauge({ name: 'tollgate_budget_limit_usd', help: 'Configured spend limit of a budget for its period (UTC day or month).', labelNames: budgetLabels, registers })
  const budgetSpent = new Gauge({ name: 'tollgate_budget_spent_usd', help: 'Spend within the budget scope since the start of the current period.', labelNames: budgetLabels, registers })
  const budgetRemaining = new Gauge({ name: 'tollgate_budget_remaining_usd', help: 'Limit minus spend, floored at 0.', labelNames: budgetLabels, registers })
  const webhookFailures = new Counter({ name: 'tollgate_budget_webhook_failures_total', help: 'Budget webhook notifications not delivered after every retry.', labelNames: ['budget'], registers })
  const budgetRefreshFailures = new Counter({ name: 'tollgate_budget_refresh_failures_total', help: 'Budget spend queries that failed (gauges keep their last value).', registers })

  return {
    registry,
    queueRows: (n) => queueRows.set(n),
    spoolBytes: (n) => spoolBytes.set(n),
    batchInserted(rows, seconds) {
      batchRows.observe(rows)
      flushSeconds.observe(seconds)
      written.inc(rows)
    },
    insertFailed: () => failures.inc(),
    rowsReplayed: (n) => replayed.inc(n),
    rowsDropped: (reason, n) => dropped.inc({ reason }, n),
    received: (source, n) => received.inc({ source }, n),
    rejected: (source, n) => rejected.inc({ source }, n),
    duplicates: (n) => duplicates.inc(n),
    budgets: {
      budget(name, period, limitUsd, spentUsd) {
        const labels = { budget: name, period }
        budgetLimit.set(labels, limitUsd)
        if (spentUsd === null) return
        budgetSpent.set(labels, spentUsd)
        budgetRemaining.set(labels, Math.max(0, limitUsd - spentUsd))
      },
      declareWebhook: (name) => webhookFailures.inc({ budget: name }, 0),
      webhookFailed: (name) => webhookFailures.inc({ budget: name }),
      refreshFailed: () => budgetRefreshFailures.inc(),
    },
  }
}

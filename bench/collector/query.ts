/**
 * Query benchmark: a standalone collector on the cached data set
 * (load-10m.ts), and every API call the dashboard makes, timed one at a time
 * (no queueing: each request starts when the previous one has answered), 30+
 * times after a warm-up, over a 30-day and a 24-hour window ending where the
 * data ends. Calls run round-robin, the order reversed every other round, so
 * drift hits all alike. Also the Overview page as the dashboard loads it: its
 * four calls at once (dashboard/src/lib/loaders.ts loadOverview: two
 * summaries, spend by model, and its seven ungrouped series in one call),
 * timed until the last answer.
 *
 * Reported per call: p50 / p95 / max ms and PASS/FAIL of p95 ≤ 300 ms, plus
 * the collector's RSS (after start, peak while querying, at the end).
 */
import { DAY_MS, type DatasetMeta } from './load-10m.ts'
import { RssSampler, cpuSeconds, diffThreads, dist, getJson, log, round, sleep, startCollectorProcess, threadCpu, type Dist } from './common.ts'
import { SpanGenerator } from './spans.ts'

export const TARGET_P95_MS = 300
/** dashboard/src/lib/loaders.ts OVERVIEW_METRICS, in one /api/timeseries call. */
const OVERVIEW_METRICS = 'requests,errors,latency_p50,latency_p95,latency_p99,ttft_p50,ttft_p95'

export interface Window {
  label: '30d' | '24h'
  from: number
  to: number
}

export interface QueryCall {
  /** e.g. `summary group_by=model`. */
  name: string
  window: Window['label']
  /** Which issue target judges it (the dashboard's Overview calls, the summary/timeseries target, or information only). */
  target: 'issue' | 'overview' | 'info'
  url: string
}

export interface CallResult extends Dist {
  name: string
  window: Window['label']
  target: QueryCall['target']
  pass: boolean
  /** Bytes of the JSON answer. */
  bytes: number
}

export interface QueryRun {
  threads: number
  launcher: 'cli' | 'bench'
  startupS: number
  rssAfterStartMiB: number
  rssPeakMiB: number
  rssEndMiB: number
  calls: CallResult[]
  overview: { window: Window['label']; p50: number; p95: number; max: number; n: number; pass: boolean }[]
  /** Collector CPU seconds by thread over the timed rounds. */
  threadsCpu: Record<string, number>
  collectorCpuS: number
  wallS: number
}

function qs(params: Record<string, string | number>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
    .join('&')
}

/** The calls, for both windows. */
export function buildCalls(base: string, meta: DatasetMeta): { calls: QueryCall[]; overview: Record<Window['label'], string[]> } {
  const windows: Window[] = [
    { label: '30d', from: meta.toMs - 30 * DAY_MS, to: meta.toMs },
    { label: '24h', from: meta.toMs - DAY_MS, to: meta.toMs },
  ]
  const heavyUser = new SpanGenerator().heavyUser()
  const calls: QueryCall[] = []
  const overview: Record<Window['label'], string[]> = { '30d': [], '24h': [] }
  for (const w of windows) {
    const range = { from: w.from, to: w.to }
    const previous = { from: w.from - (w.to - w.from), to: w.from }
    const add = (name: string, target: QueryCall['target'], path: string, params: Record<string, string | number>, inOverview = false): void => {
      const url = `${base}${path}?${qs(params)}`
      calls.push({ name, window: w.label, target, url })
      if (inOverview) overview[w.label].push(url)
    }
    add('summary', 'issue', '/api/summary', range, true)
    add('summary (previous period)', 'overview', '/api/summary', previous, true)
    add('summary group_by=model', 'issue', '/api/summary', { ...range, group_by: 'model' })
    // Per-user rollups (migration 0014); every user with latency sketches, then the Spend page's two calls.
    add('summary group_by=user (all users)', 'issue', '/api/summary', { ...range, group_by: 'user' })
    add('summary group_by=user limit=20 (Spend: top users)', 'issue', '/api/summary', { ...range, group_by: 'user', limit: 20 })
    add('summary group_by=user limit=100 (Spend: split by user)', 'issue', '/api/summary', { ...range, group_by: 'user', limit: 100 })
    add('timeseries cost_usd by user (Spend: split by user)', 'issue', '/api/timeseries', { ...range, metric: 'cost_usd', group_by: 'user' })
    add('timeseries requests', 'issue', '/api/timeseries', { ...range, metric: 'requests' })
    add('timeseries errors', 'issue', '/api/timeseries', { ...range, metric: 'errors' })
    add('timeseries requests by error_type', 'issue', '/api/timeseries', { ...range, metric: 'requests', group_by: 'error_type' })
    add('timeseries cost_usd by model', 'issue', '/api/timeseries', { ...range, metric: 'cost_usd', group_by: 'model' }, true)
    add('timeseries latency_p50', 'issue', '/api/timeseries', { ...range, metric: 'latency_p50' })
    add('timeseries latency_p95', 'issue', '/api/timeseries', { ...range, metric: 'latency_p95' })
    add('timeseries latency_p99', 'issue', '/api/timeseries', { ...range, metric: 'latency_p99' })
    add('timeseries ttft_p50', 'issue', '/api/timeseries', { ...range, metric: 'ttft_p50' })
    add('timeseries ttft_p95', 'issue', '/api/timeseries', { ...range, metric: 'ttft_p95' })
    // The Overview's ungrouped charts, as loadOverview asks for them: one call.
    add('timeseries 7 metrics (Overview)', 'overview', '/api/timeseries', { ...range, metric: OVERVIEW_METRICS }, true)
    add('spans first page (50)', 'info', '/api/spans', { ...range, limit: 50 })
    add('spans status=error&model=gpt-4o', 'info', '/api/spans', { ...range, limit: 50, status: 'error', model: 'gpt-4o-2024-08-06' })
    add('spans user=<heavy user>', 'info', '/api/spans', { ...range, limit: 50, user: heavyUser })
  }
  return { calls, overview }
}

export interface QueryOptions {
  dataDir: string
  meta: DatasetMeta
  /** 1: the product's default (the CLI); 2: the bench launcher with max_threads=2. */
  threads: number
  reps: number
  warmup: number
  /** A call stops being repeated once its timed runs add up to this (slow raw scans). */
  budgetPerCallS: number
}

export async function runQueries(o: QueryOptions): Promise<QueryRun> {
  const launcher = o.threads === 1 ? 'cli' : 'bench'
  const startedAt = performance.now()
  const collector = await startCollectorProcess({
    dataDir: o.dataDir,
    launcher,
    queryMaxThreads: launcher === 'bench' ? o.threads : undefined,
    name: `collector (queries, ${o.threads} thread${o.threads > 1 ? 's' : ''})`,
  })
  const startupS = (performance.now() - startedAt) / 1000
  const rss = new RssSampler(collector.pid, 100).start()
  try {
    await sleep(1000)
    const rssAfterStartMiB = rss.sample()
    const { calls, overview } = buildCalls(collector.url, o.meta)
    const samples = new Map<QueryCall, number[]>(calls.map((c) => [c, []]))
    const spent = new Map<QueryCall, number>(calls.map((c) => [c, 0]))
    const bytes = new Map<QueryCall, number>()

    log(`queries (${o.threads} thread${o.threads > 1 ? 's' : ''}): warm-up, ${o.warmup}× each of ${calls.length} calls`)
    for (let r = 0; r < o.warmup; r++) {
      for (const c of calls) {
        const res = await getJson<unknown>(c.url)
        bytes.set(c, JSON.stringify(res.value).length)
      }
    }
    const cpu0 = cpuSeconds(collector.pid)
    const threads0 = threadCpu(collector.pid)
    const t0 = performance.now()
    for (let r = 0; r < o.reps; r++) {
      const order = r % 2 === 0 ? calls : [...calls].reverse()
      for (const c of order) {
        if ((spent.get(c) ?? 0) > o.budgetPerCallS * 1000 && (samples.get(c)?.length ?? 0) >= 5) continue
        const { ms } = await getJson<unknown>(c.url)
        samples.get(c)?.push(ms)
        spent.set(c, (spent.get(c) ?? 0) + ms)
      }
      if (r % 10 === 9) log(`queries (${o.threads} thread${o.threads > 1 ? 's' : ''}): round ${r + 1}/${o.reps}`)
    }
    // The Overview page: its calls at once, as loadOverview sends them.
    const overviewResults: QueryRun['overview'] = []
    for (const label of ['30d', '24h'] as const) {
      const urls = overview[label]
      const times: number[] = []
      for (let r = 0; r < o.reps; r++) {
        const t = performance.now()
        await Promise.all(urls.map((u) => getJson<unknown>(u)))
        times.push(performance.now() - t)
      }
      const d = dist(times)
      overviewResults.push({ window: label, p50: d.p50, p95: d.p95, max: d.max, n: d.n, pass: d.p95 <= TARGET_P95_MS })
    }
    const wallS = (performance.now() - t0) / 1000
    const collectorCpuS = cpuSeconds(collector.pid) - cpu0
    const threadsCpu = diffThreads(threads0, threadCpu(collector.pid))
    return {
      threads: o.threads,
      launcher,
      startupS: round(startupS, 1),
      rssAfterStartMiB,
      rssPeakMiB: rss.peak(),
      rssEndMiB: rss.sample(),
      calls: calls.map((c) => {
        const d = dist(samples.get(c) ?? [])
        return { name: c.name, window: c.window, target: c.target, ...d, pass: d.p95 <= TARGET_P95_MS, bytes: bytes.get(c) ?? 0 }
      }),
      overview: overviewResults,
      threadsCpu,
      collectorCpuS: round(collectorCpuS, 1),
      wallS: round(wallS, 1),
    }
  } finally {
    rss.stop()
    await collector.stop(60_000)
  }
}

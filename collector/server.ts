/**
 * The collector (port 8081): span ingest (in-process, POST /v1/spans, OTLP
 * POST /v1/traces), the durable batcher into ClickHouse, the query API,
 * /metrics and /healthz.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { LRUCache } from 'lru-cache'
import { TollgateError, errorCode } from '../lib/errors.ts'
import { formatHostPort, sendError, sendJson } from '../lib/http.ts'
import type { Logger } from '../lib/log.ts'
import { createPricer, type PriceOverride } from '../lib/price.ts'
import { recommendationThresholdsSchema, type RecommendationThresholds } from '../lib/config.ts'
import { QUERY_SLOTS_HEADER } from './api/shapes.ts'
import { parseRecommendationsQuery, parseSpansQuery, parseSummaryQuery, parseTimeseriesQuery } from './api/params.ts'
import { createBudgetTracker, type BudgetConfig, type BudgetTracker } from './budgets.ts'
import { createBatcher, type Batcher } from './batcher.ts'
import { createCollectorMetrics, type CollectorMetrics } from './metrics.ts'
import { otlpTracesToSpans } from './otlp.ts'
import { autoStep, getSpan, listSpans, summary, timeseries, type QueryContext, type SummaryRow } from './queries.ts'
import type { Span } from './schema.ts'
import { createPriceBook, recommend } from './recommendations/index.ts'
import { openSpool } from './spool.ts'
import { createStaticSite } from './static.ts'
import { openStore, spanToRow, type SpanStore } from './store.ts'
import { validateSpanBatch } from './validate.ts'

export interface CollectorOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  dataDir: string
  clickhouseUrl?: string | undefined
  clickhouseCluster?: string | undefined
  /** Database name (default 'tollgate', or the URL's path). */
  database?: string | undefined
  /** See StoreOptions.chdbPath. */
  chdbPath?: string | undefined
  retentionDays?: number | undefined
  priceOverrides?: Readonly<Record<string, PriceOverride>> | undefined
  /** Thresholds of GET /api/recommendations (config `recommendations`); defaults when unset. */
  recommendations?: RecommendationThresholds | undefined
  /** Batcher tuning; defaults from collector/batcher.ts. */
  batch?: { maxBatchRows?: number; flushIntervalMs?: number; maxQueueRows?: number } | undefined
  /** Largest request body accepted on /v1/spans and /v1/traces. @default 32 MiB */
  maxBodyBytes?: number | undefined
  /** Spend budgets tracked into tollgate_budget_* gauges and webhooks (collector/budgets.ts). */
  budgets?: readonly BudgetConfig[] | undefined
  log: Logger
}

export interface Collector {
  readonly url: string
  readonly store: SpanStore
  readonly batcher: Batcher
  readonly metrics: CollectorMetrics
  /** Spend budgets; `refresh()` re-queries at once (tests, after seeding spans). */
  readonly budgets: BudgetTracker
  /** In-process intake for all-in-one mode: returns at once; the span is spooled in the background. */
  ingest(span: Span): void
  /** A proxy whose /healthz the dashboard's health strip should show (all-in-one sets its own). */
  watchProxy(url: string): void
  /** Stops intake, flushes everything to ClickHouse, closes the store. */
  close(): Promise<void>
}

/**
 * Queries a ClickHouse server runs at once for the dashboard (a browser's
 * connections per host); chDB runs one at a time whatever it is sent.
 */
const SERVER_QUERY_SLOTS = 6
const RECENT_SPAN_IDS = 200_000
const RECENT_BATCH_IDS = 20_000

export async function startCollector(options: CollectorOptions): Promise<Collector> {
  const { log } = options
  const metrics = createCollectorMetrics()
  const { store } = await openStore({
    url: options.clickhouseUrl,
    dataDir: options.dataDir,
    cluster: options.clickhouseCluster,
    database: options.database,
    chdbPath: options.chdbPath,
    retentionDays: options.retentionDays,
    log,
  })
  const spool = await openSpool({ dir: resolve(options.dataDir, 'spool') }).catch(async (err: unknown) => {
    await store.close()
    throw err
  })
  const rejectedDir = resolve(options.dataDir, 'rejected')
  const batcher = createBatcher({
    spool,
    sink: store,
    log,
    metrics,
    ...options.batch,
    async onRejected(text, rows) {
      await mkdir(rejectedDir, { recursive: true })
      const file = resolve(rejectedDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${rows}.jsonl`)
      await writeFile(file, text)
      log.error({ file, rows }, 'rows the store rejected were written aside for inspection')
    },
  })
  await batcher.start()

  const pricer = createPricer(options.priceOverrides ?? {})
  const priceBook = createPriceBook(options.priceOverrides ?? {})
  const thresholds = options.recommendations ?? recommendationThresholdsSchema.parse({})
  const queries: QueryContext = { client: store.client, tables: store.tables, settings: store.querySettings }
  const querySlots = store.kind === 'chdb' ? '1' : String(SERVER_QUERY_SLOTS)
  const budgets = createBudgetTracker({
    budgets: options.budgets ?? [],
    queries,
    metrics: metrics.budgets,
    stateFile: resolve(options.dataDir, 'budgets-state.json'),
    log,
  })
  // Retries from senders: a batch id seen before is acknowledged without
  // storing it twice; span ids catch retries merged into other batches.
  const recentBatchIds = new LRUCache<string, true>({ max: RECENT_BATCH_IDS })
  const recentSpanIds = new LRUCache<string, true>({ max: RECENT_SPAN_IDS })
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024
  // After a restart, a sender may retry a batch whose acknowledgement the
  // crash cut off; the newest spooled spans are the ones it could be retrying.
  for (const m of (await spool.tail(32 * 1024 * 1024)).matchAll(/^\{"span_id":"([0-9a-f-]{36})"/gm)) recentSpanIds.set(m[1]!, true)
  const dashboard = createStaticSite()

  // Spans claimed by a request whose spool write is still under way: a
  // concurrent duplicate waits for that outcome instead of storing them again.
  const pendingSpanIds = new Map<string, Promise<void>>()

  /**
   * Spools the spans not seen before; resolves once they (and any duplicates
   * still pending in another request) are durable.
   * @returns how many spans this call stored
   */
  async function accept(spans: readonly Span[]): Promise<number> {
    let text = ''
    const claimed: string[] = []
    const claimedHere = new Set<string>()
    const waits = new Set<Promise<void>>()
    let duplicates = 0
    for (const span of spans) {
      const id = span.span_id
      const pending = pendingSpanIds.get(id)
      if (pending) waits.add(pending)
      if (pending || claimedHere.has(id) || recentSpanIds.has(id)) {
        duplicates++
        continue
      }
      claimedHere.add(id)
      claimed.push(id)
      text += spanToRow(span)
    }
    if (duplicates) metrics.duplicates(duplicates)
    if (claimed.length > 0) {
      const durable = batcher.accept(text, claimed.length)
      for (const id of claimed) pendingSpanIds.set(id, durable)
      try {
        await durable
        for (const id of claimed) recentSpanIds.set(id, true)
      } finally {
        for (const id of claimed) pendingSpanIds.delete(id)
      }
    }
    // A duplicate is acknowledged only once its first copy is durable.
    await Promise.all(waits)
    return claimed.length
  }

  async function ingestHttp(req: IncomingMessage, res: ServerResponse, source: 'http' | 'otlp'): Promise<void> {
    const batchId = headerValue(req.headers['x-tollgate-batch-id'])
    const body = await readBody(req, maxBodyBytes)
    if (body === 'too_large') return sendError(res, 413, 'TG_ERR_BAD_SPAN_BATCH', `request body larger than ${maxBodyBytes} bytes`)
    if (batchId && recentBatchIds.has(batchId)) {
      metrics.duplicates(1)
      return sendJson(res, 200, { accepted: 0, duplicate_batch: true, rejected: [] })
    }
    let json: unknown
    try {
      json = JSON.parse(body.toString('utf8'))
    } catch (cause) {
      return sendError(res, 400, 'TG_ERR_BAD_SPAN_BATCH', `body is not valid JSON: ${(cause as Error).message}`)
    }
    const result = source === 'otlp' ? otlpTracesToSpans(json) : validateSpanBatch(json)
    if ('error' in result) return sendError(res, 400, 'TG_ERR_BAD_SPAN_BATCH', result.error)
    const spans = source === 'otlp' ? result.spans.map((s) => priceOtlpSpan(s)) : result.spans
    metrics.received(source, spans.length)
    if (result.rejected.length) metrics.rejected(source, result.rejected.length)
    let accepted: number
    try {
      accepted = await accept(spans)
    } catch (err) {
      if (errorCode(err) === 'TG_ERR_SPOOL_FULL') {
        res.setHeader('retry-after', '5')
        return sendError(res, 503, 'TG_ERR_SPOOL_FULL', 'the collector spool is full; retry later')
      }
      throw err
    }
    if (batchId) recentBatchIds.set(batchId, true)
    if (result.rejected.length) {
      const first = result.rejected[0]!
      return sendError(res, 400, 'TG_ERR_BAD_SPAN_BATCH', `span ${first.index}: ${first.field || '(span)'}: ${first.message}`, {
        accepted,
        rejected: result.rejected,
      })
    }
    sendJson(res, 200, { accepted, rejected: [] })
  }

  /**
   * What cached reads saved: the same cached tokens priced as fresh input,
   * minus what they cost as cache reads. Null when the model has no price.
   */
  function cacheSavings(row: SummaryRow): number | null {
    const cached = row.tokens.cached_input
    if (!row.group?.model || !row.group.provider) return null
    if (cached === 0) return 0
    const asFresh = pricer.price(row.group.provider, [row.group.model], { input_tokens: cached, output_tokens: 0, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null })
    const asCached = pricer.price(row.group.provider, [row.group.model], { input_tokens: cached, output_tokens: 0, cached_input_tokens: cached, cache_write_tokens: null, reasoning_tokens: null })
    if (asFresh.costUsd === null || asCached.costUsd === null) return null
    return Math.round((asFresh.costUsd - asCached.costUsd) * 1e9) / 1e9
  }

  /** OTLP senders report tokens, not prices: price them like proxied calls. */
  function priceOtlpSpan(span: Span): Span {
    if (span.cost_status === 'priced' || (span.input_tokens === null && span.output_tokens === null)) return span
    const cost = pricer.price(span.provider, [span.response_model, span.request_model], span)
    return { ...span, cost_usd: cost.costUsd, cost_status: cost.costStatus }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://collector')
    const method = req.method ?? 'GET'
    if (method === 'POST' && url.pathname === '/v1/spans') return ingestHttp(req, res, 'http')
    if (method === 'POST' && url.pathname === '/v1/traces') return ingestHttp(req, res, 'otlp')
    if (method === 'GET') {
      if (url.pathname.startsWith('/api/')) res.setHeader(QUERY_SLOTS_HEADER, querySlots)
      const one = /^\/api\/spans\/([0-9a-fA-F-]{36})$/.exec(url.pathname)
      if (one?.[1]) {
        const span = await getSpan(queries, one[1].toLowerCase())
        return span ? sendJson(res, 200, span) : sendError(res, 404, 'TG_ERR_NOT_FOUND', `no span ${one[1]}`)
      }
      switch (url.pathname) {
        case '/healthz':
          return health(res)
        case '/api/health':
          return sendJson(res, 200, await healthReport())
        case '/api/budgets':
          return sendJson(res, 200, budgets.status())
        case '/metrics':
          res.writeHead(200, { 'content-type': metrics.registry.contentType })
          return void res.end(await metrics.registry.metrics())
        case '/api/spans': {
          const p = parseSpansQuery(url.searchParams)
          if (!p.ok) return sendError(res, 400, 'TG_ERR_BAD_QUERY', p.message)
          return sendJson(res, 200, await listSpans(queries, p.value))
        }
        case '/api/summary': {
          const p = parseSummaryQuery(url.searchParams)
          if (!p.ok) return sendError(res, 400, 'TG_ERR_BAD_QUERY', p.message)
          const rows = await summary(queries, p.value, p.value.group_by, p.value.property_key, p.value.limit)
          if (p.value.group_by === 'model') for (const row of rows) row.cache_savings_usd = cacheSavings(row)
          return sendJson(res, 200, { from: p.value.from, to: p.value.to, group_by: p.value.group_by ?? null, rows })
        }
        case '/api/timeseries': {
          const p = parseTimeseriesQuery(url.searchParams)
          if (!p.ok) return sendError(res, 400, 'TG_ERR_BAD_QUERY', p.message)
          const step = p.value.step ?? autoStep(p.value.from, p.value.to, p.value.group_by)
          if ((p.value.to - p.value.from) / (step * 1000) > 5000) return sendError(res, 400, 'TG_ERR_BAD_QUERY', 'step: too small for the range (over 5000 points)')
          return sendJson(res, 200, await timeseries(queries, p.value, p.value.metric, step, p.value.group_by))
        }
        case '/api/recommendations': {
          const p = parseRecommendationsQuery(url.searchParams)
          if (!p.ok) return sendError(res, 400, 'TG_ERR_BAD_QUERY', p.message)
          return sendJson(res, 200, await recommend(queries, { ...p.value, prices: priceBook, thresholds, proxyUrl: watchedProxyUrl }))
        }
      }
    }
    // The dashboard: any other GET that is not an API path (collector/static.ts).
    if (await dashboard.serve(req, res, url.pathname)) return
    req.resume()
    sendError(res, 404, 'TG_ERR_NOT_FOUND', `no route for ${method} ${url.pathname}`)
  }

  let watchedProxyUrl: string | null = null

  // A ping answered in the last few seconds stands: on the embedded store a
  // fresh ping queues behind the dashboard's queries, and the health strip
  // asks on every page load.
  const PING_FRESH_MS = 5000
  let lastPing: { at: number; up: boolean } | null = null
  let pinging: Promise<boolean> | null = null
  function storeReachable(): Promise<boolean> {
    if (lastPing?.up && Date.now() - lastPing.at < PING_FRESH_MS) return Promise.resolve(true)
    pinging ??= store.ping().then((up) => {
      lastPing = { at: Date.now(), up }
      pinging = null
      return up
    })
    return pinging
  }

  /** Everything the dashboard's health strip shows, in one call. */
  async function healthReport() {
    const stats = batcher.stats()
    const storeUp = await storeReachable()
    let proxy: { url: string; up: boolean; in_flight: number | null; spans_dropped: number | null } | null = null
    if (watchedProxyUrl) {
      const body = await fetch(`${watchedProxyUrl}/healthz`, { signal: AbortSignal.timeout(1000) })
        .then((r) => (r.ok ? (r.json() as Promise<{ in_flight?: number; spans_dropped?: number }>) : null))
        .catch(() => null)
      proxy = { url: watchedProxyUrl, up: body !== null, in_flight: body?.in_flight ?? null, spans_dropped: body?.spans_dropped ?? null }
    }
    return {
      store: { kind: store.kind, reachable: storeUp, inserts_healthy: stats.storeHealthy },
      spool_bytes: stats.spoolBytes,
      queue_rows: stats.queueRows,
      dropped_spans: stats.droppedRows + (proxy?.spans_dropped ?? 0),
      proxy,
    }
  }

  async function health(res: ServerResponse): Promise<void> {
    const stats = batcher.stats()
    const storeUp = await storeReachable()
    sendJson(res, storeUp ? 200 : 503, {
      status: storeUp ? 'ok' : 'degraded',
      store: { kind: store.kind, reachable: storeUp, healthy_inserts: stats.storeHealthy },
      queue_rows: stats.queueRows,
      spool_bytes: stats.spoolBytes,
      inserted_spans: stats.insertedRows,
      replayed_spans: stats.replayedRows,
      dropped_spans: stats.droppedRows,
    })
  }

  let shuttingDown = false
  const server = http.createServer(function handleCollectorRequest(req, res) {
    // While shutting down, every answer closes its connection, so keep-alive
    // clients cannot hold the process past its grace period.
    if (shuttingDown) res.setHeader('connection', 'close')
    route(req, res).catch((err: unknown) => {
      const code = errorCode(err)
      log.error({ err: { message: (err as Error).message, code } }, 'collector request failed')
      if (res.headersSent) return void res.destroy()
      if (code === 'TG_ERR_STORE') sendError(res, 503, 'TG_ERR_STORE', 'the span store is unavailable; retry later')
      else sendError(res, 500, 'TG_ERR_PROXY_INTERNAL', 'internal collector error')
    })
  })
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    else socket.destroy()
  })
  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject)
      server.listen(options.port, options.host, () => resolveListen())
    })
  } catch (err) {
    await batcher.shutdown()
    await store.close()
    throw err
  }
  const address = server.address() as AddressInfo
  const url = formatHostPort(address.address, address.port)
  log.info({ url, store: store.kind }, 'collector listening')
  // Its first query runs in the background: budgets never hold up the start.
  await budgets.start()

  let closing: Promise<void> | null = null
  return {
    url,
    store,
    batcher,
    metrics,
    budgets,
    watchProxy(url) {
      watchedProxyUrl = url
    },
    ingest(span) {
      metrics.received('in_process', 1)
      batcher.accept(spanToRow(span), 1).catch((err: unknown) => {
        // The batcher counts its own drops (spool full, shut down); only log here.
        log.warn({ code: errorCode(err) }, 'in-process span not kept')
      })
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true
        await new Promise<void>((r) => {
          server.close(() => r())
          server.closeIdleConnections()
          // Requests still running get a few seconds; then their sockets go too.
          setTimeout(() => server.closeAllConnections(), 3000).unref()
        })
        // Before the store closes: the tracker may be mid-query.
        await budgets.close()
        await batcher.shutdown()
        await store.close()
      })()
      return closing
    },
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v
  return s && s.length <= 128 ? s : undefined
}

/** Reads a request body up to `limit` bytes; past it the rest is drained and 'too_large' returned. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) tooLarge = true
      if (!tooLarge) chunks.push(chunk)
    })
    req.on('end', () => resolveBody(tooLarge ? 'too_large' : Buffer.concat(chunks)))
    req.on('error', (err) => reject(new TollgateError('TG_ERR_BAD_SPAN_BATCH', 'request body could not be read', { cause: err })))
  })
}

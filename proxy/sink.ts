/**
 * Hands finished spans to the collector. A request never awaits it: `add` is
 * synchronous and never throws; what cannot be kept is counted, never silent.
 */
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { Span } from '../collector/schema.ts'
import { TollgateError, errorCode } from '../lib/errors.ts'
import { silentLogger, type Logger } from '../lib/log.ts'
import { SerializedSpanQueue } from './span-queue.ts'

export interface SpanSink {
  /** Takes a span; returns at once. */
  add(span: Span): void
  /** Resolves once every span added so far has been handed on. */
  flush(): Promise<void>
  close(): Promise<void>
}

export interface SpanDropCounter {
  spansDropped(reason: string, count: number): void
}

/**
 * All-in-one mode: the collector lives in this process; `accept` is its
 * synchronous intake (a bounded queue of its own).
 */
export function createInProcessSink(accept: (span: Span) => void, drops: SpanDropCounter): SpanSink {
  return {
    add(span) {
      try {
        accept(span)
      } catch {
        drops.spansDropped('collector_rejected', 1)
      }
    },
    async flush() {},
    async close() {},
  }
}

/** How a standalone proxy ships spans to its collectors; every option but `urls` and `drops` has a default. */
export interface HttpSinkOptions {
  /**
   * Collector base URLs (`http:` or `https:`); spans go to `<url>/v1/spans`.
   * Batches are spread round-robin; a failed attempt is retried on the next one.
   */
  urls: string[]
  /** Where spans that cannot be kept are counted, by reason (`queue_full`, `rejected`, `shutdown`). */
  drops: SpanDropCounter
  /** Drop episodes, outages and rejections are logged here. @default silentLogger */
  log?: Logger
  /** Spans held at most, queued plus in unacknowledged batches; past it new spans are dropped. @default 50_000 */
  maxQueueSpans?: number
  /** Spans per POST; clamped to `maxQueueSpans`. @default 1000 */
  maxBatchSpans?: number
  /** Milliseconds a partial batch waits before it is sent anyway. @default 200 */
  flushIntervalMs?: number
  /** POSTs in flight (or waiting to retry) at once. @default 2 */
  concurrency?: number
  /** Milliseconds one attempt may take, connect to last response byte, before it counts as failed. @default 10_000 */
  requestTimeoutMs?: number
  /** Milliseconds before the first retry once every URL has failed; doubles per round, with jitter. @default 200 */
  retryInitialDelayMs?: number
  /** Cap in milliseconds on the retry delay (also on a collector's `Retry-After`). @default 30_000 */
  retryMaxDelayMs?: number
  /** Milliseconds `close()` keeps delivering before it counts what is left as dropped. @default 5000 */
  closeTimeoutMs?: number
}

export interface HttpSpanSink extends SpanSink {
  /** Spans held now: queued plus in batches not yet acknowledged. For metrics and /healthz. */
  queuedSpanCount(): number
}

/** A batch as it is retried: the body is serialised once and the id never changes. */
interface PendingBatch {
  /** `x-tollgate-batch-id`: the same on every attempt so the collector can drop a replay whose first attempt landed. */
  readonly id: string
  readonly body: Buffer
  readonly spanCount: number
  /** Sequence number of its first span; `flush()` waits on the lowest one still unsettled. */
  readonly firstSeq: number
  urlIndex: number
  /** Backoff waits so far; sets the next one's length. */
  backoffRound: number
}

/** What the sink knows of one collector URL, so a dead one stops costing every batch an attempt. */
interface CollectorEndpoint {
  readonly url: URL
  /** Failed attempts since its last success (0 = healthy). */
  failedAttempts: number
  /** Epoch ms before which new batches and failovers skip it (while another is usable). */
  skipUntilMs: number
}

type AttemptOutcome =
  | { kind: 'response'; status: number; body: string; retryAfterMs: number | null }
  | { kind: 'network'; reason: string }

/** Enough of a collector's answer to read `{ accepted, rejected }` or an error; the rest is not read into memory. */
const MAX_RESPONSE_BYTES = 64 * 1024
/**
 * Idle keep-alive sockets are closed before a typical server or load balancer
 * drops them (Node's server: 5 s), so a reused socket is rarely already dead.
 * Node also honours a `Keep-Alive: timeout=` hint below this.
 */
const IDLE_SOCKET_MS = 4000

/**
 * Standalone proxy: spans go to one or more collectors as `POST <url>/v1/spans`
 * (a JSON array), in batches from a bounded queue. Shaped after OTel's
 * `BatchSpanProcessorBase`, with retries because the collector dedupes by
 * `span_id` and by `x-tollgate-batch-id`, so a replay is safe.
 *
 * Transport: node:http(s) with one keep-alive agent per protocol. Node 20's
 * `fetch` takes a custom dispatcher only from the `undici` package (Node does
 * not export its bundled copy), and an explicit `http.Agent` is what keeps
 * these requests off any proxy: Node never applies `HTTP(S)_PROXY` to it (not
 * even with Node 24's `NODE_USE_ENV_PROXY`, which only touches the global
 * agents). The requests go straight to the collector, so they are never
 * captured as spans themselves.
 *
 * @example
 * const sink = createHttpSink({ urls: ['http://10.0.0.5:8081', 'http://10.0.0.6:8081'], drops: metrics, log })
 * sink.add(span) // returns at once
 * await sink.close() // on shutdown: delivers what it can within closeTimeoutMs
 */
export function createHttpSink(options: HttpSinkOptions): HttpSpanSink {
  const log = options.log ?? silentLogger
  const drops = options.drops
  const maxQueueSpans = positiveInteger('maxQueueSpans', options.maxQueueSpans, 50_000)
  let maxBatchSpans = positiveInteger('maxBatchSpans', options.maxBatchSpans, 1000)
  const flushIntervalMs = positiveInteger('flushIntervalMs', options.flushIntervalMs, 200)
  const concurrency = positiveInteger('concurrency', options.concurrency, 2)
  const requestTimeoutMs = positiveInteger('requestTimeoutMs', options.requestTimeoutMs, 10_000)
  const retryInitialDelayMs = positiveInteger('retryInitialDelayMs', options.retryInitialDelayMs, 200)
  const retryMaxDelayMs = positiveInteger('retryMaxDelayMs', options.retryMaxDelayMs, 30_000)
  const closeTimeoutMs = positiveInteger('closeTimeoutMs', options.closeTimeoutMs, 5000)
  if (maxBatchSpans > maxQueueSpans) {
    log.warn({ maxBatchSpans, maxQueueSpans }, 'span sink: maxBatchSpans exceeds maxQueueSpans; clamped')
    maxBatchSpans = maxQueueSpans
  }
  const endpoints: CollectorEndpoint[] = spanEndpoints(options.urls).map((url) => ({ url, failedAttempts: 0, skipUntilMs: 0 }))
  const agentOptions = { keepAlive: true, maxSockets: concurrency, timeout: IDLE_SOCKET_MS }
  const httpAgent = new http.Agent(agentOptions)
  const httpsAgent = new https.Agent(agentOptions)

  /** Spans not yet in a batch, oldest first, serialised (see span-queue.ts). */
  const pending = new SerializedSpanQueue()
  /** Sequence number the next accepted span gets; the queue head's is `nextSeq - pending.length`. */
  let nextSeq = 0
  const batchesInFlight = new Set<PendingBatch>()
  let spansInFlight = 0
  let nextUrlIndex = 0

  let flushTimer: NodeJS.Timeout | undefined
  let pumpScheduled = false
  /** Set when the interval fired: partial batches go out as slots free until the queue is empty. */
  let partialBatchDue = false
  const flushWaiters: { targetSeq: number; resolve: () => void }[] = []

  /** Spans dropped as `queue_full` since the episode began (0 = no episode). */
  let episodeDroppedSpans = 0

  let closing = false
  let stopped = false
  let closed: Promise<void> | undefined
  const openRequests = new Set<http.ClientRequest>()
  const sleepers = new Set<() => void>()

  const queuedSpanCount = () => pending.length + spansInFlight

  /** Lowest sequence number not yet sent or dropped. */
  function lowestUnsettledSeq(): number {
    let lowest = nextSeq - pending.length
    for (const batch of batchesInFlight) lowest = Math.min(lowest, batch.firstSeq)
    return lowest
  }

  function settleFlushWaiters(): void {
    const lowest = stopped ? Infinity : lowestUnsettledSeq()
    for (let i = flushWaiters.length - 1; i >= 0; i--) {
      const waiter = flushWaiters[i]!
      if (waiter.targetSeq <= lowest) {
        flushWaiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }

  function armFlushTimer(): void {
    if (flushTimer || stopped) return
    flushTimer = setTimeout(function flushIntervalElapsed() {
      flushTimer = undefined
      partialBatchDue = true
      pump()
    }, flushIntervalMs)
    flushTimer.unref()
  }

  /**
   * Deferred to the next turn of the event loop: `add()` runs on a request's
   * path, and serialising 1000 spans and writing a socket there would bill that
   * request for the batch.
   */
  function schedulePump(): void {
    if (pumpScheduled || stopped) return
    pumpScheduled = true
    setImmediate(function pumpSoon() {
      pumpScheduled = false
      pump()
    }).unref()
  }

  /** Starts batches while slots are free: full ones always, partial ones once due. */
  function pump(): void {
    while (!stopped && batchesInFlight.size < concurrency && pending.length > 0) {
      const due = pending.length >= maxBatchSpans || partialBatchDue || closing || flushWaiters.length > 0
      if (!due) break
      startBatch()
    }
    if (pending.length === 0) partialBatchDue = false
    else if (!partialBatchDue) armFlushTimer()
  }

  function startBatch(): void {
    const firstSeq = nextSeq - pending.length
    const spanCount = Math.min(pending.length, maxBatchSpans)
    const batch: PendingBatch = {
      id: randomUUID(),
      body: pending.take(spanCount),
      spanCount,
      firstSeq,
      urlIndex: pickEndpoint(nextUrlIndex),
      backoffRound: 0,
    }
    nextUrlIndex = (batch.urlIndex + 1) % endpoints.length
    batchesInFlight.add(batch)
    spansInFlight += batch.spanCount
    void deliver(batch)
  }

  function settleBatch(batch: PendingBatch): void {
    if (!batchesInFlight.delete(batch)) return
    spansInFlight -= batch.spanCount
    settleFlushWaiters()
    pump()
  }

  /**
   * One batch until it is acknowledged or rejected. It keeps its slot and its
   * place in the queue bound while it retries, so a long outage ends in
   * counted `queue_full` drops of new spans, never in unbounded memory.
   */
  async function deliver(batch: PendingBatch): Promise<void> {
    for (;;) {
      const endpoint = endpoints[batch.urlIndex]!
      const outcome = await postBatch(endpoint.url, batch)
      // close() has already counted what was still in flight.
      if (stopped) return
      if (outcome.kind === 'response' && outcome.status >= 200 && outcome.status < 300) {
        noteReachable(endpoint)
        const rejected = rejectedCount(outcome.body, 0)
        if (rejected > 0) noteRejected(endpoint, batch, outcome.status, outcome.body, rejected)
        settleBatch(batch)
        return
      }
      if (outcome.kind === 'response' && isRejection(outcome.status)) {
        noteReachable(endpoint)
        noteRejected(endpoint, batch, outcome.status, outcome.body, rejectedCount(outcome.body, batch.spanCount))
        settleBatch(batch)
        return
      }
      const retryAfterMs = outcome.kind === 'response' ? outcome.retryAfterMs : null
      noteFailure(endpoint, outcome, retryAfterMs)
      // Fail over to the next usable collector at once; back off only when every one is failing.
      batch.urlIndex = pickEndpoint(batch.urlIndex + 1)
      if (endpoints[batch.urlIndex]!.skipUntilMs > Date.now()) {
        await sleep(retryDelayMs(batch.backoffRound++, retryAfterMs))
        if (stopped) return
      }
    }
  }

  /** The first endpoint from `start` on (round-robin order) that is not being skipped; `start` if all are. */
  function pickEndpoint(start: number): number {
    const now = Date.now()
    for (let i = 0; i < endpoints.length; i++) {
      const index = (start + i) % endpoints.length
      if (endpoints[index]!.skipUntilMs <= now) return index
    }
    return start % endpoints.length
  }

  function postBatch(endpoint: URL, batch: PendingBatch): Promise<AttemptOutcome> {
    return new Promise((resolve) => {
      const isHttps = endpoint.protocol === 'https:'
      const request = (isHttps ? https : http).request(endpoint, {
        method: 'POST',
        agent: isHttps ? httpsAgent : httpAgent,
        headers: {
          'content-type': 'application/json',
          'content-length': batch.body.length,
          'x-tollgate-batch-id': batch.id,
        },
      })
      let settled = false
      const finish = (outcome: AttemptOutcome) => {
        if (settled) return
        settled = true
        clearTimeout(timeout)
        openRequests.delete(request)
        resolve(outcome)
      }
      // Whether a timed-out attempt landed is unknown; the retry carries the same batch id.
      const timeout = setTimeout(() => {
        finish({ kind: 'network', reason: 'timeout' })
        request.destroy()
      }, requestTimeoutMs)
      timeout.unref()
      openRequests.add(request)
      request.on('response', (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_RESPONSE_BYTES) chunks.push(chunk)
          size += chunk.length
        })
        res.on('end', () => {
          finish({
            kind: 'response',
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8'),
            retryAfterMs: parseRetryAfterMs(res.headers['retry-after']),
          })
        })
        res.on('error', (err) => finish({ kind: 'network', reason: errorCode(err) ?? err.message }))
        res.on('close', () => {
          if (!res.complete) finish({ kind: 'network', reason: 'response cut short' })
        })
      })
      request.on('error', (err) => finish({ kind: 'network', reason: errorCode(err) ?? err.message }))
      request.end(batch.body)
    })
  }

  /** A backoff wait that close() can cut short; unref()'d like every sink timer. */
  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        sleepers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      timer.unref()
      sleepers.add(wake)
    })
  }

  /** Exponential backoff with "equal jitter": half fixed, half random, so retries from many proxies spread out. */
  function retryDelayMs(round: number, retryAfterMs: number | null): number {
    const exponential = Math.min(retryMaxDelayMs, retryInitialDelayMs * 2 ** Math.min(round, 30))
    const jittered = exponential / 2 + Math.random() * (exponential / 2)
    return Math.min(retryMaxDelayMs, Math.max(jittered, retryAfterMs ?? 0))
  }

  /** Logs the first failure of an outage per collector, not every retry, and rests the collector for a backoff. */
  function noteFailure(endpoint: CollectorEndpoint, outcome: AttemptOutcome, retryAfterMs: number | null): void {
    endpoint.skipUntilMs = Date.now() + retryDelayMs(endpoint.failedAttempts, retryAfterMs)
    if (endpoint.failedAttempts++ > 0) return
    const reason = outcome.kind === 'response' ? `status ${outcome.status}` : outcome.reason
    log.warn({ collector: endpoint.url.origin, reason }, 'span sink: collector attempt failed; retrying with backoff')
  }

  function noteReachable(endpoint: CollectorEndpoint): void {
    if (endpoint.failedAttempts === 0) return
    log.info({ collector: endpoint.url.origin, failedAttempts: endpoint.failedAttempts }, 'span sink: collector reachable again')
    endpoint.failedAttempts = 0
    endpoint.skipUntilMs = 0
  }

  function noteRejected(endpoint: CollectorEndpoint, batch: PendingBatch, status: number, body: string, count: number): void {
    drops.spansDropped('rejected', count)
    log.warn(
      { collector: endpoint.url.origin, status, batchId: batch.id, rejected: count, batchSpans: batch.spanCount, firstRejection: firstRejectionMessage(body) },
      'span sink: collector rejected spans; not retried',
    )
  }

  function endDropEpisode(): void {
    if (episodeDroppedSpans === 0) return
    log.info({ droppedSpans: episodeDroppedSpans }, 'span sink: queue has room again')
    episodeDroppedSpans = 0
  }

  /** Stops everything now: what is still queued or in flight is counted as `shutdown`. */
  function stop(): void {
    stopped = true
    clearTimeout(flushTimer)
    flushTimer = undefined
    const leftOver = queuedSpanCount()
    pending.clear()
    batchesInFlight.clear()
    spansInFlight = 0
    if (leftOver > 0) {
      // An aborted attempt may still have landed; counting it dropped errs towards reporting loss.
      drops.spansDropped('shutdown', leftOver)
      log.warn({ droppedSpans: leftOver, closeTimeoutMs }, 'span sink: spans left undelivered at shutdown')
    }
    endDropEpisode()
    for (const request of openRequests) request.destroy()
    for (const wake of sleepers) wake()
    settleFlushWaiters()
    httpAgent.destroy()
    httpsAgent.destroy()
  }

  /** Resolves once every span accepted so far is acknowledged or counted dropped; sends partial batches now. */
  function flush(): Promise<void> {
    if (stopped || lowestUnsettledSeq() >= nextSeq) return Promise.resolve()
    const flushed = new Promise<void>((resolve) => {
      flushWaiters.push({ targetSeq: nextSeq, resolve })
    })
    // Directly, not via the unref()'d schedulePump: a caller awaiting flush() at exit must see its batches start.
    pump()
    return flushed
  }

  return {
    add: function addSpanToHttpSink(span) {
      try {
        if (closing) {
          drops.spansDropped('shutdown', 1)
          return
        }
        if (queuedSpanCount() >= maxQueueSpans) {
          if (episodeDroppedSpans++ === 0) {
            log.warn({ maxQueueSpans }, 'span sink: queue full; dropping new spans until the collector catches up')
          }
          drops.spansDropped('queue_full', 1)
          return
        }
        let json: string
        try {
          json = JSON.stringify(span)
        } catch (err) {
          // A span that cannot be serialised (a BigInt, a cycle) is a bug upstream; only it is lost.
          drops.spansDropped('rejected', 1)
          log.error({ err }, 'span sink: a span could not be serialised; dropped')
          return
        }
        endDropEpisode()
        pending.push(json)
        nextSeq++
        if (pending.length >= maxBatchSpans) schedulePump()
        else armFlushTimer()
      } catch {
        // Only a throwing logger or counter gets here; the request must not pay for it.
      }
    },
    flush,
    close: function closeHttpSink() {
      closed ??= (async () => {
        closing = true
        // Ref'd on purpose: a caller awaiting close() must see it settle even if nothing else keeps the process alive.
        let deadline: NodeJS.Timeout | undefined
        const timedOut = new Promise<void>((resolve) => {
          deadline = setTimeout(resolve, closeTimeoutMs)
        })
        await Promise.race([flush(), timedOut])
        clearTimeout(deadline)
        stop()
      })()
      return closed
    },
    queuedSpanCount,
  }
}

/** 400 (and 422) = malformed spans, 413 = batch too large: resending the same bytes cannot succeed. */
function isRejection(status: number): boolean {
  return status === 400 || status === 413 || status === 422
}

/** `rejected.length` from `{ accepted, rejected: [...] }`, else `fallback` (the whole batch for an error answer). */
function rejectedCount(body: string, fallback: number): number {
  const parsed = parseJsonObject(body)
  const rejected = parsed?.['rejected']
  return Array.isArray(rejected) ? rejected.length : fallback
}

function firstRejectionMessage(body: string): string {
  const parsed = parseJsonObject(body)
  const rejected = parsed?.['rejected']
  const first: unknown = Array.isArray(rejected) ? rejected[0] : parsed?.['error']
  if (typeof first === 'string') return first.slice(0, 500)
  if (typeof first === 'object' && first !== null) {
    const message = (first as Record<string, unknown>)['message'] ?? (first as Record<string, unknown>)['error']
    if (typeof message === 'string') return message.slice(0, 500)
    return JSON.stringify(first).slice(0, 500)
  }
  return body.slice(0, 500)
}

function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body)
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** `Retry-After` in seconds (RFC 9110 §10.2.3); the HTTP-date form is ignored, backoff covers it. */
function parseRetryAfterMs(header: string | undefined): number | null {
  if (header === undefined || !/^\d+$/.test(header.trim())) return null
  return Number(header.trim()) * 1000
}

function spanEndpoints(urls: readonly string[]): URL[] {
  if (urls.length === 0) throw new TollgateError('TG_ERR_CONFIG_INVALID', 'span sink: at least one collector URL is required')
  return urls.map((raw) => {
    let base: URL
    try {
      base = new URL(raw)
    } catch (err) {
      throw new TollgateError('TG_ERR_CONFIG_INVALID', `span sink: invalid collector URL ${JSON.stringify(raw)}`, { cause: err })
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TollgateError('TG_ERR_CONFIG_INVALID', `span sink: collector URL must be http or https, got ${base.protocol}`)
    }
    // Keeps a path prefix (a collector behind a reverse proxy at /tollgate) and drops any query or fragment.
    return new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}/v1/spans`)
  })
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `span sink: ${name} must be a positive integer, got ${value}`)
  }
  return value
}

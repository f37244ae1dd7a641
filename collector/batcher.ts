/**
 * Moves rows from the spool into ClickHouse, after OpenTelemetry's
 * `BatchSpanProcessorBase`: full batches go at once, a partial one after
 * `flushIntervalMs`, one insert in flight, failures retried with backoff and
 * never dropped.
 *
 * The contract with senders: `accept` resolves only once the rows are fsynced
 * in the spool, and a row is committed past in the spool only after its insert
 * succeeded. Everything else is about doing that cheaply:
 * - Fast path: the spool hands each durable append to the memory queue
 *   (synchronously, in order), and batches are cut from memory.
 * - Spool mode: when the store is slow or down and the memory queue passes
 *   `maxQueueRows`, the memory copy is dropped and rows are read back from the
 *   spool until caught up. Memory stays bounded; the spool is bounded by its
 *   own `maxSpoolBytes`.
 * - Recovery: rows between the checkpoint and the head found at start may have
 *   been inserted by a process that died before committing; the store is asked
 *   which span_ids it has and those rows are skipped.
 * - Every insert carries an `insert_deduplication_token` naming the spool range
 *   it covers, so a retry of a batch whose first attempt did land (timeout,
 *   lost reply) is dropped by ClickHouse.
 */
import { TollgateError, errorCode } from '../lib/errors.ts'
import type { Logger } from '../lib/log.ts'
import { comparePositions, type InFlightBatch, type Spool, type SpoolPosition, type SpoolRange } from './spool.ts'

/** The store as the batcher sees it (collector/store.ts implements it over ClickHouse). */
export interface RowSink {
  /** Inserts JSONEachRow `text` (`count` lines) as one insert carrying `insert_deduplication_token = dedupToken`. */
  insertRows(text: string, count: number, options: { dedupToken: string }): Promise<void>
  /** Which of `ids` are already stored. */
  existingSpanIds(ids: readonly string[]): Promise<Set<string>>
}

/** Optional hooks, called synchronously; the collector maps them onto `tollgate_*` metrics. */
export interface BatcherMetrics {
  /** Rows now waiting in the memory queue. */
  queueRows?(n: number): void
  /** Bytes in the spool not yet committed. */
  spoolBytes?(n: number): void
  /** One insert succeeded: its rows and how long it took. */
  batchInserted?(rows: number, seconds: number): void
  /** One insert (or recovery lookup) failed or timed out; its rows are kept. */
  insertFailed?(): void
  /** Rows from a previous run inserted at recovery. */
  rowsReplayed?(n: number): void
  /** Rows given up on, by reason: `shutdown` (offered after shutdown), `spool_corrupt` (unparseable line found at recovery). */
  rowsDropped?(reason: string, n: number): void
}

export interface BatcherOptions {
  /** Opened by the caller; the batcher closes it in `shutdown()`. */
  spool: Spool
  sink: RowSink
  /**
   * Rows held in memory before new rows are left in the spool and read back
   * from it instead (spool mode), so a store outage cannot grow memory.
   * @default 100_000
   */
  maxQueueRows?: number
  /**
   * Rows per insert; clamped to `maxQueueRows` with a warning. ClickHouse
   * prefers few large inserts (each insert makes a part that must be merged;
   * CLICKHOUSE.md: ≥ 1,000–5,000 rows or ≤ 1 insert/s per writer), so this is
   * far above OTel's 512. bench/ measures it; change it there, not by guess.
   * @default 10_000
   */
  maxBatchRows?: number
  /**
   * Bytes per insert at most; read-back from the spool reads this much at a
   * time, and a memory batch stops growing once past it.
   * @default 16_777_216 (16 MiB)
   */
  maxBatchBytes?: number
  /** Milliseconds a partial batch waits before it is inserted anyway. @default 1000 */
  flushIntervalMs?: number
  /** Milliseconds an insert (or recovery lookup) may take before it counts as failed and is retried. @default 30_000 */
  exportTimeoutMs?: number
  /** Milliseconds before the first retry of a failed insert; doubles per failure (with jitter). @default 100 */
  retryInitialMs?: number
  /** Longest wait between retries, in milliseconds. @default 10_000 */
  retryMaxMs?: number
  /**
   * Milliseconds `shutdown()` spends flushing before it closes the spool
   * anyway; rows not stored by then stay in the spool for the next start.
   * @default 30_000
   */
  shutdownTimeoutMs?: number
  /**
   * Keeps a batch the store rejected as malformed (error code
   * TG_ERR_STORE_REJECTED: retrying can never succeed) somewhere a person can
   * look at it; the batcher then moves past it and counts its rows dropped
   * (`store_rejected`) instead of blocking every row behind it forever.
   */
  onRejected?: (text: string, rows: number, err: unknown) => Promise<void>
  log: Logger
  metrics?: BatcherMetrics
}

export interface BatcherStats {
  /** Rows in the memory queue (not counting the batch being inserted). */
  queueRows: number
  /** Bytes in the spool not yet committed. */
  spoolBytes: number
  insertedRows: number
  /** Rows from a previous run inserted at recovery (rows found already stored are not counted). */
  replayedRows: number
  droppedRows: number
  /** False from a failed insert until the next successful one. */
  storeHealthy: boolean
}

export interface Batcher {
  /**
   * Starts inserting, beginning with the recovery of rows a previous run left
   * in the spool. Resolves once those are stored, or at the first store
   * failure (recovery then goes on in the background): a store that is down
   * never blocks the start. Idempotent.
   */
  start(): Promise<void>
  /**
   * Appends whole JSONEachRow lines (`count` of them) to the spool; resolves
   * once they are fsynced, which is the acknowledgement. Rejects with
   * `TG_ERR_SPOOL_FULL`, `TG_ERR_SPOOL_IO`, `TG_ERR_INTAKE_CLOSED` or
   * `TG_ERR_BAD_SPAN_BATCH`; a rejected chunk was not kept. May be called
   * before `start()`: rows then wait in the spool.
   */
  accept(text: string, count: number): Promise<void>
  /** Resolves when every row accepted before the call is stored; waits out store outages. Starts the batcher if needed. */
  forceFlush(): Promise<void>
  /** Runs once: stops intake, flushes (at most `shutdownTimeoutMs`), closes the spool. */
  shutdown(): Promise<void>
  stats(): BatcherStats
}

interface Chunk extends SpoolRange {
  text: string
  rows: number
}

interface Batch extends SpoolRange {
  text: string
  rows: number
  dedupToken: string
  /** Read back from before the recovery end: some rows may already be stored by the previous run. */
  recovered: boolean
  /** Rows of a recovered batch left to insert once the stored ones are skipped. */
  replayRows: number
  /** Its range and token are persisted as the spool's in-flight batch. */
  marked: boolean
}

const MiB = 1024 * 1024

/**
 * @example
 * const spool = await openSpool({ dir: join(dataDir, 'spool') })
 * const batcher = createBatcher({ spool, sink: store, log })
 * await batcher.start()
 * await batcher.accept(rowsText, rowCount) // 200 to the sender after this
 */
export function createBatcher(options: BatcherOptions): Batcher {
  const { spool, sink, log, metrics } = options
  const maxQueueRows = positiveInteger(options.maxQueueRows ?? 100_000, 'maxQueueRows')
  let maxBatchRows = positiveInteger(options.maxBatchRows ?? 10_000, 'maxBatchRows')
  if (maxBatchRows > maxQueueRows) {
    log.warn({ maxBatchRows, maxQueueRows }, 'maxBatchRows is larger than maxQueueRows; using maxQueueRows')
    maxBatchRows = maxQueueRows
  }
  const maxBatchBytes = positiveInteger(options.maxBatchBytes ?? 16 * MiB, 'maxBatchBytes')
  const flushIntervalMs = positiveInteger(options.flushIntervalMs ?? 1000, 'flushIntervalMs')
  const exportTimeoutMs = positiveInteger(options.exportTimeoutMs ?? 30_000, 'exportTimeoutMs')
  const retryInitialMs = positiveInteger(options.retryInitialMs ?? 100, 'retryInitialMs')
  const retryMaxMs = Math.max(retryInitialMs, positiveInteger(options.retryMaxMs ?? 10_000, 'retryMaxMs'))
  const shutdownTimeoutMs = positiveInteger(options.shutdownTimeoutMs ?? 30_000, 'shutdownTimeoutMs')

  // Rows already in the spool when the batcher is created are the previous
  // run's; they, and only they, may already be in the store.
  const recoveryEnd = spool.head()
  // The insert that was in flight at the crash, replayed first and verbatim;
  // when present, nothing after it can be in the store yet.
  let inFlightAtStart = spool.inFlight()
  /** Recovered rows before this position need no span_id check. */
  let verifiedUpTo = spool.checkpoint()
  // Begin in spool mode: until start() the memory queue takes nothing, and the
  // read-back from the checkpoint covers the recovered rows and any accepted early.
  let mode: 'memory' | 'spool' = 'spool'
  let readPos = spool.checkpoint()
  /** End of the rows already cut into a batch; spool mode resumes reading here. */
  let takenUpTo = readPos

  // Memory queue: an array with a moving head, since shift() on a long array is O(n).
  let queue: Chunk[] = []
  let queueHead = 0
  let queueRows = 0

  let current: Batch | null = null
  let pumping = false
  let forcing = 0
  let flushDue = false
  let flushTimer: NodeJS.Timeout | null = null
  let retryTimer: NodeJS.Timeout | null = null

  let started = false
  let startPromise: Promise<void> | null = null
  let recoveryDone = false
  let resolveStart: (() => void) | null = null
  let shutdownPromise: Promise<void> | null = null
  let intakeClosed = false
  let stopped = false
  const pendingAccepts = new Set<Promise<unknown>>()
  const drainWaiters: Array<{ resolve(): void; reject(err: Error): void }> = []

  let insertedRows = 0
  let replayedRows = 0
  let droppedRows = 0
  let storeHealthy = true
  let consecutiveFailures = 0
  let outageStartedAt = 0
  let outageWaitingRows = 0
  let overflowed = false
  let loggedShutdownDrop = false

  function onDurable(text: string, rows: number, range: SpoolRange): void {
    metrics?.spoolBytes?.(spool.pendingBytes())
    if (!storeHealthy) outageWaitingRows += rows
    if (mode !== 'memory') return
    queue.push({ text, rows, start: range.start, end: range.end })
    queueRows += rows
    if (queueRows > maxQueueRows) {
      enterSpoolMode()
      return
    }
    metrics?.queueRows?.(queueRows)
    if (queueRows >= maxBatchRows) kick()
    else armFlushTimer()
  }

  function enterSpoolMode(): void {
    mode = 'spool'
    readPos = takenUpTo
    queue = []
    queueHead = 0
    queueRows = 0
    flushDue = false
    clearFlushTimer()
    metrics?.queueRows?.(0)
    if (!overflowed) {
      overflowed = true
      log.warn({ maxQueueRows }, 'memory queue full: new rows wait in the spool and are read back from it until caught up')
    }
  }

  function armFlushTimer(): void {
    if (flushTimer || flushDue || stopped) return
    flushTimer = setTimeout(() => {
      flushTimer = null
      flushDue = true
      kick()
    }, flushIntervalMs)
    flushTimer.unref()
  }

  function clearFlushTimer(): void {
    if (flushTimer) clearTimeout(flushTimer)
    flushTimer = null
  }

  function kick(): void {
    void pump()
  }

  async function pump(): Promise<void> {
    if (pumping || !started || stopped || retryTimer) return
    pumping = true
    try {
      for (;;) {
        if (stopped) break
        current ??= await nextBatch()
        const batch = current
        if (!batch) break
        if (!(await attempt(batch))) {
          if (!stopped) scheduleRetry()
          break
        }
        current = null
        checkRecovery()
      }
    } catch (err) {
      // nextBatch only fails on a spool read; treat it like a failed insert.
      log.error({ err }, 'reading the spool failed; retrying')
      if (!stopped) scheduleRetry()
    } finally {
      pumping = false
      checkRecovery()
      afterPump()
    }
  }

  function afterPump(): void {
    if (isDrained()) {
      for (const w of drainWaiters.splice(0)) w.resolve()
      return
    }
    if (stopped || retryTimer) return
    // Work remains that a forceFlush waits for, or a trigger arrived while the last pass was finishing.
    if (forcing > 0 || (mode === 'memory' && queueRows >= maxBatchRows) || mode === 'spool') queueMicrotask(kick)
    else if (queueRows > 0) armFlushTimer()
  }

  function isDrained(): boolean {
    return current === null && mode === 'memory' && queueRows === 0
  }

  async function nextBatch(): Promise<Batch | null> {
    while (mode === 'spool') {
      // Synchronous with the spool's durable listener: every append is either
      // already read back or will reach the memory queue, never both or neither.
      if (comparePositions(readPos, spool.head()) >= 0) {
        mode = 'memory'
        takenUpTo = readPos
        if (overflowed) {
          overflowed = false
          log.info('caught up with the spool: back to the memory queue')
        }
        break
      }
      if (inFlightAtStart && comparePositions(readPos, inFlightAtStart.start) === 0) {
        const replay = await readRange(inFlightAtStart)
        inFlightAtStart = null
        // Rows after the marked batch were never sent: no span_id checks needed for them.
        verifiedUpTo = recoveryEnd
        readPos = replay.end
        takenUpTo = replay.end
        if (replay.rows === 0) continue
        log.info({ rows: replay.rows }, 'recovery: replaying the insert in flight at the crash with its own dedup token')
        const batch = makeBatch(replay.text, replay.rows, replay.start, replay.end, false)
        batch.dedupToken = replay.token
        batch.replayRows = replay.rows
        return batch
      }
      const recovered = comparePositions(readPos, recoveryEnd) < 0 && comparePositions(readPos, verifiedUpTo) >= 0
      const read = await spool.read(readPos, maxBatchBytes, { maxRows: maxBatchRows, until: comparePositions(readPos, recoveryEnd) < 0 ? recoveryEnd : undefined })
      readPos = read.end
      takenUpTo = read.end
      if (read.rows === 0) continue
      return makeBatch(read.text, read.rows, read.start, read.end, recovered)
    }

    if (queueRows === 0) {
      flushDue = false
      return null
    }
    if (queueRows < maxBatchRows && !flushDue && forcing === 0 && !intakeClosed) return null
    const chunks: Chunk[] = []
    let rows = 0
    let bytes = 0
    while (queueHead < queue.length) {
      const next = queue[queueHead]
      if (!next) break
      if (chunks.length > 0 && (rows + next.rows > maxBatchRows || bytes >= maxBatchBytes)) break
      chunks.push(next)
      rows += next.rows
      bytes += next.end.offset - next.start.offset
      queueHead++
    }
    if (queueHead > 1024 && queueHead * 2 > queue.length) {
      queue = queue.slice(queueHead)
      queueHead = 0
    }
    queueRows -= rows
    // The interval's flush is this batch: rows that arrive while it is being
    // inserted wait for the next interval (or a full batch), so a steady
    // trickle makes one insert per interval, not back-to-back small ones.
    flushDue = false
    metrics?.queueRows?.(queueRows)
    const first = chunks[0]
    const last = chunks[chunks.length - 1]
    if (!first || !last) return null
    takenUpTo = last.end
    const text = chunks.length === 1 ? first.text : chunks.map((c) => c.text).join('')
    return makeBatch(text, rows, first.start, last.end, false)
  }

  function makeBatch(text: string, rows: number, start: SpoolPosition, end: SpoolPosition, recovered: boolean): Batch {
    // Positions never repeat for one spool id, so the token names these rows
    // and nothing else; a retry of this exact batch reuses it unchanged.
    const dedupToken = `tg:${spool.id}:${start.segment}:${start.offset}-${end.segment}:${end.offset}`
    return { text, rows, start, end, dedupToken, recovered, replayRows: 0, marked: false }
  }

  /** One try at storing a batch and committing past it. False: keep it and retry later. */
  async function attempt(batch: Batch): Promise<boolean> {
    let stage: 'store' | 'commit' = 'store'
    try {
      if (batch.recovered) await skipStoredRows(batch)
      // Only untouched ranges are marked: a replay reads the range back byte for byte.
      if (batch.rows > 0 && !batch.marked && !batch.dedupToken.includes(':skip')) {
        await spool.markInFlight({ start: batch.start, end: batch.end, token: batch.dedupToken })
        batch.marked = true
      }
      if (batch.rows > 0) {
        const startedAt = performance.now()
        await withTimeout(sink.insertRows(batch.text, batch.rows, { dedupToken: batch.dedupToken }), exportTimeoutMs, 'insert')
        metrics?.batchInserted?.(batch.rows, (performance.now() - startedAt) / 1000)
      }
      stage = 'commit'
      await spool.commit(batch.end)
      insertedRows += batch.rows
      if (batch.replayRows > 0) {
        replayedRows += batch.replayRows
        metrics?.rowsReplayed?.(batch.replayRows)
      }
      metrics?.spoolBytes?.(spool.pendingBytes())
    } catch (err) {
      if (stopped) return false
      if (stage === 'store' && errorCode(err) === 'TG_ERR_STORE_REJECTED' && options.onRejected) {
        try {
          await options.onRejected(batch.text, batch.rows, err)
          await spool.commit(batch.end)
        } catch (setAsideErr) {
          log.error({ err: setAsideErr }, 'could not set a rejected batch aside; retrying it')
          consecutiveFailures++
          return false
        }
        droppedRows += batch.rows
        metrics?.rowsDropped?.('store_rejected', batch.rows)
        log.error({ err, rows: batch.rows }, 'the store rejected a batch as malformed; set aside, not retried')
        return true
      }
      if (stage === 'commit') {
        // The rows are in the store; the retry re-sends them with the same token, which ClickHouse drops.
        log.error({ err, rows: batch.rows }, 'committing the spool failed; retrying')
      } else {
        metrics?.insertFailed?.()
        if (storeHealthy) {
          storeHealthy = false
          outageStartedAt = Date.now()
          outageWaitingRows = batch.rows + queueRows
          log.warn({ err, code: errorCode(err), rows: batch.rows }, 'insert into the store failed: rows kept in the spool, retrying with backoff')
        }
        // The first store failure ends start()'s wait: recovery goes on in the background.
        resolveStart?.()
      }
      consecutiveFailures++
      return false
    }
    if (!storeHealthy) {
      storeHealthy = true
      log.info(
        { waitedRows: outageWaitingRows, failedAttempts: consecutiveFailures, outageMs: Date.now() - outageStartedAt },
        'store is back: rows that waited are being inserted',
      )
    }
    consecutiveFailures = 0
    return true
  }

  /** Reads [start, end) back whole, across segments: the exact bytes once sent. */
  async function readRange(range: InFlightBatch): Promise<{ text: string; rows: number; start: SpoolPosition; end: SpoolPosition; token: string }> {
    let pos = range.start
    let text = ''
    let rows = 0
    while (comparePositions(pos, range.end) < 0) {
      const read = await spool.read(pos, Number.MAX_SAFE_INTEGER, { until: range.end })
      if (read.rows === 0 && comparePositions(read.end, pos) <= 0) break
      text += read.text
      rows += read.rows
      pos = read.end
    }
    return { text, rows, start: range.start, end: pos, token: range.token }
  }

  /**
   * Drops rows the previous run already stored (it died after the insert,
   * before the commit). Mutates the batch only once the lookup succeeded, so a
   * retry re-sends byte-identical text under the same token.
   */
  async function skipStoredRows(batch: Batch): Promise<void> {
    const lines = batch.text.split('\n')
    lines.pop() // text ends in '\n'
    const ids: string[] = []
    const lineIds: Array<string | null | undefined> = lines.map((line) => {
      const id = spanIdOf(line)
      if (typeof id === 'string') ids.push(id)
      return id
    })
    const existing = ids.length > 0 ? await withTimeout(sink.existingSpanIds(ids), exportTimeoutMs, 'span_id lookup') : new Set<string>()
    let corrupt = 0
    const kept: string[] = []
    lines.forEach((line, i) => {
      const id = lineIds[i]
      if (id === undefined) corrupt++
      else if (id === null || !existing.has(id)) kept.push(line)
    })
    const skipped = lines.length - kept.length - corrupt
    if (corrupt > 0) {
      // Unparseable lines can only come from a damaged spool; one would make ClickHouse reject the whole batch forever.
      drop('spool_corrupt', corrupt)
      log.error({ rows: corrupt, from: batch.start }, 'unparseable lines in the spool were skipped at recovery')
    }
    if (skipped > 0) log.info({ rows: skipped }, 'recovery: rows already in the store were skipped')
    if (kept.length !== lines.length) {
      batch.text = kept.length > 0 ? `${kept.join('\n')}\n` : ''
      // Different text must not reuse the range's token, or ClickHouse could drop it as the earlier batch.
      batch.dedupToken = `${batch.dedupToken}:skip${lines.length - kept.length}`
    }
    batch.rows = kept.length
    batch.replayRows = kept.length
    batch.recovered = false
  }

  function scheduleRetry(): void {
    const exp = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(Math.max(consecutiveFailures - 1, 0), 30))
    // Half fixed, half random: collectors that failed together do not retry in lockstep.
    const delay = exp / 2 + (Math.random() * exp) / 2
    retryTimer = setTimeout(() => {
      retryTimer = null
      kick()
    }, delay)
    // The rows are safe in the spool; a pending retry must not hold the process open.
    retryTimer.unref()
  }

  function checkRecovery(): void {
    if (recoveryDone || current !== null) return
    if (mode === 'spool' && comparePositions(readPos, recoveryEnd) < 0) return
    recoveryDone = true
    resolveStart?.()
  }

  function drop(reason: string, n: number): void {
    droppedRows += n
    metrics?.rowsDropped?.(reason, n)
  }

  function start(): Promise<void> {
    startPromise ??= new Promise<void>((resolvePromise) => {
      resolveStart = () => {
        resolveStart = null
        resolvePromise()
      }
      started = true
      if (spool.pendingBytes() > 0) log.info({ bytes: spool.pendingBytes() }, 'recovering rows left in the spool')
      const torn = spool.stats().tornBytes
      if (torn > 0) log.warn({ bytes: torn }, 'cut a partial last line (an append that was never acknowledged) from the spool')
      kick()
    })
    return startPromise
  }

  async function accept(text: string, count: number): Promise<void> {
    if (intakeClosed) {
      drop('shutdown', count)
      if (!loggedShutdownDrop) {
        loggedShutdownDrop = true
        log.warn('rows offered after shutdown are dropped')
      }
      throw new TollgateError('TG_ERR_INTAKE_CLOSED', 'the collector is shutting down')
    }
    if (!Number.isSafeInteger(count) || count <= 0) throw new TollgateError('TG_ERR_BAD_SPAN_BATCH', `row count must be a positive integer, got ${count}`)
    const appended = spool.append(text, count, onDurable)
    pendingAccepts.add(appended)
    const forget = (): void => {
      pendingAccepts.delete(appended)
    }
    appended.then(forget, forget)
    await appended
  }

  async function settleAccepts(): Promise<void> {
    while (pendingAccepts.size > 0) await Promise.allSettled([...pendingAccepts])
  }

  async function forceFlush(): Promise<void> {
    if (stopped) throw new TollgateError('TG_ERR_INTAKE_CLOSED', 'the batcher is shut down')
    void start()
    await settleAccepts()
    forcing++
    try {
      await new Promise<void>((resolvePromise, rejectPromise) => {
        drainWaiters.push({ resolve: resolvePromise, reject: rejectPromise })
        if (pumping) return
        if (isDrained()) afterPump()
        else kick()
      })
    } finally {
      forcing--
    }
  }

  function shutdown(): Promise<void> {
    shutdownPromise ??= (async () => {
      intakeClosed = true
      await settleAccepts()
      let flushed = true
      if (started) {
        let deadline: NodeJS.Timeout | undefined
        flushed = await Promise.race([
          forceFlush().then(
            () => true,
            () => false,
          ),
          new Promise<boolean>((resolvePromise) => {
            deadline = setTimeout(() => resolvePromise(false), shutdownTimeoutMs)
          }),
        ])
        clearTimeout(deadline)
      }
      stopped = true
      clearFlushTimer()
      if (retryTimer) clearTimeout(retryTimer)
      retryTimer = null
      const stillWaiting = new TollgateError('TG_ERR_INTAKE_CLOSED', 'the batcher shut down before these rows were stored; they stay in the spool')
      for (const w of drainWaiters.splice(0)) w.reject(stillWaiting)
      if (!flushed) {
        log.warn({ bytes: spool.pendingBytes(), timeoutMs: shutdownTimeoutMs }, 'shutdown: the store did not take every row in time; the rest stay in the spool for the next start')
      }
      await spool.close()
    })()
    return shutdownPromise
  }

  return {
    start,
    accept,
    forceFlush,
    shutdown,
    stats: () => ({ queueRows, spoolBytes: spool.pendingBytes(), insertedRows, replayedRows, droppedRows, storeHealthy }),
  }
}

/** The line's span_id; null when it has none (kept, cannot be checked); undefined when the line is not a JSON object. */
function spanIdOf(line: string): string | null | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const id = 'span_id' in value ? value.span_id : undefined
  return typeof id === 'string' ? id : typeof id === 'number' ? String(id) : null
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TollgateError('TG_ERR_STORE_TIMEOUT', `${what} took longer than ${timeoutMs} ms`)), timeoutMs)
    timer.unref()
  })
  // A late rejection of the abandoned call must not surface as unhandled.
  promise.catch(() => {})
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TollgateError('TG_ERR_CONFIG_INVALID', `batcher ${name} must be a positive integer, got ${value}`)
  return value
}

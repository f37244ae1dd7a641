import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { errorCode } from '../../lib/errors.ts'
import { silentLogger } from '../../lib/log.ts'
import { createBatcher, type Batcher, type BatcherOptions, type RowSink } from '../../collector/batcher.ts'
import { openSpool, type Spool } from '../../collector/spool.ts'

/**
 * Stands in for ClickHouse behind the RowSink interface: keeps rows in an
 * array, drops an insert whose dedup token it has seen (as ClickHouse does
 * with insert_deduplication_token), and can be told to fail or to hold inserts.
 */
class MemorySink implements RowSink {
  rows: string[] = []
  failing = false
  failedAttempts = 0
  inFlight = 0
  maxInFlight = 0
  inserts: Array<{ rows: number; token: string }> = []
  private tokens = new Set<string>()
  private gate: Promise<void> | null = null
  private openGate: (() => void) | null = null
  /** Milliseconds each insert takes before it lands (or fails). */
  delayMs = 0

  hold(): void {
    this.gate = new Promise((r) => (this.openGate = r))
  }
  release(): void {
    this.openGate?.()
    this.gate = null
  }

  async insertRows(text: string, count: number, options: { dedupToken: string }): Promise<void> {
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      if (this.gate) await this.gate
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
      if (this.failing) {
        this.failedAttempts++
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' })
      }
      if (this.tokens.has(options.dedupToken)) return
      this.tokens.add(options.dedupToken)
      const lines = text.split('\n').slice(0, -1)
      expect(lines).toHaveLength(count)
      this.rows.push(...lines)
      this.inserts.push({ rows: count, token: options.dedupToken })
    } finally {
      this.inFlight--
    }
  }

  async existingSpanIds(ids: readonly string[]): Promise<Set<string>> {
    if (this.failing) {
      this.failedAttempts++
      throw new Error('connect ECONNREFUSED')
    }
    const have = new Set(this.ids())
    return new Set(ids.filter((id) => have.has(id)))
  }

  ids(): string[] {
    return this.rows.map((l) => (JSON.parse(l) as { span_id: string }).span_id)
  }
}

const dirs: string[] = []
const batchers: Batcher[] = []
const spools: Spool[] = []

afterEach(async () => {
  vi.useRealTimers()
  for (const b of batchers.splice(0)) await b.shutdown()
  for (const s of spools.splice(0)) await s.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tg-batcher-'))
  dirs.push(dir)
  return dir
}

async function spoolAt(dir: string, maxSpoolBytes?: number): Promise<Spool> {
  // groupCommitMs 0 schedules with setImmediate, which the fake timers below leave real.
  const spool = await openSpool({ dir, groupCommitMs: 0, maxSpoolBytes })
  spools.push(spool)
  return spool
}

function batcherOn(spool: Spool, sink: RowSink, options: Partial<BatcherOptions> = {}): Batcher {
  const batcher = createBatcher({ spool, sink, log: silentLogger, retryInitialMs: 2, retryMaxMs: 10, shutdownTimeoutMs: 2000, ...options })
  batchers.push(batcher)
  return batcher
}

let seq = 0
/** `n` JSONEachRow lines with fresh span_ids. */
function rows(n: number, prefix = 'r'): { text: string; ids: string[] } {
  const ids = Array.from({ length: n }, () => `${prefix}${seq++}`)
  return { text: ids.map((id) => `{"span_id":"${id}","model":"m"}\n`).join(''), ids }
}

async function acceptRows(batcher: Batcher, n: number, prefix?: string): Promise<string[]> {
  const r = rows(n, prefix)
  await batcher.accept(r.text, n)
  return r.ids
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (err: unknown) => err,
  )
}

describe('maxBatchRows', () => {
  it('inserts as soon as a full batch is queued, in batches of at most maxBatchRows', async () => {
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 10, flushIntervalMs: 60_000 })
    await batcher.start()
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push(...(await acceptRows(batcher, 4)))
    await vi.waitFor(() => expect(sink.rows.length).toBe(16))
    expect(sink.inserts.map((i) => i.rows)).toEqual([8, 8]) // whole chunks, never more than 10 rows
    expect(batcher.stats().queueRows).toBe(4)
    await batcher.forceFlush()
    expect(sink.ids()).toEqual(ids)
  })

  it('is clamped to maxQueueRows', async () => {
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 50, maxQueueRows: 10, flushIntervalMs: 60_000 })
    await batcher.start()
    await acceptRows(batcher, 10)
    await vi.waitFor(() => expect(sink.rows.length).toBe(10))
  })
})

describe('flushIntervalMs', () => {
  it('inserts a partial batch once the interval has passed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 100, flushIntervalMs: 1000 })
    await batcher.start()
    const ids = await acceptRows(batcher, 3)
    await vi.advanceTimersByTimeAsync(999)
    expect(sink.rows).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    await vi.waitFor(() => expect(sink.ids()).toEqual(ids))
  })

  it('makes one insert per interval under a steady trickle, not back-to-back small ones', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 100, flushIntervalMs: 1000 })
    await batcher.start()
    const first = await acceptRows(batcher, 3)
    sink.hold()
    await vi.advanceTimersByTimeAsync(1000)
    await vi.waitFor(() => expect(sink.inFlight).toBe(1))
    // Rows that arrive while the interval's insert runs...
    const second = await acceptRows(batcher, 2)
    sink.release()
    await vi.waitFor(() => expect(sink.ids()).toEqual(first))
    // ...wait for the next interval instead of going straight after it.
    await vi.advanceTimersByTimeAsync(500)
    expect(sink.inserts).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(500)
    await vi.waitFor(() => expect(sink.ids()).toEqual([...first, ...second]))
    expect(sink.inserts.map((i) => i.rows)).toEqual([3, 2])
  })
})

describe('one insert in flight', () => {
  it('never starts an insert while another runs', async () => {
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 5, flushIntervalMs: 60_000 })
    await batcher.start()
    sink.hold()
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push(...(await acceptRows(batcher, 5)))
    await vi.waitFor(() => expect(sink.inFlight).toBe(1))
    await new Promise((r) => setTimeout(r, 20))
    expect(sink.inFlight).toBe(1)
    sink.release()
    await batcher.forceFlush()
    expect(sink.maxInFlight).toBe(1)
    expect(sink.ids()).toEqual(ids)
  })
})

describe('store failure', () => {
  it('keeps every row and retries with backoff until the store is back', async () => {
    const sink = new MemorySink()
    const failed = vi.fn()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 5, metrics: { insertFailed: failed } })
    await batcher.start()
    sink.failing = true
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push(...(await acceptRows(batcher, 5)))
    await vi.waitFor(() => expect(sink.failedAttempts).toBeGreaterThanOrEqual(3))
    expect(batcher.stats().storeHealthy).toBe(false)
    sink.failing = false
    await batcher.forceFlush()
    expect(sink.ids()).toEqual(ids)
    expect(batcher.stats()).toMatchObject({ storeHealthy: true, insertedRows: 20, droppedRows: 0, queueRows: 0, spoolBytes: 0 })
    expect(failed.mock.calls.length).toBeGreaterThanOrEqual(3)
  })

  it('retries a timed-out insert under the same token, so a late landing is not a duplicate', async () => {
    const sink = new MemorySink()
    sink.delayMs = 150 // the first attempt lands, but after the timeout
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { maxBatchRows: 5, exportTimeoutMs: 50 })
    await batcher.start()
    const ids = await acceptRows(batcher, 5)
    await vi.waitFor(() => expect(batcher.stats().storeHealthy).toBe(false))
    sink.delayMs = 0
    await batcher.forceFlush()
    await new Promise((r) => setTimeout(r, 200)) // let the abandoned first attempt land
    expect(sink.ids()).toEqual(ids)
    expect(new Set(sink.inserts.map((i) => i.token)).size).toBe(sink.inserts.length)
  })
})

describe('maxQueueRows (spool mode)', () => {
  it('drops the memory copy past the limit, reads back from the spool in order, then returns to memory', async () => {
    const sink = new MemorySink()
    const queueSizes: number[] = []
    const batcher = batcherOn(await spoolAt(tempDir()), sink, {
      maxQueueRows: 20,
      maxBatchRows: 5,
      metrics: { queueRows: (n) => queueSizes.push(n) },
    })
    await batcher.start()
    sink.failing = true
    const ids: string[] = []
    for (let i = 0; i < 30; i++) {
      ids.push(...(await acceptRows(batcher, 5)))
      expect(batcher.stats().queueRows).toBeLessThanOrEqual(20)
    }
    expect(Math.max(...queueSizes)).toBeLessThanOrEqual(20)
    expect(batcher.stats().spoolBytes).toBeGreaterThan(0)
    sink.failing = false
    await batcher.forceFlush()
    expect(sink.ids()).toEqual(ids)

    // Caught up: new rows take the memory path again.
    ids.push(...(await acceptRows(batcher, 3)))
    expect(batcher.stats().queueRows).toBe(3)
    await batcher.forceFlush()
    expect(sink.ids()).toEqual(ids)
    expect(batcher.stats().spoolBytes).toBe(0)
  })
})

describe('maxSpoolBytes', () => {
  it('refuses rows with TG_ERR_SPOOL_FULL once the spool is full; accepted rows all land', async () => {
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(tempDir(), 2000), sink, { maxBatchRows: 5 })
    await batcher.start()
    sink.failing = true
    const ids: string[] = []
    let refused: unknown
    for (let i = 0; i < 100 && !refused; i++) {
      const r = rows(5)
      try {
        await batcher.accept(r.text, 5)
        ids.push(...r.ids)
      } catch (err) {
        refused = err
      }
    }
    expect(errorCode(refused)).toBe('TG_ERR_SPOOL_FULL')
    sink.failing = false
    await batcher.forceFlush()
    expect(sink.ids()).toEqual(ids)
  })
})

describe('recovery', () => {
  it('skips rows a crashed run inserted but did not commit (existingSpanIds)', async () => {
    const dir = tempDir()
    const sink = new MemorySink()
    let spool = await spoolAt(dir)
    const inserted = rows(10)
    const notInserted = rows(5)
    await spool.append(inserted.text, 10)
    await spool.append(notInserted.text, 5)
    // The dead run's insert landed; its commit never happened.
    await sink.insertRows(inserted.text, 10, { dedupToken: 'from-the-dead-run' })
    await spool.close()

    spool = await spoolAt(dir)
    const replayed = vi.fn()
    const batcher = batcherOn(spool, sink, { metrics: { rowsReplayed: replayed } })
    await batcher.start()
    expect(sink.ids()).toEqual([...inserted.ids, ...notInserted.ids])
    expect(batcher.stats()).toMatchObject({ replayedRows: 5, spoolBytes: 0 })
    expect(replayed).toHaveBeenCalledWith(5)
  })

  it('replays rows that were appended but never inserted', async () => {
    const dir = tempDir()
    let spool = await spoolAt(dir)
    const pending = rows(7)
    await spool.append(pending.text, 7)
    await spool.close()

    const sink = new MemorySink()
    spool = await spoolAt(dir)
    const batcher = batcherOn(spool, sink)
    await batcher.start()
    expect(sink.ids()).toEqual(pending.ids)
    expect(batcher.stats().replayedRows).toBe(7)
    // Replayed once: a restart finds nothing more to do.
    await batcher.shutdown()
    const again = batcherOn(await spoolAt(dir), sink)
    await again.start()
    expect(sink.ids()).toEqual(pending.ids)
    expect(again.stats().replayedRows).toBe(0)
  })

  it('does not block start() while the store is down, and recovers when it returns', async () => {
    const dir = tempDir()
    let spool = await spoolAt(dir)
    const pending = rows(3)
    await spool.append(pending.text, 3)
    await spool.close()

    const sink = new MemorySink()
    sink.failing = true
    spool = await spoolAt(dir)
    const batcher = batcherOn(spool, sink)
    await batcher.start()
    const later = await acceptRows(batcher, 2)
    sink.failing = false
    await batcher.forceFlush()
    expect(sink.ids()).toEqual([...pending.ids, ...later])
  })

  it('drops (and counts) an unparseable line instead of blocking on it forever', async () => {
    const dir = tempDir()
    let spool = await spoolAt(dir)
    const good = rows(2)
    await spool.append(good.text, 2)
    await spool.close()
    appendFileSync(join(dir, 'wal-000001.jsonl'), 'garbage that is not json\n')

    const sink = new MemorySink()
    const dropped = vi.fn()
    spool = await spoolAt(dir)
    const batcher = batcherOn(spool, sink, { metrics: { rowsDropped: dropped } })
    await batcher.start()
    expect(sink.ids()).toEqual(good.ids)
    expect(dropped).toHaveBeenCalledWith('spool_corrupt', 1)
  })
})

describe('shutdown', () => {
  it('flushes everything, closes the spool and runs once', async () => {
    const dir = tempDir()
    const sink = new MemorySink()
    const batcher = batcherOn(await spoolAt(dir), sink, { flushIntervalMs: 60_000 })
    await batcher.start()
    const ids = await acceptRows(batcher, 3)
    const first = batcher.shutdown()
    expect(batcher.shutdown()).toBe(first)
    await first
    expect(sink.ids()).toEqual(ids)
    expect(existsSync(join(dir, 'lock'))).toBe(false)
  })

  it('rejects rows offered after shutdown with TG_ERR_INTAKE_CLOSED and counts the drop', async () => {
    const sink = new MemorySink()
    const dropped = vi.fn()
    const batcher = batcherOn(await spoolAt(tempDir()), sink, { metrics: { rowsDropped: dropped } })
    await batcher.start()
    await batcher.shutdown()
    const r = rows(4)
    expect(errorCode(await rejection(batcher.accept(r.text, 4)))).toBe('TG_ERR_INTAKE_CLOSED')
    expect(batcher.stats().droppedRows).toBe(4)
    expect(dropped).toHaveBeenCalledWith('shutdown', 4)
  })

  it('gives up after shutdownTimeoutMs while the store is down; the rows wait in the spool for the next start', async () => {
    const dir = tempDir()
    const sink = new MemorySink()
    sink.failing = true
    const batcher = batcherOn(await spoolAt(dir), sink, { shutdownTimeoutMs: 50 })
    await batcher.start()
    const ids = await acceptRows(batcher, 3)
    await batcher.shutdown()
    expect(sink.rows).toHaveLength(0)

    sink.failing = false
    const next = batcherOn(await spoolAt(dir), sink)
    await next.start()
    expect(sink.ids()).toEqual(ids)
  })
})

describe('accept', () => {
  it('refuses a chunk that is not newline-terminated lines', async () => {
    const batcher = batcherOn(await spoolAt(tempDir()), new MemorySink())
    expect(errorCode(await rejection(batcher.accept('{"span_id":"x"}', 1)))).toBe('TG_ERR_BAD_SPAN_BATCH')
    expect(errorCode(await rejection(batcher.accept('{"span_id":"x"}\n', 0)))).toBe('TG_ERR_BAD_SPAN_BATCH')
  })
})

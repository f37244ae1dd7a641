/**
 * The collector's write-ahead spool: every accepted chunk of JSONEachRow rows
 * is appended to a segment file and fsynced before the sender is acknowledged,
 * so an acknowledged row survives `kill -9`, a power cut after the ack, and a
 * ClickHouse outage. The batcher commits the position up to which rows are in
 * ClickHouse; fully consumed segments are then deleted.
 *
 * Layout of `dir`:
 * ```
 * wal-000001.jsonl  wal-000002.jsonl …   rows, one JSON object per line, appended only
 * checkpoint.json                        { version, id, segment, offset } of the first row not yet stored
 * lock                                   pid of the one process that has the spool open
 * ```
 * A position `{ segment, offset }` is a byte offset into a segment. Positions
 * never repeat for a given spool `id` (segment numbers only grow), which is
 * what lets the batcher derive ClickHouse `insert_deduplication_token`s from them.
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { TollgateError, errorCode } from '../lib/errors.ts'

export interface SpoolPosition {
  /** Segment number: `wal-000007.jsonl` is segment 7. */
  segment: number
  /** Byte offset inside the segment. */
  offset: number
}

/** The bytes `[start, end)` of one append or one read; never spans two segments. */
export interface SpoolRange {
  start: SpoolPosition
  end: SpoolPosition
}

/** An insert that was about to be sent: its spool range and dedup token. */
export interface InFlightBatch extends SpoolRange {
  token: string
}

export interface SpoolRead extends SpoolRange {
  /** Whole lines only, each ending in `\n`; empty when nothing is pending at `start`. */
  text: string
  /** Lines in `text`. */
  rows: number
}

/**
 * Called synchronously, in append order, the moment an append is durable and
 * before its promise resolves. Observers that must never miss or double-see an
 * append (the batcher's memory queue) use it instead of the promise, whose
 * continuations run later and interleave with other code. Must not throw.
 */
export type DurableListener = (text: string, rows: number, range: SpoolRange) => void

export interface SpoolOptions {
  /** Directory for segments, checkpoint and lock; created if missing. One process at a time. */
  dir: string
  /**
   * Bytes after which the current segment is closed and the next append starts
   * a new one (an append is never split, so one larger than this gets a
   * segment to itself). Smaller segments free disk sooner after a commit.
   * @default 67_108_864 (64 MiB)
   */
  segmentBytes?: number
  /**
   * Most bytes of rows not yet committed (appended, including those waiting
   * for their fsync, minus committed); an append past it fails with
   * `TG_ERR_SPOOL_FULL`. Disk use stays below this plus about one segment
   * (the consumed head of the oldest one).
   * @default 2_147_483_648 (2 GiB)
   */
  maxSpoolBytes?: number
  /**
   * Milliseconds the first append of a group waits so that appends arriving
   * meanwhile share its write and fsync (group commit). Appends arriving
   * during an fsync always share the next one. `0` waits one event-loop turn.
   * @default 2
   */
  groupCommitMs?: number
}

export interface Spool {
  /** Random id created with the spool directory; part of every dedup token derived from its positions. */
  readonly id: string
  /**
   * Appends `text` (whole lines, the last ending in `\n`) and resolves with the
   * end position once it is written and fsynced: that is the moment it may be
   * acknowledged. Rejects with `TG_ERR_SPOOL_FULL`, `TG_ERR_SPOOL_IO` or
   * `TG_ERR_INTAKE_CLOSED`; a rejected append is not in the spool.
   */
  append(text: string, count: number, onDurable?: DurableListener): Promise<SpoolPosition>
  /**
   * Reads whole durable lines from `from` (at or after the checkpoint): at most
   * `maxBytes` (but always at least one line), at most `limits.maxRows` lines,
   * never past `limits.until`. Stays inside one segment; a `from` at the end of
   * a finished segment reads from the start of the next.
   */
  read(from: SpoolPosition, maxBytes: number, limits?: { maxRows?: number; until?: SpoolPosition }): Promise<SpoolRead>
  /** Persists (atomically) that everything before `position` is stored, then deletes fully consumed segments. */
  commit(position: SpoolPosition): Promise<void>
  /** The first position not yet committed. */
  checkpoint(): SpoolPosition
  /**
   * Persists (atomically) the range and dedup token of the insert about to be
   * sent. A crash can leave that insert half-applied (the raw table written,
   * a rollup not): recovery must replay exactly this range with exactly this
   * token, which ClickHouse drops where it landed and applies where it did not.
   */
  markInFlight(batch: InFlightBatch): Promise<void>
  /** The batch marked before the last crash, if it starts at the checkpoint (else it was committed). */
  inFlight(): InFlightBatch | null
  /**
   * Up to `maxBytes` of the newest durable lines, committed or not (the head
   * segment is kept after its commit). After a restart these name the spans
   * most recently acknowledged, which a sender may still be retrying.
   */
  tail(maxBytes: number): Promise<string>
  /** The end of the last durable append. */
  head(): SpoolPosition
  /** Durable bytes between checkpoint and head. */
  pendingBytes(): number
  /** `tornBytes`: bytes of unacknowledged partial lines cut off segment tails when the spool was opened. */
  stats(): { appends: number; syncs: number; tornBytes: number }
  /** Writes what is still waiting for its group commit, then releases the lock. Idempotent. */
  close(): Promise<void>
}

const MiB = 1024 * 1024
const NEWLINE = 0x0a
const SEGMENT_NAME = /^wal-(\d{6,})\.jsonl$/
const CHECKPOINT_FILE = 'checkpoint.json'
const CHECKPOINT_TMP = 'checkpoint.json.tmp'
const INFLIGHT_FILE = 'inflight.json'
const LOCK_FILE = 'lock'

/** Orders positions: negative when `a` comes first. The end of one segment sorts before the start of the next. */
export function comparePositions(a: SpoolPosition, b: SpoolPosition): number {
  return a.segment !== b.segment ? a.segment - b.segment : a.offset - b.offset
}

/** Directories this process has open: a second open here is refused, whereas a lock naming our pid but absent here is stale. */
const heldLocks = new Set<string>()

/**
 * Opens (or creates) the spool in `dir`: takes the lock, cuts torn tails left
 * by a crash mid-write and restores the checkpoint.
 * @example
 * const spool = await openSpool({ dir: './.tollgate/spool' })
 * const end = await spool.append('{"span_id":"a"}\n', 1) // durable now: acknowledge
 */
export async function openSpool(options: SpoolOptions): Promise<Spool> {
  const dir = resolve(options.dir)
  const segmentBytes = positiveInteger(options.segmentBytes ?? 64 * MiB, 'segmentBytes')
  const maxSpoolBytes = positiveInteger(options.maxSpoolBytes ?? 2048 * MiB, 'maxSpoolBytes')
  const groupCommitMs = options.groupCommitMs ?? 2
  if (!Number.isFinite(groupCommitMs) || groupCommitMs < 0) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `spool groupCommitMs must be a number ≥ 0, got ${groupCommitMs}`)
  }
  await mkdir(dir, { recursive: true })
  await acquireLock(dir)
  try {
    return await openLocked(dir, segmentBytes, maxSpoolBytes, groupCommitMs)
  } catch (err) {
    await releaseLock(dir)
    throw err
  }
}

interface PendingAppend {
  text: string
  bytes: number
  rows: number
  onDurable: DurableListener | undefined
  resolve(end: SpoolPosition): void
  reject(err: Error): void
}

async function openLocked(dir: string, segmentBytes: number, maxSpoolBytes: number, groupCommitMs: number): Promise<Spool> {
  const segmentPath = (segment: number): string => join(dir, `wal-${String(segment).padStart(6, '0')}.jsonl`)
  await unlink(join(dir, CHECKPOINT_TMP)).catch(ignoreMissing)

  let segments = await listSegments(dir)
  const saved = await readCheckpoint(dir)
  let inFlightBatch = await readInFlight(dir)
  // The id is created with the directory, not per process: a new id would make
  // dedup tokens of a later run differ from those of the batch it is retrying.
  const id = saved?.id ?? randomBytes(8).toString('hex')
  let checkpointPos: SpoolPosition = saved ? { segment: saved.segment, offset: saved.offset } : { segment: segments[0] ?? 1, offset: 0 }
  if (!saved) await writeCheckpoint(dir, id, checkpointPos)

  // Left behind when a crash fell between the checkpoint rename and the unlink.
  for (const s of segments) if (s < checkpointPos.segment) await unlink(segmentPath(s)).catch(ignoreMissing)
  segments = segments.filter((s) => s >= checkpointPos.segment)

  /** Byte size of every live segment, the head included. */
  const sizes = new Map<number, number>()
  let tornBytes = 0
  for (const s of segments) {
    const { size, torn } = await cutTornTail(segmentPath(s))
    sizes.set(s, size)
    tornBytes += torn
  }

  let headSegment: number
  const first = segments[0]
  const last = segments[segments.length - 1]
  if (first === undefined || last === undefined) {
    // A checkpoint segment that is gone was deleted because it was fully consumed: never reuse its number.
    headSegment = checkpointPos.offset === 0 ? checkpointPos.segment : checkpointPos.segment + 1
    checkpointPos = { segment: headSegment, offset: 0 }
    await (await open(segmentPath(headSegment), 'wx')).close()
    await fsyncDir(dir)
    sizes.set(headSegment, 0)
  } else {
    headSegment = last
    if (first > checkpointPos.segment) checkpointPos = { segment: first, offset: 0 }
    const size = sizes.get(checkpointPos.segment) ?? 0
    if (checkpointPos.offset > size) checkpointPos = { segment: checkpointPos.segment, offset: size }
  }
  let headSize = sizes.get(headSegment) ?? 0
  let head: FileHandle = await open(segmentPath(headSegment), 'r+')

  let pending: PendingAppend[] = []
  let queuedBytes = 0
  let cancelGroupTimer: (() => void) | null = null
  let writing: Promise<void> | null = null
  let broken: Error | null = null
  /** Set by close(): no more appends; commits still drain. */
  let closing = false
  /** Set when close() has finished: nothing works any more. */
  let closed = false
  let closePromise: Promise<void> | null = null
  let commitChain: Promise<void> = Promise.resolve()
  let appends = 0
  let syncs = 0

  function pendingBytes(): number {
    let total = 0
    for (const [segment, size] of sizes) {
      if (segment > checkpointPos.segment) total += size
      else if (segment === checkpointPos.segment) total += size - checkpointPos.offset
    }
    return total
  }

  function scheduleGroup(): void {
    if (writing || cancelGroupTimer) return
    const run = (): void => {
      cancelGroupTimer = null
      writing = writeGroups().finally(() => {
        writing = null
        if (pending.length > 0) scheduleGroup()
      })
    }
    if (groupCommitMs > 0) {
      const timer = setTimeout(run, groupCommitMs)
      cancelGroupTimer = () => clearTimeout(timer)
    } else {
      const immediate = setImmediate(run)
      cancelGroupTimer = () => clearImmediate(immediate)
    }
  }

  async function writeGroups(): Promise<void> {
    while (pending.length > 0) {
      const group = pending
      pending = []
      await writeGroup(group)
    }
  }

  async function writeGroup(group: PendingAppend[]): Promise<void> {
    let bytes = 0
    for (const a of group) bytes += a.bytes
    let stage = 'write'
    try {
      if (broken) throw broken
      if (headSize > 0 && headSize + bytes > segmentBytes) {
        stage = 'rotate'
        await rotate()
      }
      stage = 'write'
      const buf = Buffer.from(group.length === 1 ? (group[0]?.text ?? '') : group.map((a) => a.text).join(''), 'utf8')
      let written = 0
      while (written < buf.length) {
        const { bytesWritten } = await head.write(buf, written, buf.length - written, headSize + written)
        written += bytesWritten
      }
      stage = 'fsync'
      // fdatasync also persists the file size, which is all a reader needs.
      await head.datasync()
      syncs++
    } catch (err) {
      queuedBytes -= bytes
      // After a failed fsync the page cache state is unknown (the "fsyncgate"
      // lesson): stop taking appends rather than acknowledge on top of it.
      if (stage !== 'write') broken ??= asError(err)
      // Cut the unacknowledged bytes so a restart does not replay rows whose sender got an error.
      else await head.truncate(headSize).catch(() => {})
      const failure = new TollgateError('TG_ERR_SPOOL_IO', `spool ${stage} failed in ${dir}: ${asError(err).message}`, { cause: err })
      for (const a of group) a.reject(failure)
      return
    }
    queuedBytes -= bytes
    for (const a of group) {
      const start = { segment: headSegment, offset: headSize }
      headSize += a.bytes
      sizes.set(headSegment, headSize)
      const end = { segment: headSegment, offset: headSize }
      appends++
      try {
        a.onDurable?.(a.text, a.rows, { start, end })
        a.resolve(end)
      } catch (err) {
        a.reject(asError(err))
      }
    }
  }

  async function rotate(): Promise<void> {
    // The old segment's bytes were fdatasynced by the group that wrote them.
    await head.close()
    const next = headSegment + 1
    head = await open(segmentPath(next), 'wx+')
    headSegment = next
    headSize = 0
    sizes.set(next, 0)
    // The new file's directory entry must survive a power cut too.
    await fsyncDir(dir)
  }

  function append(text: string, count: number, onDurable?: DurableListener): Promise<SpoolPosition> {
    if (closing) return Promise.reject(new TollgateError('TG_ERR_INTAKE_CLOSED', 'the spool is closed'))
    if (broken) return Promise.reject(new TollgateError('TG_ERR_SPOOL_IO', `the spool in ${dir} failed an fsync earlier and takes no more appends`, { cause: broken }))
    if (text.length === 0 || !text.endsWith('\n')) {
      return Promise.reject(new TollgateError('TG_ERR_BAD_SPAN_BATCH', 'spool appends must be whole lines ending in \\n'))
    }
    const bytes = Buffer.byteLength(text, 'utf8')
    const held = pendingBytes() + queuedBytes
    if (held + bytes > maxSpoolBytes) {
      return Promise.reject(
        new TollgateError('TG_ERR_SPOOL_FULL', `spool full: ${held} bytes wait for the store, limit ${maxSpoolBytes}, append of ${bytes} refused`),
      )
    }
    queuedBytes += bytes
    return new Promise<SpoolPosition>((resolvePromise, rejectPromise) => {
      pending.push({ text, bytes, rows: count, onDurable, resolve: resolvePromise, reject: rejectPromise })
      scheduleGroup()
    })
  }

  /** Moves a position off the end of a finished segment onto the start of the next. */
  function normalize(pos: SpoolPosition): SpoolPosition {
    let p = pos
    while (p.segment < headSegment && p.offset >= (sizes.get(p.segment) ?? 0)) p = { segment: p.segment + 1, offset: 0 }
    return p
  }

  async function read(from: SpoolPosition, maxBytes: number, limits: { maxRows?: number; until?: SpoolPosition } = {}): Promise<SpoolRead> {
    if (closed) throw new TollgateError('TG_ERR_INTAKE_CLOSED', 'the spool is closed')
    const start = normalize(from)
    if (comparePositions(start, checkpointPos) < 0 || comparePositions(start, { segment: headSegment, offset: headSize }) > 0) {
      throw new TollgateError('TG_ERR_SPOOL_RANGE', `read from ${show(from)} outside the pending range ${show(checkpointPos)}…${show({ segment: headSegment, offset: headSize })}`)
    }
    let limit = start.segment === headSegment ? headSize : (sizes.get(start.segment) ?? 0)
    if (limits.until && limits.until.segment === start.segment) limit = Math.min(limit, limits.until.offset)
    if (limits.until && limits.until.segment < start.segment) limit = start.offset
    const available = limit - start.offset
    if (available <= 0) return { text: '', rows: 0, start, end: start }

    const fh = await open(segmentPath(start.segment), 'r')
    try {
      let want = Math.min(available, Math.max(1, Math.floor(maxBytes)))
      for (;;) {
        const buf = Buffer.allocUnsafe(want)
        const got = await readFully(fh, buf, start.offset)
        let cut = got > 0 ? buf.lastIndexOf(NEWLINE, got - 1) + 1 : 0
        if (cut > 0) {
          let rows = 0
          const maxRows = limits.maxRows ?? Number.POSITIVE_INFINITY
          for (let i = buf.indexOf(NEWLINE); i !== -1 && i < cut; i = buf.indexOf(NEWLINE, i + 1)) {
            rows++
            if (rows >= maxRows) {
              cut = i + 1
              break
            }
          }
          return { text: buf.toString('utf8', 0, cut), rows, start, end: { segment: start.segment, offset: start.offset + cut } }
        }
        // Durable bytes always end in a newline; a line without one here means the file changed under us.
        if (want >= available) throw new TollgateError('TG_ERR_SPOOL_CORRUPT', `no line end in ${segmentPath(start.segment)} after offset ${start.offset}`)
        // One line longer than maxBytes: still return it, or the reader could never pass it.
        want = Math.min(available, want * 2)
      }
    } finally {
      await fh.close()
    }
  }

  async function doCommit(position: SpoolPosition): Promise<void> {
    if (closed) throw new TollgateError('TG_ERR_INTAKE_CLOSED', 'the spool is closed')
    if (comparePositions(position, checkpointPos) <= 0) return
    if (comparePositions(position, { segment: headSegment, offset: headSize }) > 0) {
      throw new TollgateError('TG_ERR_SPOOL_RANGE', `commit to ${show(position)} is past the spool head ${show({ segment: headSegment, offset: headSize })}`)
    }
    await writeCheckpoint(dir, id, position)
    checkpointPos = { segment: position.segment, offset: position.offset }
    for (const [segment, size] of [...sizes]) {
      const consumed = segment < position.segment || (segment === position.segment && segment !== headSegment && position.offset >= size)
      if (!consumed) continue
      sizes.delete(segment)
      // A failed unlink only costs disk until the next open, which retries it.
      await unlink(segmentPath(segment)).catch(() => {})
    }
  }

  function commit(position: SpoolPosition): Promise<void> {
    const done = commitChain.then(() => doCommit(position))
    commitChain = done.catch(() => {})
    return done
  }

  function close(): Promise<void> {
    closePromise ??= (async () => {
      closing = true
      // Appends already taken were promised an answer: write them now instead of waiting for their timer.
      for (;;) {
        if (cancelGroupTimer) {
          cancelGroupTimer()
          cancelGroupTimer = null
          if (!writing && pending.length > 0) {
            writing = writeGroups().finally(() => {
              writing = null
            })
          }
        }
        if (!writing) break
        await writing
      }
      await commitChain
      closed = true
      await head.close().catch(() => {})
      await releaseLock(dir)
    })()
    return closePromise
  }

  return {
    id,
    append,
    read,
    commit,
    checkpoint: () => ({ ...checkpointPos }),
    async markInFlight(batch) {
      if (closed) throw new TollgateError('TG_ERR_INTAKE_CLOSED', 'the spool is closed')
      await writeAtomically(dir, INFLIGHT_FILE, `${JSON.stringify({ version: 1, id, ...batch })}\n`)
      inFlightBatch = { start: { ...batch.start }, end: { ...batch.end }, token: batch.token }
    },
    async tail(maxBytes) {
      if (headSize === 0) return ''
      const from = Math.max(0, headSize - maxBytes)
      const fh = await open(segmentPath(headSegment), 'r')
      try {
        const buf = Buffer.allocUnsafe(headSize - from)
        const got = await readFully(fh, buf, from)
        const text = buf.subarray(0, got).toString('utf8')
        // Starting mid-file: drop the partial first line.
        return from === 0 ? text : text.slice(text.indexOf('\n') + 1)
      } finally {
        await fh.close()
      }
    },
    inFlight() {
      // Valid only while its range is still the next thing to commit.
      if (!inFlightBatch || comparePositions(inFlightBatch.start, checkpointPos) !== 0) return null
      if (comparePositions(inFlightBatch.end, checkpointPos) <= 0) return null
      return { start: { ...inFlightBatch.start }, end: { ...inFlightBatch.end }, token: inFlightBatch.token }
    },
    head: () => ({ segment: headSegment, offset: headSize }),
    pendingBytes,
    stats: () => ({ appends, syncs, tornBytes }),
    close,
  }
}

async function listSegments(dir: string): Promise<number[]> {
  const segments: number[] = []
  for (const name of await readdir(dir)) {
    const m = SEGMENT_NAME.exec(name)
    if (m?.[1]) segments.push(Number.parseInt(m[1], 10))
  }
  return segments.sort((a, b) => a - b)
}

interface Checkpoint {
  id: string
  segment: number
  offset: number
}

async function readCheckpoint(dir: string): Promise<Checkpoint | null> {
  const path = join(dir, CHECKPOINT_FILE)
  let raw: string
  try {
    raw = await readFile(path, 'utf8')
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null
    throw err
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch (err) {
    throw new TollgateError('TG_ERR_SPOOL_CORRUPT', `${path} is not JSON`, { cause: err })
  }
  if (
    typeof parsed === 'object' &&
    parsed !== null &&
    'version' in parsed &&
    parsed.version === 1 &&
    'id' in parsed &&
    typeof parsed.id === 'string' &&
    'segment' in parsed &&
    Number.isSafeInteger(parsed.segment) &&
    'offset' in parsed &&
    Number.isSafeInteger(parsed.offset)
  ) {
    const segment = parsed.segment as number
    const offset = parsed.offset as number
    if (segment >= 1 && offset >= 0) return { id: parsed.id, segment, offset }
  }
  throw new TollgateError('TG_ERR_SPOOL_CORRUPT', `${path} does not hold { version: 1, id, segment, offset }`)
}

/** The in-flight marker, or null when absent or unreadable (a torn marker is as good as none: recovery falls back to span_id checks). */
async function readInFlight(dir: string): Promise<InFlightBatch | null> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, INFLIGHT_FILE), 'utf8')) as Partial<InFlightBatch> & { version?: number }
    const isPos = (p: unknown): p is SpoolPosition =>
      typeof p === 'object' && p !== null && Number.isSafeInteger((p as SpoolPosition).segment) && Number.isSafeInteger((p as SpoolPosition).offset)
    if (parsed.version === 1 && isPos(parsed.start) && isPos(parsed.end) && typeof parsed.token === 'string') {
      return { start: parsed.start, end: parsed.end, token: parsed.token }
    }
  } catch {
    // absent or torn
  }
  return null
}

/** Write temp, fsync, rename, fsync the directory: a crash leaves the old file or the new one, never half of either. */
async function writeAtomically(dir: string, name: string, content: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`)
  const fh = await open(tmp, 'w')
  try {
    await fh.writeFile(content)
    await fh.datasync()
  } finally {
    await fh.close()
  }
  await rename(tmp, join(dir, name))
  await fsyncDir(dir)
}

/** Write temp, fsync, rename, fsync the directory: a crash leaves the old checkpoint or the new one, never half of either. */
async function writeCheckpoint(dir: string, id: string, position: SpoolPosition): Promise<void> {
  const tmp = join(dir, CHECKPOINT_TMP)
  const fh = await open(tmp, 'w')
  try {
    await fh.writeFile(`${JSON.stringify({ version: 1, id, segment: position.segment, offset: position.offset })}\n`)
    await fh.datasync()
  } finally {
    await fh.close()
  }
  await rename(tmp, join(dir, CHECKPOINT_FILE))
  await fsyncDir(dir)
}

/**
 * A write cut by `kill -9` (or a power cut) can leave a partial last line; its
 * append was never acknowledged, so the partial line is cut off rather than
 * glued to the next append.
 */
async function cutTornTail(path: string): Promise<{ size: number; torn: number }> {
  const { size } = await stat(path)
  if (size === 0) return { size, torn: 0 }
  const fh = await open(path, 'r+')
  try {
    const block = Buffer.allocUnsafe(64 * 1024)
    let end = size
    let keep = 0
    while (end > 0) {
      const from = Math.max(0, end - block.length)
      const got = await readFully(fh, block.subarray(0, end - from), from)
      const nl = block.lastIndexOf(NEWLINE, got - 1)
      if (nl !== -1) {
        keep = from + nl + 1
        break
      }
      end = from
    }
    if (keep === size) return { size, torn: 0 }
    await fh.truncate(keep)
    await fh.datasync()
    return { size: keep, torn: size - keep }
  } finally {
    await fh.close()
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * `link` publishes a lock file that already holds our pid, so no other process
 * ever sees it empty. A lock whose pid is not alive (or is our own pid but not
 * held by this process: a container restarted as pid 1 again) is stale and
 * taken over. Two processes taking over the same stale lock at the same
 * instant can still both win; starting the collector twice at once on one
 * directory is not guarded further.
 */
async function acquireLock(dir: string): Promise<void> {
  const lockPath = join(dir, LOCK_FILE)
  if (heldLocks.has(dir)) throw locked(lockPath, process.pid)
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`)
  await writeFile(tmp, `${process.pid}\n`)
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await publishLock(tmp, lockPath)
        heldLocks.add(dir)
        return
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err
      }
      const holder = await readLockPid(lockPath)
      if (holder !== null && holder !== process.pid && isAlive(holder)) throw locked(lockPath, holder)
      await unlink(lockPath).catch(ignoreMissing)
    }
    throw locked(lockPath, await readLockPid(lockPath))
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

async function publishLock(tmp: string, lockPath: string): Promise<void> {
  try {
    await link(tmp, lockPath)
  } catch (err) {
    const code = errorCode(err)
    // Some filesystems (FUSE, SMB) have no hard links: fall back to an exclusive create.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err
    const fh = await open(lockPath, 'wx')
    try {
      await fh.writeFile(`${process.pid}\n`)
    } finally {
      await fh.close()
    }
  }
}

async function releaseLock(dir: string): Promise<void> {
  if (!heldLocks.delete(dir)) return
  const lockPath = join(dir, LOCK_FILE)
  if ((await readLockPid(lockPath)) === process.pid) await unlink(lockPath).catch(() => {})
}

async function readLockPid(lockPath: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(await readFile(lockPath, 'utf8'), 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return errorCode(err) === 'EPERM'
  }
}

function locked(lockPath: string, pid: number | null): TollgateError {
  return new TollgateError(
    'TG_ERR_SPOOL_LOCKED',
    `the spool is in use by process ${pid ?? '?'} (${lockPath}); stop it, or delete the lock file if that process is not a Tollgate collector`,
  )
}

function ignoreMissing(err: unknown): void {
  if (errorCode(err) !== 'ENOENT') throw err
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TollgateError('TG_ERR_CONFIG_INVALID', `spool ${name} must be a positive integer, got ${value}`)
  return value
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

function show(p: SpoolPosition): string {
  return `${p.segment}:${p.offset}`
}

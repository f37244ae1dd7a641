import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { errorCode } from '../../lib/errors.ts'
import { comparePositions, openSpool, type Spool, type SpoolPosition } from '../../collector/spool.ts'

const dirs: string[] = []
const open: Spool[] = []

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tg-spool-'))
  dirs.push(dir)
  return dir
}

async function spoolIn(dir: string, options: { segmentBytes?: number; maxSpoolBytes?: number } = {}): Promise<Spool> {
  const spool = await openSpool({ dir, groupCommitMs: 1, ...options })
  open.push(spool)
  return spool
}

afterEach(async () => {
  for (const spool of open.splice(0)) await spool.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const line = (id: string | number): string => `{"span_id":"${id}"}\n`
const lines = (ids: Array<string | number>): string => ids.map(line).join('')

/** Every pending line from the checkpoint to the head. */
async function readAll(spool: Spool, from: SpoolPosition = spool.checkpoint()): Promise<string[]> {
  const out: string[] = []
  let pos = from
  while (comparePositions(pos, spool.head()) < 0) {
    const r = await spool.read(pos, 1024)
    out.push(...r.text.split('\n').slice(0, -1))
    pos = r.end
  }
  return out
}

const segmentFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('wal-')).sort()

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (err: unknown) => err,
  )
}

describe('append', () => {
  it('resolves with the end position once durable; read returns whole lines', async () => {
    const dir = tempDir()
    const spool = await spoolIn(dir)
    const first = await spool.append(lines([1, 2]), 2)
    const second = await spool.append(line(3), 1)
    expect(first).toEqual({ segment: 1, offset: Buffer.byteLength(lines([1, 2])) })
    expect(second.offset).toBe(first.offset + Buffer.byteLength(line(3)))
    expect(spool.head()).toEqual(second)
    expect(spool.pendingBytes()).toBe(second.offset)
    expect(readFileSync(join(dir, 'wal-000001.jsonl'), 'utf8')).toBe(lines([1, 2, 3]))

    const r = await spool.read({ segment: 1, offset: 0 }, 1024)
    expect(r).toMatchObject({ text: lines([1, 2, 3]), rows: 3, start: { segment: 1, offset: 0 }, end: second })
  })

  it('shares one write and fsync among concurrent appends (group commit), in order', async () => {
    const spool = await spoolIn(tempDir())
    const ends = await Promise.all(Array.from({ length: 50 }, (_, i) => spool.append(line(i), 1)))
    for (let i = 1; i < ends.length; i++) expect(comparePositions(ends[i - 1] as SpoolPosition, ends[i] as SpoolPosition)).toBeLessThan(0)
    expect(spool.stats().appends).toBe(50)
    expect(spool.stats().syncs).toBeLessThan(5)
    expect(await readAll(spool)).toEqual(Array.from({ length: 50 }, (_, i) => line(i).trimEnd()))
  })

  it('tells the durable listener synchronously and in order', async () => {
    const spool = await spoolIn(tempDir())
    const seen: string[] = []
    await Promise.all([1, 2, 3].map((i) => spool.append(line(i), 1, (text) => seen.push(text))))
    expect(seen).toEqual([line(1), line(2), line(3)])
  })

  it('refuses text that does not end in a newline', async () => {
    const spool = await spoolIn(tempDir())
    expect(errorCode(await rejection(spool.append('{"span_id":"a"}', 1)))).toBe('TG_ERR_BAD_SPAN_BATCH')
  })
})

describe('maxSpoolBytes', () => {
  it('refuses an append past the limit with TG_ERR_SPOOL_FULL until a commit frees room', async () => {
    const spool = await spoolIn(tempDir(), { maxSpoolBytes: 60 })
    const one = line('aaaaaaaaaaaaaaaaaaaaaaaaa') // 40 bytes: one fits, two would not
    const end = await spool.append(one, 1)
    const err = await rejection(spool.append(one, 1))
    expect(errorCode(err)).toBe('TG_ERR_SPOOL_FULL')
    expect(spool.head()).toEqual(end) // the refused append left nothing behind
    await spool.commit(end)
    await expect(spool.append(one, 1)).resolves.toBeDefined()
  })
})

describe('segments', () => {
  it('rotates at segmentBytes, reads across the boundary and deletes consumed segments after commit', async () => {
    const dir = tempDir()
    const spool = await spoolIn(dir, { segmentBytes: 50 })
    for (let i = 0; i < 10; i++) await spool.append(line(`span-${i}`), 1) // 21 bytes each: two per segment
    expect(segmentFiles(dir)).toHaveLength(5)
    expect(await readAll(spool)).toHaveLength(10)

    const r = await spool.read({ segment: 1, offset: 0 }, 1 << 20)
    expect(r.rows).toBe(2) // a read stays inside one segment
    const next = await spool.read(r.end, 1 << 20)
    expect(next.start).toEqual({ segment: 2, offset: 0 })

    await spool.commit(next.end) // end of segment 2
    expect(segmentFiles(dir)).toEqual(['wal-000003.jsonl', 'wal-000004.jsonl', 'wal-000005.jsonl'])
    await spool.commit(spool.head())
    expect(segmentFiles(dir)).toEqual(['wal-000005.jsonl']) // the head segment stays
    expect(spool.pendingBytes()).toBe(0)
  })

  it('never reuses a segment number after its segments were deleted', async () => {
    const dir = tempDir()
    let spool = await spoolIn(dir, { segmentBytes: 30 })
    await spool.append(line('a'), 1)
    await spool.append(line('b'), 1)
    await spool.commit(spool.head())
    await spool.close()
    rmSync(join(dir, 'wal-000002.jsonl'))
    spool = await spoolIn(dir, { segmentBytes: 30 })
    const end = await spool.append(line('c'), 1)
    expect(end.segment).toBe(3)
  })
})

describe('read limits', () => {
  it('honours maxRows and until, and returns a line longer than maxBytes whole', async () => {
    const spool = await spoolIn(tempDir())
    await spool.append(lines([1, 2, 3]), 3)
    const until = await spool.append(lines([4, 5]), 2)
    const long = `{"span_id":"6","pad":"${'y'.repeat(5000)}"}\n`
    await spool.append(long, 1)
    const start = { segment: 1, offset: 0 }
    expect((await spool.read(start, 1 << 20, { maxRows: 2 })).text).toBe(lines([1, 2]))
    expect((await spool.read(start, 1 << 20, { until })).rows).toBe(5)
    expect((await spool.read(start, 30)).text).toBe(line(1))
    expect((await spool.read(until, 10)).text).toBe(long)
  })
})

describe('checkpoint', () => {
  it('persists commits atomically and resumes from them', async () => {
    const dir = tempDir()
    let spool = await spoolIn(dir)
    const mid = await spool.append(lines([1, 2]), 2)
    await spool.append(lines([3]), 1)
    await spool.commit(mid)
    const saved = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as Record<string, unknown>
    expect(saved).toMatchObject({ version: 1, segment: 1, offset: mid.offset, id: spool.id })
    expect(existsSync(join(dir, 'checkpoint.json.tmp'))).toBe(false)
    const id = spool.id
    await spool.close()

    // A crash while writing the next checkpoint leaves only a temp file behind.
    writeFileSync(join(dir, 'checkpoint.json.tmp'), '{"version":1,"id":"x","segm')
    spool = await spoolIn(dir)
    expect(spool.id).toBe(id)
    expect(spool.checkpoint()).toEqual(mid)
    expect(await readAll(spool)).toEqual(['{"span_id":"3"}'])
    expect(existsSync(join(dir, 'checkpoint.json.tmp'))).toBe(false)
  })

  it('ignores a commit behind the checkpoint and refuses one past the head', async () => {
    const spool = await spoolIn(tempDir())
    const a = await spool.append(line(1), 1)
    await spool.commit(a)
    await spool.commit({ segment: 1, offset: 0 })
    expect(spool.checkpoint()).toEqual(a)
    expect(errorCode(await rejection(spool.commit({ segment: 1, offset: a.offset + 1 })))).toBe('TG_ERR_SPOOL_RANGE')
  })

  it('refuses to open over a damaged checkpoint', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'checkpoint.json'), 'not json')
    expect(errorCode(await rejection(openSpool({ dir })))).toBe('TG_ERR_SPOOL_CORRUPT')
    expect(existsSync(join(dir, 'lock'))).toBe(false)
  })
})

describe('torn tail', () => {
  it('cuts a partial last line on open; later appends start on a clean line', async () => {
    const dir = tempDir()
    let spool = await spoolIn(dir)
    await spool.append(lines([1, 2, 3]), 3)
    await spool.close()
    const partial = '{"span_id":"4","pad":"half a li'
    appendFileSync(join(dir, 'wal-000001.jsonl'), partial)

    spool = await spoolIn(dir)
    expect(spool.stats().tornBytes).toBe(partial.length)
    expect(statSync(join(dir, 'wal-000001.jsonl')).size).toBe(Buffer.byteLength(lines([1, 2, 3])))
    await spool.append(line(5), 1)
    expect(await readAll(spool)).toEqual(['{"span_id":"1"}', '{"span_id":"2"}', '{"span_id":"3"}', '{"span_id":"5"}'])
  })
})

describe('lock', () => {
  it('lets one holder at a time open a directory and releases on close', async () => {
    const dir = tempDir()
    const spool = await spoolIn(dir)
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid))
    expect(errorCode(await rejection(openSpool({ dir })))).toBe('TG_ERR_SPOOL_LOCKED')
    await spool.close()
    expect(existsSync(join(dir, 'lock'))).toBe(false)
    await spoolIn(dir)
  })

  it('takes over a lock whose process is gone', async () => {
    const dir = tempDir()
    const child = spawn(process.execPath, ['-e', ''])
    const deadPid = child.pid
    await new Promise((r) => child.once('exit', r))
    writeFileSync(join(dir, 'lock'), `${deadPid}\n`)
    await spoolIn(dir)
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid))
  })

  it('takes over a lock naming our own pid that this process does not hold (restart as the same pid)', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'lock'), `${process.pid}\n`)
    await spoolIn(dir)
  })
})

describe('crash (SIGKILL mid-append)', () => {
  it('keeps every acknowledged record whole and leaves no partial line', async () => {
    const dir = tempDir()
    const fixture = fileURLToPath(new URL('./fixtures/spool-writer.ts', import.meta.url))
    const root = fileURLToPath(new URL('../../', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    const acked: number[] = []
    let stderr = ''
    let buffered = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)))
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString()
        const parts = buffered.split('\n')
        buffered = parts.pop() ?? ''
        for (const p of parts) acked.push(Number(p))
        if (acked.length >= 400) resolve()
      })
      child.once('exit', () => reject(new Error(`writer exited early: ${stderr}`)))
    })
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')

    const spool = await spoolIn(dir, { segmentBytes: 256 * 1024 })
    for (const f of segmentFiles(dir)) {
      const text = readFileSync(join(dir, f), 'utf8')
      expect(text === '' || text.endsWith('\n')).toBe(true)
    }
    const stored = await readAll(spool)
    const ids = stored.map((l) => (JSON.parse(l) as { span_id: string }).span_id) // every line parses
    expect(new Set(ids).size).toBe(ids.length)
    const have = new Set(ids)
    for (const id of acked) for (const k of [0, 1, 2]) expect(have.has(`${id}-${k}`)).toBe(true)
  })
})

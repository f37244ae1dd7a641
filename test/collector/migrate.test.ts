/**
 * Schema migrations against real chDB (a database of their own on the
 * process-wide chDB directory), the SQL they render for a cluster, retention
 * TTL, and the `tollgate migrate` command in a process of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient, type ClickHouseClient } from '@clickhouse/client'
import { createChdbConnection } from 'chdb/connection'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MIGRATIONS_DIR,
  bootstrapStatements,
  loadMigrations,
  migrate,
  quoteIdentifier,
  renderMigration,
  splitStatements,
} from '../../collector/migrate.ts'
import { openStore, spanToRow } from '../../collector/store.ts'
import type { Span } from '../../collector/schema.ts'
import { errorCode } from '../../lib/errors.ts'
import { silentLogger } from '../../lib/log.ts'
import { PROCESS_CHDB_PATH } from '../helpers/tollgate.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const tmp = mkdtempSync(join(tmpdir(), 'tollgate-migrate-'))
let client: ClickHouseClient
let dbCount = 0
/** A database of this test's own on the shared chDB directory. */
const newDatabase = (what: string) => `mig_${process.pid}_${what}_${++dbCount}`

beforeAll(() => {
  // As store.ts builds it; libchdb binds one directory per process, so this shares PROCESS_CHDB_PATH.
  const connection = createChdbConnection({ path: PROCESS_CHDB_PATH })
  client = createClient({ connection } as unknown as Parameters<typeof createClient>[0])
})
afterAll(async () => {
  await client?.close()
  rmSync(tmp, { recursive: true, force: true })
})

async function select<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>()
}
const tablesOf = async (db: string) =>
  (await select<{ name: string; engine: string }>('SELECT name, engine FROM system.tables WHERE database = {db:String} ORDER BY name', { db }))
const ledger = (db: string) =>
  select<{ version: number; name: string; checksum: string }>(`SELECT version, name, checksum FROM ${quoteIdentifier(db)}.schema_migrations ORDER BY version`)

/** A copy of migrations/ to change. */
function migrationsCopy(): string {
  const dir = mkdtempSync(join(tmp, 'migrations-'))
  for (const f of readdirSync(MIGRATIONS_DIR)) copyFileSync(join(MIGRATIONS_DIR, f), join(dir, f))
  return dir
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a rejection')
}

function captureThrow(f: () => unknown): Error & { code?: string } {
  try {
    f()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a throw')
}

const FILES = loadMigrations()
const VERSIONS = FILES.map((m) => m.version)
const LAST = VERSIONS.at(-1)!
/** The file name of the next migration a test adds. */
const nextFile = (name: string) => `${String(LAST + 1).padStart(4, '0')}_${name}.sql`

/** One span an hour ago as a JSONEachRow line: a priced gpt-4o call, with `fields` on top. */
function spanRowAgo(fields: Partial<Span>): string {
  const at = new Date(Date.now() - 3_600_000).toISOString()
  return spanToRow({
    span_id: crypto.randomUUID(), started_at: at, ended_at: at, mode: 'reverse', provider: 'openai', endpoint: 'chat',
    request_model: 'gpt-4o', response_model: null, stream: false, status_code: 200, error_type: 'none', duration_ms: 100,
    ttft_ms: null, input_tokens: 7, output_tokens: null, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null,
    cost_usd: 0.5, cost_status: 'priced', finish_reason: null, user: null, session: null, app: null, properties: {},
    request_bytes: 1, response_bytes: 1, client_addr: null, ...fields,
  })
}

/** Straight into a database's spans table, as the store would. */
async function insertRows(db: string, rows: string[]): Promise<void> {
  await client.command({ query: `INSERT INTO ${quoteIdentifier(db)}.spans FORMAT JSONEachRow\n${rows.join('')}`, clickhouse_settings: { date_time_input_format: 'best_effort' } })
}

describe('migrate() on chDB', () => {
  const db = newDatabase('main')

  it('applies every file in order and records each in schema_migrations', async () => {
    expect(VERSIONS.slice(0, 3)).toEqual([1, 2, 3])
    expect(VERSIONS).toEqual([...VERSIONS].sort((a, b) => a - b))
    const result = await migrate(client, { database: db })
    expect(result).toEqual({ applied: VERSIONS, alreadyApplied: [], version: LAST })
    expect(await ledger(db)).toEqual(FILES.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })))
    expect(await tablesOf(db)).toEqual(
      expect.arrayContaining([
        { name: 'schema_migrations', engine: 'MergeTree' },
        { name: 'spans', engine: 'MergeTree' },
        { name: 'spans_1h', engine: 'AggregatingMergeTree' },
        { name: 'spans_1h_mv', engine: 'MaterializedView' },
        { name: 'spans_1m', engine: 'AggregatingMergeTree' },
        { name: 'spans_1m_mv', engine: 'MaterializedView' },
        { name: 'spans_6h', engine: 'AggregatingMergeTree' },
        { name: 'spans_6h_mv', engine: 'MaterializedView' },
      ]),
    )

    // The views feed both rollups from an insert into spans (recent: older rows fall to the TTLs).
    const atMs = Date.now() - 3_600_000
    const at = new Date(atMs).toISOString()
    const utc = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
    const span: Span = {
      span_id: crypto.randomUUID(), started_at: at, ended_at: at, mode: 'reverse', provider: 'openai', endpoint: 'chat',
      request_model: 'gpt-4o', response_model: null, stream: true, status_code: 200, error_type: 'none', duration_ms: 100,
      ttft_ms: null, input_tokens: 7, output_tokens: null, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null,
      cost_usd: 0.5, cost_status: 'priced', finish_reason: null, user: null, session: null, app: null, properties: {},
      request_bytes: 1, response_bytes: 1, client_addr: null,
    }
    await client.command({ query: `INSERT INTO ${quoteIdentifier(db)}.spans FORMAT JSONEachRow\n${spanToRow(span)}`, clickhouse_settings: { date_time_input_format: 'best_effort' } })
    // spans_6h is fed by a view on spans_1h (a cascade), the others by views on spans.
    const rollups = [['spans_1m', 60_000], ['spans_1h', 3_600_000], ['spans_6h', 21_600_000], ['spans_1d', 86_400_000]] as const
    for (const [table, bucket] of rollups.map(([t, ms]) => [t, utc(atMs - (atMs % ms))])) {
      expect(await select(`SELECT toString(bucket) AS bucket, model, toUInt32(sum(requests)) AS requests, toUInt32(sum(input_tokens)) AS input, sum(cost_usd) AS cost FROM ${quoteIdentifier(db)}.${table} GROUP BY bucket, model`)).toEqual([
        { bucket, model: 'gpt-4o', requests: 1, input: 7, cost: 0.5 },
      ])
    }
  })

  it('a second run applies nothing', async () => {
    const result = await migrate(client, { database: db })
    expect(result).toEqual({ applied: [], alreadyApplied: VERSIONS, version: LAST })
    expect(await ledger(db)).toHaveLength(VERSIONS.length)
  })

  it('a file changed after it was applied stops with TG_ERR_MIGRATION naming it, before anything later runs', async () => {
    const dir = migrationsCopy()
    appendFileSync(join(dir, '0002_rollups.sql'), '\n-- edited later\n')
    writeFileSync(join(dir, nextFile('extra')), 'CREATE TABLE IF NOT EXISTS ${DB}.extra ${ON_CLUSTER} (a UInt8) ENGINE = ${ENGINE:MergeTree} ORDER BY a;\n')
    const err = await rejection(migrate(client, { database: db }, { migrations: loadMigrations(dir) }))
    expect(errorCode(err)).toBe('TG_ERR_MIGRATION')
    expect(err.message).toContain('0002_rollups')
    expect(await ledger(db)).toHaveLength(VERSIONS.length)
    expect((await tablesOf(db)).map((t) => t.name)).not.toContain('extra')
  })

  it('a new file is applied alone on the next run', async () => {
    const dir = migrationsCopy()
    writeFileSync(join(dir, nextFile('extra')), 'CREATE TABLE IF NOT EXISTS ${DB}.extra ${ON_CLUSTER} (a UInt8) ENGINE = ${ENGINE:MergeTree} ORDER BY a;\n')
    expect(await migrate(client, { database: db }, { migrations: loadMigrations(dir) })).toEqual({ applied: [LAST + 1], alreadyApplied: VERSIONS, version: LAST + 1 })
    expect((await tablesOf(db)).find((t) => t.name === 'extra')).toEqual({ name: 'extra', engine: 'MergeTree' })
    expect((await ledger(db)).map((r) => [r.version, r.name])).toEqual([...FILES.map((m) => [m.version, m.name]), [LAST + 1, 'extra']])
  })

  it('0012 gives rows stored before it bfloat16 quantile states, without counting them twice', async () => {
    const before = newDatabase('bf16')
    const dir = migrationsCopy()
    for (const f of readdirSync(dir)) if (/^001[23]_/.test(f)) rmSync(join(dir, f))
    await migrate(client, { database: before }, { migrations: loadMigrations(dir) })
    await insertRows(before, [100, 200, 300].map((duration_ms) => spanRowAgo({ stream: true, duration_ms, ttft_ms: duration_ms / 2 })))
    await migrate(client, { database: before })
    for (const table of ['spans_1m', 'spans_1h', 'spans_6h', 'spans_1d']) {
      expect(
        await select(`SELECT toUInt32(sum(requests)) AS requests, quantilesBFloat16Merge(0.5, 0.9, 0.95, 0.99)(duration_bf)[1] AS p50, quantilesBFloat16Merge(0.5, 0.9, 0.95, 0.99)(ttft_bf)[1] AS ttft_p50 FROM ${quoteIdentifier(before)}.${table}`),
        table,
      ).toEqual([{ requests: 3, p50: 200, ttft_p50: 100 }])
    }
  })

  it('0014 gives spans stored before it per-user rows, hourly and daily, counted once', async () => {
    const before = newDatabase('user')
    const dir = migrationsCopy()
    for (const f of readdirSync(dir)) if (/^001[45]_/.test(f)) rmSync(join(dir, f))
    await migrate(client, { database: before }, { migrations: loadMigrations(dir) })
    const span = (user: string | null, duration_ms: number, error_type: Span['error_type']): string =>
      spanRowAgo({ user, duration_ms, error_type, status_code: error_type === 'none' ? 200 : 500, output_tokens: 3, cost_usd: 0.25 })
    await insertRows(before, [span('ann', 100, 'none'), span('ann', 300, 'http_5xx'), span('bob', 200, 'none'), span(null, 50, 'none')])
    await migrate(client, { database: before })
    // And one span after: the view counts it, the backfill did not see it.
    await insertRows(before, [span('bob', 400, 'none')])
    for (const table of ['spans_user_1h', 'spans_user_1d']) {
      expect(
        await select(`SELECT user, toUInt32(sum(errors)) AS failed, toUInt32(sum(requests)) AS n, toUInt32(sum(input_tokens)) AS input, sum(cost_usd) AS cost, sum(duration_ms_sum) AS ms FROM ${quoteIdentifier(before)}.${table} GROUP BY user ORDER BY user`),
        table,
      ).toEqual([
        { user: '', n: 1, failed: 0, input: 7, cost: 0.25, ms: 50 },
        { user: 'ann', n: 2, failed: 1, input: 14, cost: 0.5, ms: 400 },
        { user: 'bob', n: 2, failed: 0, input: 14, cost: 0.5, ms: 600 },
      ])
    }
  })

  it('a cluster-only file is recorded but not executed on a single server', async () => {
    const fresh = newDatabase('clusteronly')
    const dir = migrationsCopy()
    // Not even SQL: running it would fail.
    writeFileSync(join(dir, nextFile('cluster_thing')), '-- tollgate:cluster-only\nTHIS IS NOT SQL ON CLUSTER ${CLUSTER};\n')
    const result = await migrate(client, { database: fresh }, { migrations: loadMigrations(dir) })
    expect(result).toEqual({ applied: [...VERSIONS, LAST + 1], alreadyApplied: [], version: LAST + 1 })
    expect((await ledger(fresh)).map((r) => r.name)).toEqual([...FILES.map((m) => m.name), 'cluster_thing'])
    // 0003 is cluster-only too: no Distributed tables on a single server.
    expect(FILES.find((m) => m.version === 3)!.clusterOnly).toBe(true)
    expect((await tablesOf(fresh)).filter((t) => t.name.endsWith('_dist') || t.engine === 'Distributed')).toEqual([])
  })

  it('a failing statement stops with TG_ERR_MIGRATION naming the file, unrecorded, and runs once fixed', async () => {
    const fresh = newDatabase('broken')
    const dir = migrationsCopy()
    const file = join(dir, nextFile('broken'))
    writeFileSync(file, 'CREATE TABLE IF NOT EXISTS ${DB}.broken (a UInt8) ENGINE = NoSuchEngine;\n')
    const err = await rejection(migrate(client, { database: fresh }, { migrations: loadMigrations(dir) }))
    expect(errorCode(err)).toBe('TG_ERR_MIGRATION')
    expect(err.message).toContain(nextFile('broken').replace('.sql', ''))
    expect((await ledger(fresh)).map((r) => r.version)).toEqual(VERSIONS)
    writeFileSync(file, 'CREATE TABLE IF NOT EXISTS ${DB}.broken (a UInt8) ENGINE = ${ENGINE:MergeTree} ORDER BY a;\n')
    expect((await migrate(client, { database: fresh }, { migrations: loadMigrations(dir) })).applied).toEqual([LAST + 1])
  })

  it('an invalid database name is refused before anything runs', async () => {
    for (const database of ['bad-name', 'x; DROP DATABASE default', '1abc', '']) {
      const err = await rejection(migrate(client, { database }))
      expect(errorCode(err), database).toBe('TG_ERR_CONFIG_INVALID')
    }
    const dbs = await select<{ name: string }>("SELECT name FROM system.databases WHERE name LIKE '%bad%' OR name LIKE '%DROP%'")
    expect(dbs).toEqual([])
  })
})

const withoutComments = (sql: string) => sql.replace(/^\s*--.*\n/gm, '').trim()

describe('renderMigration', () => {
  const cluster = { database: 'tollgate', cluster: 'prod' }
  const clusterSql = FILES.flatMap((m) => renderMigration(m.template, cluster))
  const singleSql = FILES.flatMap((m) => renderMigration(m.template, { database: 'tollgate' }))

  it('for a cluster: ON CLUSTER on every DDL statement', () => {
    expect(clusterSql.length).toBeGreaterThanOrEqual(8)
    for (const s of clusterSql.map(withoutComments)) {
      expect(s).toMatch(/^(CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS|ALTER TABLE|DROP (TABLE|VIEW) IF EXISTS|RENAME TABLE) `tollgate`\.\w+ ON CLUSTER `prod`/)
      expect(s).not.toContain('${')
    }
    for (const s of bootstrapStatements(cluster)) expect(s).toContain(' ON CLUSTER `prod`')
  })

  it('for a cluster: Replicated engines only', () => {
    const engines = clusterSql.flatMap((s) => [...s.matchAll(/ENGINE = (\w+)/g)].map((m) => m[1]))
    const mergeTrees = engines.filter((e) => e!.endsWith('MergeTree'))
    expect(mergeTrees.slice(0, 3)).toEqual(['ReplicatedMergeTree', 'ReplicatedAggregatingMergeTree', 'ReplicatedAggregatingMergeTree'])
    for (const e of mergeTrees) expect(e).toMatch(/^Replicated/)
    expect(bootstrapStatements(cluster)[1]).toContain('ENGINE = ReplicatedMergeTree')
    // The views read each shard's local table.
    const views = clusterSql.map(withoutComments).filter((s) => s.startsWith('CREATE MATERIALIZED VIEW'))
    expect(views).toHaveLength(10)
    expect(views[0]).toContain('ON CLUSTER `prod` TO `tollgate`.spans_1m AS')
    expect(views[1]).toContain('ON CLUSTER `prod` TO `tollgate`.spans_1h AS')
    expect(views[2]).toContain('ON CLUSTER `prod` TO `tollgate`.spans_1d AS')
    for (const v of views.slice(0, 3)) expect(v).toContain('FROM `tollgate`.spans\n')
    // The six-hour rollup cascades from each shard's local hourly table.
    expect(views[3]).toContain('ON CLUSTER `prod` TO `tollgate`.spans_6h AS')
    expect(views[3]).toContain('FROM `tollgate`.spans_1h\n')
    // Migration 0012 rebuilds all four to fill the bfloat16 quantile states too.
    expect(views.slice(4, 8).map((v) => /TO `tollgate`\.(\w+) AS/.exec(v)?.[1])).toEqual(['spans_1m', 'spans_1h', 'spans_1d', 'spans_6h'])
    for (const v of views.slice(4, 8)) expect(v).toMatch(/quantilesBFloat16(Merge)?State/)
    // 0014: the hourly per-user rollup (sums only) reads each shard's spans; the daily one cascades from it.
    for (const v of views.slice(8)) expect(v).not.toContain('quantile')
    expect(views[8]).toContain('ON CLUSTER `prod` TO `tollgate`.spans_user_1h AS')
    expect(views[8]).toContain('FROM `tollgate`.spans\n')
    expect(views[9]).toContain('ON CLUSTER `prod` TO `tollgate`.spans_user_1d AS')
    expect(views[9]).toContain('FROM `tollgate`.spans_user_1h\n')
    // Its backfill runs on a single server only.
    expect(clusterSql.some((st) => st.includes('INSERT INTO `tollgate`.spans_user_1h'))).toBe(false)
    expect(singleSql.some((st) => st.includes('INSERT INTO `tollgate`.spans_user_1h'))).toBe(true)
  })

  it('for a cluster: Distributed tables over each local table, with the cluster name', () => {
    const dist = clusterSql.filter((s) => s.includes('ENGINE = Distributed'))
    expect(dist.length).toBeGreaterThanOrEqual(3)
    expect(dist[0]).toMatch(/`tollgate`\.spans_dist ON CLUSTER `prod` AS `tollgate`\.spans\s+ENGINE = Distributed\('prod', `tollgate`, spans, cityHash64\(span_id\)\)/)
    expect(dist[1]).toMatch(/`tollgate`\.spans_1m_dist ON CLUSTER `prod` AS `tollgate`\.spans_1m\s+ENGINE = Distributed\('prod', `tollgate`, spans_1m\)/)
    expect(dist[2]).toMatch(/`tollgate`\.spans_1h_dist ON CLUSTER `prod` AS `tollgate`\.spans_1h\s+ENGINE = Distributed\('prod', `tollgate`, spans_1h\)/)
  })

  it('for a single server: no ON CLUSTER, no Replicated engines', () => {
    for (const s of singleSql) {
      expect(s).not.toContain('ON CLUSTER')
      expect(s).not.toContain('Replicated')
      expect(s).not.toContain('${')
    }
    const engines = singleSql.flatMap((s) => [...s.matchAll(/ENGINE = (\w+)/g)].map((m) => m[1]))
    expect(engines.filter((e) => e!.endsWith('MergeTree')).slice(0, 3)).toEqual(['MergeTree', 'AggregatingMergeTree', 'AggregatingMergeTree'])
    for (const s of bootstrapStatements({ database: 'tollgate' })) expect(s).not.toContain('ON CLUSTER')
  })

  it('rejects invalid identifiers and unknown placeholders', () => {
    const template = FILES[0]!.template
    for (const database of ['bad-name', 'db; DROP TABLE x', '1abc', '', 'a`b', 'x'.repeat(65), 'tollgate.spans']) {
      expect(errorCode(captureThrow(() => renderMigration(template, { database }))), database).toBe('TG_ERR_CONFIG_INVALID')
      expect(errorCode(captureThrow(() => bootstrapStatements({ database }))), database).toBe('TG_ERR_CONFIG_INVALID')
    }
    for (const name of ["prod'", 'a b', 'prod`', '']) {
      expect(errorCode(captureThrow(() => renderMigration(template, { database: 'ok', cluster: name }))), name).toBe('TG_ERR_CONFIG_INVALID')
    }
    expect(errorCode(captureThrow(() => quoteIdentifier('a`b')))).toBe('TG_ERR_CONFIG_INVALID')
    const err = captureThrow(() => renderMigration('CREATE TABLE ${DB}.x ${TABLESPACE} (a UInt8);', { database: 'ok' }))
    expect(errorCode(err)).toBe('TG_ERR_MIGRATION')
    expect(err.message).toContain('${TABLESPACE}')
  })

  it('splits at ; ending a line and drops comment-only pieces', () => {
    expect(splitStatements("-- header\nSELECT 'a;b';\n-- only a comment;\nSELECT 2;")).toEqual(["-- header\nSELECT 'a;b'", 'SELECT 2'])
  })
})

describe('retention TTL (openStore({ retentionDays }))', () => {
  const database = newDatabase('ttl')
  const ttlOf = async () =>
    (await select<{ engine_full: string }>("SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'spans'", { db: database }))[0]!.engine_full
  const open = async (retentionDays?: number) => {
    const { store } = await openStore({ dataDir: tmp, chdbPath: PROCESS_CHDB_PATH, database, retentionDays, log: silentLogger })
    await store.close()
  }
  // ClickHouse may spell the interval `INTERVAL 30 DAY` or `toIntervalDay(30)`.
  const ttl = (days: number) => new RegExp(`TTL toDateTime\\(started_at\\) \\+ (INTERVAL ${days} DAY|toIntervalDay\\(${days}\\))`)

  it('sets, changes and restores the raw-span TTL', async () => {
    await open(30)
    expect(await ttlOf()).toMatch(ttl(30))
    await open(7)
    expect(await ttlOf()).toMatch(ttl(7))
    await open(7)
    expect(await ttlOf()).toMatch(ttl(7))
    await open()
    expect(await ttlOf()).toMatch(ttl(90))
    // Rollups keep their own, longer TTLs.
    const rollup = (await select<{ engine_full: string }>("SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'spans_1h'", { db: database }))[0]!
    expect(rollup.engine_full).toMatch(/TTL bucket \+ (INTERVAL 800 DAY|toIntervalDay\(800\))/)
  })

  it('refuses a retention that is not a whole number of days ≥ 1', async () => {
    for (const days of [0, -1, 1.5]) expect(errorCode(await rejection(open(days))), String(days)).toBe('TG_ERR_CONFIG_INVALID')
  })
})

// ---------------------------------------------------------------- the CLI

function cliEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOLLGATE_')) env[k] = v
  return { ...env, TOLLGATE_DATA_DIR: dataDir, TOLLGATE_PROXY_PORT: '0', TOLLGATE_UI_PORT: '0', TOLLGATE_LOG_LEVEL: 'warn' }
}

function runCli(args: string[], dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/tollgate.mjs', ...args], { cwd: ROOT, env: cliEnv(dataDir), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('tollgate migrate', () => {
  const dataDir = join(tmp, 'cli-data')
  const heldDir = join(tmp, 'cli-held')
  let collector: ChildProcess
  let collectorReady: Promise<void>
  let locked: { code: number | null; stdout: string; stderr: string } | undefined

  beforeAll(() => {
    // A collector holding its own data dir, started now so it boots while the first test runs.
    collector = spawn(process.execPath, ['bin/tollgate.mjs', 'collector'], { cwd: ROOT, env: cliEnv(heldDir), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    collectorReady = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`collector did not start: ${out}`)), 20_000)
      collector.stdout!.on('data', (d: Buffer) => {
        out += d
        if (out.includes('Tollgate collector:')) {
          clearTimeout(timer)
          resolve()
        }
      })
      collector.stderr!.on('data', (d: Buffer) => (out += d))
      collector.once('exit', (code) => reject(new Error(`collector exited ${code}: ${out}`)))
    })
    collectorReady.catch(() => {})
  })
  afterAll(async () => {
    if (collector.exitCode === null && collector.signalCode === null) {
      const exited = new Promise((r) => collector.once('exit', r))
      collector.kill('SIGKILL')
      await exited
    }
  })

  it('prints the schema version and exits 0, twice in a row', async () => {
    const first = await runCli(['migrate'], dataDir)
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain(`schema at version ${LAST}; applied now: ${VERSIONS.join(', ')}`)
    const second = await runCli(['migrate'], dataDir)
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toContain(`schema at version ${LAST}; applied now: none`)
  })

  it('exits non-zero with a clear message while a collector holds the data dir, and runs once it has stopped', async () => {
    await collectorReady
    locked = await runCli(['migrate'], heldDir)
    expect(locked.code).not.toBe(0)
    expect(locked.stderr).toMatch(/in use by another process|Another server instance in same directory is already running/)

    const exited = new Promise<number | null>((r) => collector.once('exit', (code) => r(code)))
    collector.kill('SIGTERM')
    expect(await exited).toBe(0)
    const after = await runCli(['migrate'], heldDir)
    expect(after.code, after.stderr).toBe(0)
    expect(after.stdout).toContain(`schema at version ${LAST}; applied now: none`)
  })

  it('reports the locked data dir as TG_ERR_STORE_LOCKED (store.ts: openStore @throws)', () => {
    expect(locked, 'the previous test ran the locked migrate').toBeDefined()
    expect(locked!.stderr).toMatch(/tollgate: the chDB data directory .* is in use by another process.*\[TG_ERR_STORE_LOCKED\]/)
  })
})

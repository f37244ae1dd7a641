/**
 * The one place that builds the ClickHouse client: embedded chDB (its
 * Connection plugged into `@clickhouse/client`) when no URL is given, a server
 * or cluster by URL otherwise. Nothing else knows which. The rest of the
 * collector sees `SpanStore`.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ClickHouseError, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client'
import { TollgateError } from '../lib/errors.ts'
import type { Logger } from '../lib/log.ts'
import { migrate, quoteIdentifier, type MigrateResult, type SchemaTarget } from './migrate.ts'
import type { Span } from './schema.ts'

export interface StoreOptions {
  /** `http(s)://user:pass@host:port/database`; undefined → embedded chDB under dataDir. */
  url?: string | undefined
  /** Data directory for chDB (`<dataDir>/chdb`). */
  dataDir: string
  /**
   * chDB directory, overriding `<dataDir>/chdb`. libchdb binds one directory per
   * process, so several stores in one process (tests) share a directory and
   * differ by `database`.
   */
  chdbPath?: string | undefined
  /** Cluster name: ON CLUSTER DDL, Replicated engines, writes and reads through Distributed tables. */
  cluster?: string | undefined
  /** Database for a server without one in its URL. @default 'tollgate' */
  database?: string | undefined
  /** Raw span retention in days. @default 90 */
  retentionDays?: number | undefined
  /**
   * Threads one dashboard query may use. In all-in-one mode storage shares the
   * machine with the proxy, so queries are capped to leave it CPU.
   * @default 1 when embedded, server default otherwise
   */
  queryMaxThreads?: number | undefined
  log: Logger
}

export interface SpanTables {
  spans: string
  spans1m: string
  spans1h: string
  spans6h: string
  spans1d: string
  /** Per-user rollups (sums per user per hour / day). */
  spansUser1h: string
  spansUser1d: string
}

export interface SpanStore {
  readonly client: ClickHouseClient
  readonly kind: 'chdb' | 'server'
  readonly tables: SpanTables
  /** Settings every read query carries (thread cap, plain-number JSON). */
  readonly querySettings: ClickHouseSettings
  /** Inserts JSONEachRow text (see `spanToRow`); `dedupToken` makes a retried identical insert a no-op. */
  insertRows(text: string, count: number, options: { dedupToken: string }): Promise<void>
  /** Which of `ids` are already stored (for replay after a crash). */
  existingSpanIds(ids: readonly string[]): Promise<Set<string>>
  ping(): Promise<boolean>
  close(): Promise<void>
}

/**
 * Opens the store and brings its schema up to date.
 * @throws TollgateError TG_ERR_STORE_LOCKED when another process holds the chDB data dir.
 */
export async function openStore(options: StoreOptions): Promise<{ store: SpanStore; migration: MigrateResult }> {
  const { client, kind, database, rawInsert } = await buildClient(options)
  const target: SchemaTarget = { database, cluster: options.cluster }
  let migration: MigrateResult
  try {
    migration = await migrate(client, target, { log: options.log })
    await applyRetention(client, target, options.retentionDays ?? 90)
  } catch (err) {
    await client.close().catch(() => {})
    throw asStoreError(err)
  }
  const db = quoteIdentifier(database)
  const dist = options.cluster ? '_dist' : ''
  const tables: SpanTables = {
    spans: `${db}.spans${dist}`,
    spans1m: `${db}.spans_1m${dist}`,
    spans1h: `${db}.spans_1h${dist}`,
    spans6h: `${db}.spans_6h${dist}`,
    spans1d: `${db}.spans_1d${dist}`,
    spansUser1h: `${db}.spans_user_1h${dist}`,
    spansUser1d: `${db}.spans_user_1d${dist}`,
  }
  const maxThreads = options.queryMaxThreads ?? (kind === 'chdb' ? 1 : undefined)
  const querySettings: ClickHouseSettings = {
    output_format_json_quote_64bit_integers: 0,
    ...(maxThreads ? { max_threads: maxThreads } : {}),
  }
  const insertSettings: ClickHouseSettings = {
    date_time_input_format: 'best_effort',
    // Rollups must see a replayed batch as the duplicate it is (CLICKHOUSE.md).
    deduplicate_blocks_in_dependent_materialized_views: 1,
    // A cluster dedupes through Replicated tables; a single server needs the window setting on the table.
    ...(options.cluster ? { insert_distributed_sync: 1 } : {}),
  }

  const store: SpanStore = {
    client,
    kind,
    tables,
    querySettings,
    async insertRows(text, count, { dedupToken }) {
      if (count === 0) return
      try {
        // JSONEachRow text goes straight through as the INSERT's data: it was
        // serialised once, when spooled. rawInsert names tables unquoted.
        if (rawInsert && !options.cluster && /^\w+$/.test(database)) {
          await rawInsert(`${database}.spans`, text, { ...insertSettings, insert_deduplication_token: dedupToken } as ClickHouseSettings)
          return
        }
        await client.command({
          query: `INSERT INTO ${tables.spans} FORMAT JSONEachRow\n${text}`,
          clickhouse_settings: { ...insertSettings, insert_deduplication_token: dedupToken },
        })
      } catch (err) {
        throw asStoreError(err)
      }
    },
    async existingSpanIds(ids) {
      if (ids.length === 0) return new Set()
      const result = await client.query({
        query: `SELECT toString(span_id) AS id FROM ${tables.spans} WHERE span_id IN {ids:Array(UUID)}`,
        query_params: { ids },
        format: 'JSONEachRow',
        clickhouse_settings: querySettings,
      })
      return new Set((await result.json<{ id: string }>()).map((r) => r.id))
    },
    async ping() {
      try {
        return (await client.ping()).success
      } catch {
        return false
      }
    },
    close: () => client.close(),
  }
  return { store, migration }
}

/** chDB's own insert: the text goes to the engine as one buffer, not inside an SQL string. */
type RawInsert = (table: string, text: string, settings: ClickHouseSettings) => Promise<void>

async function buildClient(
  options: StoreOptions,
): Promise<{ client: ClickHouseClient; kind: 'chdb' | 'server'; database: string; rawInsert?: RawInsert }> {
  if (options.url) {
    const url = new URL(options.url)
    const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || options.database || 'tollgate'
    url.pathname = '/'
    // The database is named in every statement, so the client needs none (it may not exist yet).
    return { client: createClient({ url: url.toString(), request_timeout: 60_000 }), kind: 'server', database }
  }
  const path = options.chdbPath ?? resolve(options.dataDir, 'chdb')
  mkdirSync(path, { recursive: true })
  // chDB is an optional dependency (a large native engine): a deployment
  // that stores in a ClickHouse server can install without it.
  let chdb: typeof import('chdb/connection')
  try {
    chdb = await import('chdb/connection')
  } catch (cause) {
    throw new TollgateError('TG_ERR_STORE', 'embedded storage needs the optional package chdb (npm install chdb), or set TOLLGATE_CLICKHOUSE_URL', { cause })
  }
  let connection: ReturnType<typeof chdb.createChdbConnection>
  try {
    connection = chdb.createChdbConnection({ path })
  } catch (err) {
    // chDB 3.4 reports a held data dir only as "Failed to create connection";
    // ClickHouse's own status file names the process holding it.
    const holder = lockHolder(path)
    if (holder !== null) {
      throw new TollgateError('TG_ERR_STORE_LOCKED', `the chDB data directory ${path} is in use by another process (pid ${holder}); stop it or use another TOLLGATE_DATA_DIR`, { cause: err })
    }
    throw asStoreError(err)
  }
  // `connection` is chDB's implementation of @clickhouse/client's Connection hook.
  // One connection: chDB 3.4 runs parameterised queries one at a time per
  // process whatever the connection (its parameter state is not isolated per
  // connection), and every query here is parameterised, so more would not help.
  const client = createClient({ connection } as unknown as Parameters<typeof createClient>[0])
  const chdbConnection = connection
  // @clickhouse/client's insert through chDB builds one SQL string of the rows
  // (several copies of a multi-MB batch); chDB's rawInsert hands the bytes to
  // the engine's parser as they are. Measured on 20k-row batches of spans:
  // ~19k rows/s inline vs ~31k rows/s raw (parsing plus the rollup views).
  const rawInsert: RawInsert = async (table, text, settings) => {
    try {
      await chdbConnection.chdb.rawInsert({
        table,
        values: Buffer.from(text),
        format: 'JSONEachRow',
        settings: settings as Record<string, string | number | boolean>,
      })
    } catch (err) {
      // chDB's insert errors carry ClickHouse's code but not its type name;
      // the client's shape (ClickHouseError with a type) lets asStoreError
      // tell bad rows from an outage.
      const message = err instanceof Error ? err.message : String(err)
      const type = /\(([A-Z][A-Z0-9_]+)\)\s*$/.exec(message)?.[1] ?? ''
      const code = String((err as { clickhouseCode?: unknown } | null)?.clickhouseCode ?? '')
      throw Object.assign(new ClickHouseError({ message, code, type }), { cause: err })
    }
  }
  return { client, kind: 'chdb', database: options.database ?? 'tollgate', rawInsert }
}

/** The pid in ClickHouse's `status` file, when that process is alive and not us. */
function lockHolder(path: string): number | null {
  try {
    const pid = Number(/PID:\s*(\d+)/.exec(readFileSync(resolve(path, 'status'), 'utf8'))?.[1])
    if (!pid || pid === process.pid) return null
    process.kill(pid, 0)
    return pid
  } catch {
    return null
  }
}

/** Keeps the raw table's TTL at the configured retention; metadata only, never rewrites parts. */
async function applyRetention(client: ClickHouseClient, target: SchemaTarget, days: number): Promise<void> {
  if (!Number.isInteger(days) || days < 1) throw new TollgateError('TG_ERR_CONFIG_INVALID', `retention must be a whole number of days ≥ 1, got ${days}`)
  const rows = await (
    await client.query({
      query: 'SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}',
      query_params: { db: target.database, t: 'spans' },
      format: 'JSONEachRow',
    })
  ).json<{ engine_full: string }>()
  // ClickHouse writes the TTL back as toIntervalDay(N); older versions as INTERVAL N DAY.
  const current = rows[0]?.engine_full ?? ''
  if (current.includes(`toIntervalDay(${days})`) || current.includes(`INTERVAL ${days} DAY`)) return
  const onCluster = target.cluster ? ` ON CLUSTER ${quoteIdentifier(target.cluster)}` : ''
  await client.command({
    query: `ALTER TABLE ${quoteIdentifier(target.database)}.spans${onCluster} MODIFY TTL toDateTime(started_at) + INTERVAL ${days} DAY`,
    clickhouse_settings: { materialize_ttl_after_modify: 0 },
  })
}

/** ClickHouse error types that mean "these rows can never be inserted", as opposed to an outage. */
const PERMANENT_DATA_ERRORS =
  /^(CANNOT_PARSE_\w+|TYPE_MISMATCH|INCORRECT_DATA|CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN|VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE|ILLEGAL_COLUMN|INCORRECT_NUMBER_OF_COLUMNS|CANNOT_READ_ARRAY_FROM_TEXT|CANNOT_READ_MAP_FROM_TEXT)$/

/** ClickHouse's code and type kept; the data-dir lock gets its own code. */
export function asStoreError(err: unknown): TollgateError {
  if (err instanceof TollgateError) return err
  const message = err instanceof Error ? err.message : String(err)
  const chCode = (err as { code?: unknown; clickhouseCode?: unknown } | null)?.code
  const chType = (err as { type?: unknown } | null)?.type
  if (/Cannot lock file|Another server instance in same directory/i.test(message)) {
    return new TollgateError('TG_ERR_STORE_LOCKED', `the chDB data directory is in use by another process: ${message}`, { cause: err })
  }
  const detail = [chType, chCode].filter((x) => x !== undefined).join(' ')
  if (typeof chType === 'string' && PERMANENT_DATA_ERRORS.test(chType)) {
    return new TollgateError('TG_ERR_STORE_REJECTED', `ClickHouse rejected the rows (${detail}): ${message}`, { cause: err })
  }
  return new TollgateError('TG_ERR_STORE', `ClickHouse error${detail ? ` (${detail})` : ''}: ${message}`, { cause: err })
}

/** A span as a ClickHouse JSONEachRow line (with its newline). */
export function spanToRow(span: Span): string {
  return (
    JSON.stringify({
      span_id: span.span_id,
      started_at: span.started_at,
      ended_at: span.ended_at,
      mode: span.mode,
      provider: span.provider,
      endpoint: span.endpoint,
      request_model: span.request_model,
      response_model: span.response_model,
      stream: span.stream,
      status_code: span.status_code,
      error_type: span.error_type,
      duration_ms: span.duration_ms,
      ttft_ms: span.ttft_ms,
      input_tokens: span.input_tokens,
      output_tokens: span.output_tokens,
      cached_input_tokens: span.cached_input_tokens,
      cache_write_tokens: span.cache_write_tokens,
      reasoning_tokens: span.reasoning_tokens,
      cost_usd: span.cost_usd,
      cost_status: span.cost_status,
      finish_reason: span.finish_reason,
      user: span.user ?? '',
      session: span.session ?? '',
      app: span.app ?? '',
      properties: span.properties,
      request_bytes: span.request_bytes,
      response_bytes: span.response_bytes,
      client_addr: span.client_addr ?? '',
      request_hash: span.request_hash ?? '',
      prefix_hash: span.prefix_hash ?? '',
      prefix_bytes: span.prefix_bytes ?? 0,
      request_body: span.request_body ?? '',
      response_body: span.response_body ?? '',
    }) + '\n'
  )
}

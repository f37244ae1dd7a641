/**
 * Versioned schema migrations from `migrations/NNNN_name.sql`, applied in
 * order at start-up and by `tollgate migrate`, recorded in
 * `schema_migrations`. Idempotent (every statement is IF NOT EXISTS and
 * applied versions are skipped); an applied file whose checksum changed stops
 * the start rather than leaving the schema in an unknown state.
 *
 * Files are templates: `${DB}`, `${ON_CLUSTER}`, `${CLUSTER}` and
 * `${ENGINE:<MergeTree family>}` are filled in for a single server (or chDB) or
 * for a cluster (ON CLUSTER, Replicated engines, Distributed tables). A file
 * whose first line is `-- tollgate:cluster-only` is recorded but not run on a
 * single server.
 */
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ClickHouseClient } from '@clickhouse/client'
import { TollgateError } from '../lib/errors.ts'
import type { Logger } from '../lib/log.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url))

export interface Migration {
  version: number
  name: string
  /** sha256 of the file as written. */
  checksum: string
  clusterOnly: boolean
  template: string
}

export interface SchemaTarget {
  database: string
  /** Cluster name for ON CLUSTER / Replicated / Distributed; undefined = single server. */
  cluster?: string | undefined
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => FILE_NAME.test(f))
    .sort()
    .map((file) => {
      const [, version, name] = FILE_NAME.exec(file) ?? []
      const template = readFileSync(`${dir}/${file}`, 'utf8')
      return {
        version: Number(version),
        name: name ?? file,
        checksum: createHash('sha256').update(template).digest('hex'),
        clusterOnly: template.startsWith('-- tollgate:cluster-only'),
        template,
      }
    })
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/

/** Fills a migration template for the target; returns its statements. */
export function renderMigration(template: string, target: SchemaTarget): string[] {
  assertIdentifier(target.database, 'database')
  if (target.cluster !== undefined) assertIdentifier(target.cluster, 'cluster')
  const sql = template
    .replaceAll('${DB}', quoteIdentifier(target.database))
    .replaceAll('${ON_CLUSTER}', target.cluster ? `ON CLUSTER ${quoteIdentifier(target.cluster)}` : '')
    .replaceAll('${CLUSTER}', target.cluster ? `'${target.cluster}'` : "''")
    // Replicated engines without arguments take the server's default_replica_path/name.
    .replace(/\$\{ENGINE:([A-Za-z]*MergeTree)\}/g, (_m, engine: string) => (target.cluster ? `Replicated${engine}` : engine))
  const leftover = /\$\{[A-Z_:a-z]+\}/.exec(sql)
  if (leftover) throw new TollgateError('TG_ERR_MIGRATION', `unknown template placeholder ${leftover[0]}`)
  const statements = splitStatements(sql)
  // Data backfills read local tables: on a cluster they would fill one shard only.
  return target.cluster ? statements.filter((st) => !st.includes('-- tollgate:single-server-only')) : statements
}

/** Splits on `;` at the end of a line; drops comment-only pieces. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')))
}

export function quoteIdentifier(name: string): string {
  assertIdentifier(name, 'identifier')
  return `\`${name}\``
}

function assertIdentifier(name: string, what: string): void {
  if (!IDENTIFIER.test(name)) throw new TollgateError('TG_ERR_CONFIG_INVALID', `invalid ClickHouse ${what} name "${name}"`)
}

/** The statements that create the database and the migrations ledger. */
export function bootstrapStatements(target: SchemaTarget): string[] {
  const db = quoteIdentifier(target.database)
  const onCluster = target.cluster ? ` ON CLUSTER ${quoteIdentifier(target.cluster)}` : ''
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}${onCluster}`,
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations${onCluster}
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ${target.cluster ? 'ReplicatedMergeTree' : 'MergeTree'} ORDER BY version`,
  ]
}

export interface MigrateResult {
  applied: number[]
  alreadyApplied: number[]
  /** Highest version the schema is at now. */
  version: number
}

/**
 * Brings the schema up to date.
 * @throws TollgateError TG_ERR_MIGRATION when an applied file changed or a statement fails.
 */
export async function migrate(
  client: ClickHouseClient,
  target: SchemaTarget,
  options: { log?: Logger; migrations?: Migration[] } = {},
): Promise<MigrateResult> {
  const migrations = options.migrations ?? loadMigrations()
  for (const statement of bootstrapStatements(target)) await run(client, statement, 'bootstrap')

  const db = quoteIdentifier(target.database)
  const rows = await (
    await client.query({ query: `SELECT version, any(checksum) AS checksum FROM ${db}.schema_migrations GROUP BY version`, format: 'JSONEachRow' })
  ).json<{ version: number; checksum: string }>()
  const recorded = new Map(rows.map((r) => [Number(r.version), r.checksum]))

  const result: MigrateResult = { applied: [], alreadyApplied: [], version: 0 }
  for (const migration of migrations) {
    const label = `${String(migration.version).padStart(4, '0')}_${migration.name}`
    const checksum = recorded.get(migration.version)
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) {
        throw new TollgateError(
          'TG_ERR_MIGRATION',
          `migration ${label} was changed after it was applied (checksum ${checksum.slice(0, 12)} → ${migration.checksum.slice(0, 12)}); add a new migration instead`,
        )
      }
      result.alreadyApplied.push(migration.version)
    } else {
      if (!migration.clusterOnly || target.cluster) {
        for (const statement of renderMigration(migration.template, target)) await run(client, statement, label)
      }
      await client.insert({
        table: `${target.database}.schema_migrations`,
        values: [{ version: migration.version, name: migration.name, checksum: migration.checksum }],
        format: 'JSONEachRow',
      })
      result.applied.push(migration.version)
      options.log?.info({ migration: label }, 'migration applied')
    }
    result.version = migration.version
  }
  return result
}

async function run(client: ClickHouseClient, statement: string, label: string): Promise<void> {
  try {
    await client.command({ query: statement })
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause)
    throw new TollgateError('TG_ERR_MIGRATION', `migration ${label} failed: ${message}`, { cause })
  }
}

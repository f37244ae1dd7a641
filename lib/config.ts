/**
 * Configuration, read once from the environment and `tollgate.config.json`,
 * validated against one schema, defaulted and frozen. Bad config stops the
 * start with every problem listed. Modules take the resulting object; only
 * this file reads `process.env`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { z } from 'zod'
import { TollgateError } from './errors.ts'

const port = z.coerce.number().int().min(0).max(65535)
const positiveMs = z.coerce.number().int().positive()

/** Per-million-token prices, as `@pydantic/genai-prices` names them. */
const priceOverride = z
  .object({
    input_mtok: z.number().nonnegative(),
    output_mtok: z.number().nonnegative(),
    cache_read_mtok: z.number().nonnegative().optional(),
    cache_write_mtok: z.number().nonnegative().optional(),
  })
  .strict()

export const configSchema = z
  .object({
    /** Bind address of both ports. @default '127.0.0.1' */
    host: z.string().min(1).default('127.0.0.1'),
    /** Proxy port (reverse and forward mode). @default 8080 */
    proxyPort: port.default(8080),
    /** Collector API, dashboard and span ingest. @default 8081 */
    uiPort: port.default(8081),
    /** chDB data, spool, CA. @default './.tollgate' */
    dataDir: z.string().min(1).default('./.tollgate'),
    /** A ClickHouse server URL; unset → embedded chDB. */
    clickhouseUrl: z.string().url().optional(),
    /** ClickHouse cluster name: ON CLUSTER DDL, Replicated engines, Distributed tables. */
    clickhouseCluster: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a ClickHouse identifier').optional(),
    /** Days raw spans are kept (rollups are kept longer). @default 90 */
    retentionDays: z.coerce.number().int().min(1).max(3650).default(90),
    /** Where a standalone proxy sends spans; unset → in-process when all-in-one. */
    collectorUrl: z
      .string()
      .refine((s) => s.split(',').every((u) => /^https?:\/\//.test(u.trim()) && URL.canParse(u.trim())), 'one or more http(s) URLs, comma-separated')
      .optional(),
    /** Upstream base per provider id, e.g. `{ openai: 'http://127.0.0.1:9900' }`. */
    upstreams: z.record(z.string(), z.string().url()).default({}),
    /** `off`, `errors` or `all`. @default 'off' */
    captureBodies: z.enum(['off', 'errors', 'all']).default('off'),
    /**
     * Longest silence from the upstream (before headers or between chunks), in
     * ms, before the call is cut and recorded as `timeout`. Reasoning models can
     * think for minutes before the first byte. @default 600000
     */
    upstreamTimeoutMs: positiveMs.default(600_000),
    /** Most distinct `model` label values on /metrics; more fold into `other`. @default 200 */
    maxModelLabels: z.coerce.number().int().positive().default(200),
    /** Price per model (matched exactly, response model first), overriding genai-prices. */
    priceOverrides: z.record(z.string(), priceOverride).default({}),
    /** Forward mode: extra hosts to intercept, host → provider id, e.g. `{ "llm.corp.example": "openai" }`. */
    forwardHosts: z.record(z.string(), z.string()).default({}),
    /** Forward mode: ports a CONNECT may reach (intercepted or tunnelled). @default [443] */
    connectPorts: z.array(z.coerce.number().int().min(1).max(65535)).default([443]),
    /**
     * `user:password` required as Proxy-Authorization (Basic) on forward-mode
     * requests. Set it whenever the proxy binds beyond loopback.
     */
    proxyAuth: z.string().regex(/^[^:]+:.+$/, 'user:password').optional(),
    /** PEM file of extra CA certificates trusted for HTTPS upstreams (private gateways, tests). */
    upstreamCaFile: z.string().optional(),
    /** pino level. @default 'info' */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict()

export type TollgateConfig = Readonly<z.infer<typeof configSchema>>
export type ConfigInput = z.input<typeof configSchema>

const ENV_KEYS: Record<string, keyof ConfigInput> = {
  TOLLGATE_HOST: 'host',
  TOLLGATE_PROXY_PORT: 'proxyPort',
  TOLLGATE_UI_PORT: 'uiPort',
  TOLLGATE_DATA_DIR: 'dataDir',
  TOLLGATE_CLICKHOUSE_URL: 'clickhouseUrl',
  TOLLGATE_CLICKHOUSE_CLUSTER: 'clickhouseCluster',
  TOLLGATE_RETENTION_DAYS: 'retentionDays',
  TOLLGATE_COLLECTOR_URL: 'collectorUrl',
  TOLLGATE_CAPTURE_BODIES: 'captureBodies',
  TOLLGATE_UPSTREAM_TIMEOUT_MS: 'upstreamTimeoutMs',
  TOLLGATE_MAX_MODEL_LABELS: 'maxModelLabels',
  TOLLGATE_LOG_LEVEL: 'logLevel',
  TOLLGATE_PROXY_AUTH: 'proxyAuth',
  TOLLGATE_UPSTREAM_CA_FILE: 'upstreamCaFile',
}

/**
 * Reads `tollgate.config.json` (or `TOLLGATE_CONFIG`) and the environment; env wins.
 * @throws TollgateError TG_ERR_CONFIG_INVALID listing every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): TollgateConfig {
  const file = env.TOLLGATE_CONFIG ? resolve(cwd, env.TOLLGATE_CONFIG) : resolve(cwd, 'tollgate.config.json')
  let fromFile: Record<string, unknown> = {}
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    } catch (cause) {
      throw new TollgateError('TG_ERR_CONFIG_INVALID', `${file} is not valid JSON`, { cause })
    }
  } else if (env.TOLLGATE_CONFIG) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `TOLLGATE_CONFIG names ${file}, which does not exist`)
  }

  const fromEnv: Record<string, unknown> = {}
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = env[name]
    if (value !== undefined && value !== '') fromEnv[key] = value
  }
  const upstreams: Record<string, string> = { ...((fromFile.upstreams as Record<string, string> | undefined) ?? {}) }
  for (const [name, value] of Object.entries(env)) {
    const m = /^TOLLGATE_UPSTREAM_([A-Z0-9_]+)$/.exec(name)
    if (m?.[1] && m[1] !== 'TIMEOUT_MS' && m[1] !== 'CA_FILE' && value) upstreams[m[1].toLowerCase()] = value
  }
  if (env.TOLLGATE_CONNECT_PORTS) fromEnv.connectPorts = env.TOLLGATE_CONNECT_PORTS.split(',').map((p) => p.trim())
  return parseConfig({ ...fromFile, ...fromEnv, upstreams })
}

/** Validates a config object (tests build one directly). */
export function parseConfig(input: ConfigInput | Record<string, unknown>): TollgateConfig {
  const parsed = configSchema.safeParse(input)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `invalid configuration:\n${problems.join('\n')}`, {
      cause: parsed.error,
    })
  }
  return Object.freeze(parsed.data)
}

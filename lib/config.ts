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

/**
 * Thresholds of GET /api/recommendations (collector/recommendations/). Every
 * field has a default, so `{}` (or leaving the option out) is valid.
 */
const thresholdShare = z.number().min(0).max(1)
const thresholdCount = z.number().int().nonnegative()
export const recommendationThresholdsSchema = z
  .object({
    /** Sample sizes (spans) at which confidence becomes medium / high; below medium it is low. */
    confidence: z.object({ medium: thresholdCount.default(200), high: thresholdCount.default(1000) }).strict().prefault({}),
    failover: z
      .object({
        /** Fewest calls on a provider×model before its error rate counts. */
        minRequests: thresholdCount.default(50),
        /** Share of calls failing with 429 / 5xx / timeout / reset / connection failure that fires it. */
        errorRate: thresholdShare.default(0.05),
        /** At or above this share the finding is critical. */
        criticalErrorRate: thresholdShare.default(0.2),
      })
      .strict()
      .prefault({}),
    cheaperModel: z
      .object({
        minRequests: thresholdCount.default(50),
        /** Average output tokens per call at or below which traffic counts as short answers. */
        maxAvgOutputTokens: z.number().nonnegative().default(50),
        /** Output tokens' stddev / mean at or below which the shape counts as classification-like. */
        maxOutputCv: z.number().nonnegative().default(0.5),
        /** input_mtok + output_mtok (USD) from which a model counts as expensive. */
        minPriceMtok: z.number().nonnegative().default(5),
        /** A candidate must cost at most (1 − this) of the current model for the same tokens. */
        minSavingShare: thresholdShare.default(0.5),
      })
      .strict()
      .prefault({}),
    latency: z
      .object({
        /** Fewest successful calls on each side of a comparison. */
        minRequests: thresholdCount.default(50),
        /** p95 ratio (worse / better) that fires it… */
        ratio: z.number().min(1).default(1.5),
        /** …together with at least this absolute p95 difference. */
        minDiffMs: z.number().nonnegative().default(500),
      })
      .strict()
      .prefault({}),
    caching: z
      .object({
        /** Calls beyond the first of identical requests (summed over a provider×model) that fire the response-cache finding. */
        minRepeatCalls: thresholdCount.default(5),
        /** Shortest shared prefix considered for prompt caching (4096 bytes ≈ 1024 tokens). */
        minPrefixBytes: thresholdCount.default(4096),
        /** Calls sharing one prefix before it counts as reusable. */
        minPrefixCalls: thresholdCount.default(3),
        /** Cached share of input at or below which caching counts as unused. */
        maxCachedShare: thresholdShare.default(0.05),
        /** Average input tokens per call from which unused prompt caching is worth a look. */
        minAvgInputTokens: z.number().nonnegative().default(1024),
        /** Fewest successful calls on a provider×model for the unused-caching finding. */
        minRequests: thresholdCount.default(50),
      })
      .strict()
      .prefault({}),
    hygiene: z
      .object({
        /** Calls without usage or price before those findings fire. */
        minCalls: thresholdCount.default(1),
        /** Last-24-hour spend of a user or app over its daily average that counts as a spike… */
        spikeRatio: z.number().min(1).default(3),
        /** …when the last 24 hours also exceed that average by at least this many USD. */
        spikeMinUsd: z.number().nonnegative().default(1),
      })
      .strict()
      .prefault({}),
  })
  .strict()

export type RecommendationThresholds = z.infer<typeof recommendationThresholdsSchema>

/**
 * A spend budget the collector tracks (collector/budgets.ts): spend since the
 * start of the current UTC day or month within a scope, exported as gauges and
 * announced to `webhook_url` at 80% and 100% of `limit_usd`.
 */
export const budgetSchema = z
  .object({
    /** The `budget` label on /metrics and the key in /api/budgets: a short, fixed name (bounded label values). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'letters, digits, _ . : - (at most 64)'),
    /** Which spans count: an app, a user, both (AND), or neither = all traffic. */
    scope: z
      .object({ app: z.string().min(1).max(256).optional(), user: z.string().min(1).max(256).optional() })
      .strict()
      .default({}),
    period: z.enum(['day', 'month']),
    limit_usd: z.number().positive().finite(),
    webhook_url: z
      .string()
      .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), 'an http(s) URL')
      .optional(),
  })
  .strict()

export type BudgetConfig = z.infer<typeof budgetSchema>

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
    /** Thresholds of the routing recommendations (GET /api/recommendations); see README "Routing recommendations". */
    recommendations: recommendationThresholdsSchema.prefault({}),
    /** Spend budgets (also `TOLLGATE_BUDGETS`, the same JSON array); names must be unique. @default [] */
    budgets: z
      .array(budgetSchema)
      .default([])
      .refine((list) => new Set(list.map((b) => b.name)).size === list.length, 'budget names must be unique'),
    /**
     * Nice value (0–19) of a standalone collector's threads (`tollgate collector`):
     * its inserts yield the CPU to the proxy on a shared machine; 0 leaves it alone. @default 10
     */
    collectorNice: z.coerce.number().int().min(0).max(19).default(10),
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
  TOLLGATE_COLLECTOR_NICE: 'collectorNice',
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
  if (env.TOLLGATE_BUDGETS) {
    try {
      fromEnv.budgets = JSON.parse(env.TOLLGATE_BUDGETS) as unknown
    } catch (cause) {
      throw new TollgateError('TG_ERR_CONFIG_INVALID', 'TOLLGATE_BUDGETS is not valid JSON (expected the same array as `budgets` in tollgate.config.json)', { cause })
    }
  }
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

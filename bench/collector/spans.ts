/**
 * Synthetic but realistic spans: several providers, models and endpoints with
 * their real price shapes, streams with TTFT, reasoning and cached tokens, a
 * few percent errors of every kind, unpriced and no-usage calls, apps, a
 * skewed population of users and sessions, properties, request hashes.
 *
 * Cheap to produce at high rates: a pool of templates (everything but the id,
 * the times, the user and the session) is drawn once from a seeded PRNG; each
 * span is then a random UUID, two timestamps, a user and a session glued to a
 * pre-serialised template. The same templates give `Span` objects for the
 * direct loader, so both paths store the same distribution.
 */
import { randomFillSync } from 'node:crypto'
import type { CostStatus, EndpointKind, ErrorType, Span } from '../../collector/schema.ts'

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const MS3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'))

/**
 * Random (v4) UUIDs from a pool of random bytes refilled 64 KiB at a time:
 * crypto.randomUUID costs about as much as the rest of a span on a busy machine.
 */
export class UuidSource {
  private readonly pool = Buffer.allocUnsafe(65_536)
  private at = this.pool.length
  next(): string {
    if (this.at + 16 > this.pool.length) {
      randomFillSync(this.pool)
      this.at = 0
    }
    const b = this.pool
    const o = this.at
    this.at += 16
    const h = HEX
    return `${h[b[o]!]}${h[b[o + 1]!]}${h[b[o + 2]!]}${h[b[o + 3]!]}-${h[b[o + 4]!]}${h[b[o + 5]!]}-4${h[b[o + 6]!]!.charAt(1)}${h[b[o + 7]!]}-${h[(b[o + 8]! & 0x3f) | 0x80]}${h[b[o + 9]!]}-${h[b[o + 10]!]}${h[b[o + 11]!]}${h[b[o + 12]!]}${h[b[o + 13]!]}${h[b[o + 14]!]}${h[b[o + 15]!]}`
  }
}

/** toISOString() with the second's prefix cached: the spans of a batch share their seconds. */
export class IsoClock {
  private second = Number.NaN
  private prefix = ''
  format(ms: number): string {
    const s = Math.floor(ms / 1000)
    if (s !== this.second) {
      this.second = s
      this.prefix = new Date(s * 1000).toISOString().slice(0, 20)
    }
    return `${this.prefix}${MS3[ms - s * 1000]}Z`
  }
  private byteSecond = Number.NaN
  private readonly prefixBytes = new Uint8Array(20)
  /** Writes the 24 ASCII bytes of `format(ms)` at `offset`. */
  write(buf: Buffer, offset: number, ms: number): void {
    const s = Math.floor(ms / 1000)
    const p = this.prefixBytes
    if (s !== this.byteSecond) {
      this.byteSecond = s
      const text = new Date(s * 1000).toISOString()
      for (let i = 0; i < 20; i++) p[i] = text.charCodeAt(i)
    }
    for (let i = 0; i < 20; i++) buf[offset + i] = p[i] as number
    const frac = ms - s * 1000
    buf[offset + 20] = 48 + Math.floor(frac / 100)
    buf[offset + 21] = 48 + (Math.floor(frac / 10) % 10)
    buf[offset + 22] = 48 + (frac % 10)
    buf[offset + 23] = 90 // Z
  }
}

/** A serialised batch and the byte offsets of each span's id and times (24-character ISO strings). */
export interface PatchableBatch {
  buf: Buffer
  ids: Int32Array
  starts: Int32Array
  ends: Int32Array
  durations: Int32Array
}

const HEX_CODES = Array.from({ length: 256 }, (_, i) => [i.toString(16).padStart(2, '0').charCodeAt(0), i.toString(16).padStart(2, '0').charCodeAt(1)])

/**
 * Pre-built batch bodies reused for every send, with fresh random UUIDs and
 * times written over the old ones in place: the cheapest way to produce valid,
 * unique, realistic spans, so the load generator is not what limits the run.
 * A buffer goes back to the pool (`release`) once its request has been answered.
 */
export class BatchPool {
  private readonly free: PatchableBatch[]
  private readonly random = Buffer.allocUnsafe(65_536)
  private at = this.random.length
  private readonly startClock = new IsoClock()
  private readonly endClock = new IsoClock()
  constructor(gen: SpanGenerator, batchSize: number, poolSize: number) {
    this.free = Array.from({ length: poolSize }, () => gen.patchableBatch(batchSize))
  }
  /** A body of spans started at startMs, startMs + stepMs, …; undefined when every buffer is in flight. */
  take(startMs: number, stepMs: number): PatchableBatch | undefined {
    const b = this.free.pop()
    if (!b) return undefined
    const buf = b.buf
    for (let i = 0; i < b.ids.length; i++) {
      this.writeUuid(buf, b.ids[i] as number)
      const start = Math.round(startMs + i * stepMs)
      this.startClock.write(buf, b.starts[i] as number, start)
      this.endClock.write(buf, b.ends[i] as number, start + (b.durations[i] as number))
    }
    return b
  }
  release(b: PatchableBatch): void {
    this.free.push(b)
  }
  private writeUuid(buf: Buffer, offset: number): void {
    if (this.at + 16 > this.random.length) {
      randomFillSync(this.random)
      this.at = 0
    }
    const r = this.random
    let o = offset
    for (let j = 0; j < 16; j++) {
      let byte = r[this.at + j] as number
      if (j === 6) byte = (byte & 0x0f) | 0x40
      else if (j === 8) byte = (byte & 0x3f) | 0x80
      const codes = HEX_CODES[byte] as number[]
      buf[o++] = codes[0] as number
      buf[o++] = codes[1] as number
      if (j === 3 || j === 5 || j === 7 || j === 9) o++ // the '-' already there
    }
    this.at += 16
  }
}

interface ModelSpec {
  provider: string
  endpoint: EndpointKind
  request: string
  response: string
  /** USD per million tokens; null: unknown to the price data (unpriced). */
  price: { in: number; out: number; cached: number; write?: number } | null
  weight: number
  streamShare: number
  reasoning?: boolean
  embeddings?: boolean
  /** Median latency, ms. */
  latencyMs: number
}

const MODELS: ModelSpec[] = [
  { provider: 'openai', endpoint: 'chat', request: 'gpt-4o-mini', response: 'gpt-4o-mini-2024-07-18', price: { in: 0.15, out: 0.6, cached: 0.075 }, weight: 30, streamShare: 0.6, latencyMs: 900 },
  { provider: 'openai', endpoint: 'chat', request: 'gpt-4o', response: 'gpt-4o-2024-08-06', price: { in: 2.5, out: 10, cached: 1.25 }, weight: 10, streamShare: 0.7, latencyMs: 1800 },
  { provider: 'openai', endpoint: 'responses', request: 'gpt-4.1', response: 'gpt-4.1-2025-04-14', price: { in: 2, out: 8, cached: 0.5 }, weight: 8, streamShare: 0.5, latencyMs: 2000 },
  { provider: 'openai', endpoint: 'chat', request: 'o3-mini', response: 'o3-mini-2025-01-31', price: { in: 1.1, out: 4.4, cached: 0.55 }, weight: 4, streamShare: 0.3, reasoning: true, latencyMs: 6000 },
  { provider: 'openai', endpoint: 'embeddings', request: 'text-embedding-3-small', response: 'text-embedding-3-small', price: { in: 0.02, out: 0, cached: 0.02 }, weight: 12, streamShare: 0, embeddings: true, latencyMs: 150 },
  { provider: 'openai', endpoint: 'chat', request: 'ft:gpt-4o-mini:acme:support:9x2', response: 'ft:gpt-4o-mini:acme:support:9x2', price: null, weight: 2, streamShare: 0.5, latencyMs: 1000 },
  { provider: 'anthropic', endpoint: 'messages', request: 'claude-sonnet-4-20250514', response: 'claude-sonnet-4-20250514', price: { in: 3, out: 15, cached: 0.3, write: 3.75 }, weight: 12, streamShare: 0.8, latencyMs: 2500 },
  { provider: 'anthropic', endpoint: 'messages', request: 'claude-3-5-haiku-latest', response: 'claude-3-5-haiku-20241022', price: { in: 0.8, out: 4, cached: 0.08, write: 1 }, weight: 6, streamShare: 0.6, latencyMs: 1100 },
  { provider: 'gemini', endpoint: 'generate', request: 'gemini-2.5-flash', response: 'gemini-2.5-flash', price: { in: 0.3, out: 2.5, cached: 0.075 }, weight: 8, streamShare: 0.5, reasoning: true, latencyMs: 1400 },
  { provider: 'gemini', endpoint: 'generate', request: 'gemini-2.5-pro', response: 'gemini-2.5-pro', price: { in: 1.25, out: 10, cached: 0.31 }, weight: 2, streamShare: 0.5, reasoning: true, latencyMs: 5000 },
  { provider: 'groq', endpoint: 'chat', request: 'llama-3.3-70b-versatile', response: 'llama-3.3-70b-versatile', price: { in: 0.59, out: 0.79, cached: 0.59 }, weight: 3, streamShare: 0.5, latencyMs: 400 },
  { provider: 'mistral', endpoint: 'chat', request: 'mistral-large-latest', response: 'mistral-large-2411', price: { in: 2, out: 6, cached: 2 }, weight: 2, streamShare: 0.4, latencyMs: 1600 },
  { provider: 'deepseek', endpoint: 'chat', request: 'deepseek-chat', response: 'deepseek-chat', price: { in: 0.27, out: 1.1, cached: 0.07 }, weight: 1, streamShare: 0.5, latencyMs: 2200 },
]

const APPS = ['support-bot', 'search', 'summarizer', 'coding-agent', 'doc-qa', 'email-triage', 'analytics', 'onboarding']
const TEAMS = ['growth', 'platform', 'ml', 'support', 'sales', 'finance']
const FEATURES = Array.from({ length: 24 }, (_, i) => `feature-${i}`)

/** [error_type, share, status_code, finish_reason] — 95 % of calls succeed. */
const ERRORS: [ErrorType, number, number][] = [
  ['rate_limited', 0.02, 429],
  ['http_5xx', 0.01, 503],
  ['http_4xx', 0.008, 400],
  ['timeout', 0.005, 0],
  ['client_aborted', 0.003, 200],
  ['upstream_reset', 0.002, 200],
  ['proxy_error', 0.002, 0],
]

/** Log-normal around `median` with spread `sigma`. */
function logNormal(rand: () => number, median: number, sigma: number): number {
  const u = Math.max(rand(), 1e-12)
  const v = rand()
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  return median * Math.exp(sigma * z)
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T
}

export interface Template {
  /** The span without span_id, times, user and session. */
  span: Omit<Span, 'span_id' | 'started_at' | 'ended_at' | 'user' | 'session'>
  durationMs: number
  /** `"…":…` pairs of `span`, serialised, without braces. */
  json: string
}

export interface GeneratorOptions {
  seed?: number
  templates?: number
  users?: number
}

/**
 * Span source. `batchJson` builds a POST /v1/spans body as text; `spans`
 * builds `Span` objects (for the direct loader through `spanToRow`).
 */
export class SpanGenerator {
  readonly templates: Template[]
  private readonly users: string[]
  private readonly rand: () => number
  private readonly userJson: string[]
  private readonly sessionsPerUser = 40
  private readonly uuids = new UuidSource()
  private readonly startClock = new IsoClock()
  private readonly endClock = new IsoClock()

  constructor(options: GeneratorOptions = {}) {
    this.rand = prng(options.seed ?? 42)
    const userCount = options.users ?? 5000
    this.users = Array.from({ length: userCount }, (_, i) => `user-${String(i).padStart(5, '0')}@example.com`)
    this.userJson = this.users.map((u) => JSON.stringify(u))
    const total = MODELS.reduce((s, m) => s + m.weight, 0)
    this.templates = Array.from({ length: options.templates ?? 8192 }, () => {
      let r = this.rand() * total
      let model = MODELS[0] as ModelSpec
      for (const m of MODELS) {
        r -= m.weight
        if (r <= 0) {
          model = m
          break
        }
      }
      return this.template(model)
    })
  }

  private template(m: ModelSpec): Template {
    const rand = this.rand
    let errorType: ErrorType = 'none'
    let statusCode = 200
    let e = rand()
    for (const [type, share, status] of ERRORS) {
      if (e < share) {
        errorType = type
        statusCode = status
        break
      }
      e -= share
    }
    const stream = rand() < m.streamShare
    const failedEarly = errorType !== 'none' && errorType !== 'upstream_reset' && errorType !== 'client_aborted'
    const durationMs = Math.round(failedEarly ? logNormal(rand, errorType === 'timeout' ? 60_000 : 300, 0.5) : logNormal(rand, m.latencyMs, 0.6))
    const inputTokens = Math.max(1, Math.round(logNormal(rand, m.embeddings ? 300 : 1200, 1)))
    const outputTokens = m.embeddings ? 0 : Math.max(1, Math.round(logNormal(rand, 250, 0.9)))
    const cachedTokens = m.embeddings || rand() < 0.6 ? 0 : Math.floor(inputTokens * rand() * 0.8)
    const writeTokens = m.price?.write !== undefined && rand() < 0.1 ? Math.floor((inputTokens - cachedTokens) * 0.5) : 0
    const reasoningTokens = m.reasoning ? Math.floor(outputTokens * rand() * 0.7) : 0
    // A stream without usage (OpenAI without include_usage) or a failure before usage: no_usage.
    const noUsage = failedEarly || (stream && m.provider === 'openai' && rand() < 0.1)
    const hasUsage = !noUsage
    let costStatus: CostStatus = hasUsage ? (m.price ? 'priced' : 'unpriced') : 'no_usage'
    let cost: number | null = null
    if (costStatus === 'priced' && m.price) {
      const p = m.price
      const fresh = inputTokens - cachedTokens - writeTokens
      cost = Math.round(((fresh * p.in + cachedTokens * p.cached + writeTokens * (p.write ?? p.in) + outputTokens * p.out) / 1e6) * 1e9) / 1e9
    }
    if (costStatus === 'priced' && cost === null) costStatus = 'unpriced'
    const ttft = stream && !failedEarly ? Math.min(durationMs, Math.round(logNormal(rand, 450, 0.5))) : null
    const propCount = Math.floor(rand() * 4)
    const properties: Record<string, string> = {}
    if (propCount > 0) properties.env = rand() < 0.9 ? 'prod' : 'staging'
    if (propCount > 1) properties.team = pick(rand, TEAMS)
    if (propCount > 2) properties.feature = pick(rand, FEATURES)
    const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('')
    const span: Template['span'] = {
      mode: rand() < 0.85 ? 'reverse' : 'forward',
      provider: m.provider,
      endpoint: m.endpoint,
      request_model: m.request,
      response_model: failedEarly ? null : m.response,
      stream,
      status_code: statusCode,
      error_type: errorType,
      duration_ms: durationMs,
      ttft_ms: ttft,
      input_tokens: hasUsage ? inputTokens : null,
      output_tokens: hasUsage ? outputTokens : null,
      cached_input_tokens: hasUsage && !m.embeddings ? cachedTokens : null,
      cache_write_tokens: hasUsage && m.price?.write !== undefined ? writeTokens : null,
      reasoning_tokens: hasUsage && m.reasoning ? reasoningTokens : null,
      cost_usd: cost,
      cost_status: costStatus,
      finish_reason: failedEarly ? null : m.embeddings ? null : pick(rand, ['stop', 'stop', 'stop', 'length', 'tool_calls']),
      app: rand() < 0.95 ? pick(rand, APPS) : null,
      properties,
      request_bytes: Math.round(inputTokens * 4.2 + 200),
      response_bytes: failedEarly ? 120 : Math.round(outputTokens * 4.5 + 300),
      client_addr: `10.0.${Math.floor(rand() * 4)}.${Math.floor(rand() * 250) + 1}`,
      request_hash: hex(32),
      prefix_hash: hex(32),
      prefix_bytes: Math.round(inputTokens * 3),
    }
    return { span, durationMs, json: JSON.stringify(span).slice(1, -1) }
  }

  /** A user index skewed towards the first users (a few heavy users, a long tail); -1 = unattributed (8 %). */
  private userIndex(): number {
    const r = this.rand()
    if (r < 0.08) return -1
    const x = this.rand()
    return Math.floor(x * x * x * this.users.length)
  }

  /**
   * A POST /v1/spans body: `n` spans whose started_at runs from `startMs`
   * (`stepMs` apart), each with a fresh random UUID.
   */
  batchJson(n: number, startMs: number, stepMs: number): string {
    const parts: string[] = new Array<string>(n)
    const tpls = this.templates
    for (let i = 0; i < n; i++) {
      const t = tpls[Math.floor(this.rand() * tpls.length)] as Template
      const start = Math.round(startMs + i * stepMs)
      const u = this.userIndex()
      const who = u < 0 ? '"user":null,"session":null' : `"user":${this.userJson[u]},"session":"s-${u}-${Math.floor(this.rand() * this.sessionsPerUser)}"`
      parts[i] = `{"span_id":"${this.uuids.next()}","started_at":"${this.startClock.format(start)}","ended_at":"${this.endClock.format(start + t.durationMs)}",${who},${t.json}}`
    }
    return `[${parts.join(',')}]`
  }

  /** `n` Span objects, started_at from `startMs`, `stepMs` apart. */
  spans(n: number, startMs: number, stepMs: number): Span[] {
    const out: Span[] = new Array<Span>(n)
    const tpls = this.templates
    for (let i = 0; i < n; i++) {
      const t = tpls[Math.floor(this.rand() * tpls.length)] as Template
      const start = Math.round(startMs + i * stepMs)
      const u = this.userIndex()
      out[i] = {
        span_id: this.uuids.next(),
        started_at: this.startClock.format(start),
        ended_at: this.endClock.format(start + t.durationMs),
        user: u < 0 ? null : (this.users[u] ?? null),
        session: u < 0 ? null : `s-${u}-${Math.floor(this.rand() * this.sessionsPerUser)}`,
        ...t.span,
      }
    }
    return out
  }

  /**
   * The same body as `batchJson`, written straight into a Buffer: template
   * bytes are copied, only the id, times, user and session are encoded. Avoids
   * building and then UTF-8 encoding a large string (the generator's main cost).
   */
  batchBuffer(n: number, startMs: number, stepMs: number): Buffer {
    const tplBytes = this.templateBytes()
    let size = 2
    const chosen = new Uint16Array(n)
    for (let i = 0; i < n; i++) {
      const k = Math.floor(this.rand() * tplBytes.length)
      chosen[i] = k
      size += (tplBytes[k] as Buffer).length + 256
    }
    const buf = Buffer.allocUnsafe(size)
    let at = 0
    buf[at++] = 0x5b // [
    for (let i = 0; i < n; i++) {
      const k = chosen[i] as number
      const t = this.templates[k] as Template
      const start = Math.round(startMs + i * stepMs)
      const u = this.userIndex()
      const who = u < 0 ? '"user":null,"session":null' : `"user":${this.userJson[u]},"session":"s-${u}-${Math.floor(this.rand() * this.sessionsPerUser)}"`
      if (i > 0) buf[at++] = 0x2c // ,
      at += buf.write(`{"span_id":"${this.uuids.next()}","started_at":"${this.startClock.format(start)}","ended_at":"${this.endClock.format(start + t.durationMs)}",${who},`, at, 'latin1')
      at += (tplBytes[k] as Buffer).copy(buf, at)
      buf[at++] = 0x7d // }
    }
    buf[at++] = 0x5d // ]
    return buf.subarray(0, at)
  }

  /**
   * A body built once with `batchBuffer`, and where its ids and times sit, so
   * `BatchPool` can rewrite just those bytes for every send.
   */
  patchableBatch(n: number): PatchableBatch {
    const buf = Buffer.from(this.batchBuffer(n, 0, 1))
    const ids: number[] = []
    const starts: number[] = []
    const ends: number[] = []
    const durations: number[] = []
    const find = (needle: string, from: number): number => buf.indexOf(needle, from, 'latin1')
    let at = 0
    for (let i = 0; i < n; i++) {
      const id = find('{"span_id":"', at) + 12
      const start = find('"started_at":"', id) + 14
      const end = find('"ended_at":"', start) + 12
      ids.push(id)
      starts.push(start)
      ends.push(end)
      durations.push(Date.parse(buf.toString('latin1', end, end + 24)) - Date.parse(buf.toString('latin1', start, start + 24)))
      at = end
    }
    return { buf, ids: Int32Array.from(ids), starts: Int32Array.from(starts), ends: Int32Array.from(ends), durations: Int32Array.from(durations) }
  }

  private tplBytesCache: Buffer[] | null = null
  private templateBytes(): Buffer[] {
    this.tplBytesCache ??= this.templates.map((t) => Buffer.from(t.json, 'utf8'))
    return this.tplBytesCache
  }

  /** Some user that exists, for the filtered /api/spans page. */
  heavyUser(): string {
    return this.users[0] ?? 'user-00000@example.com'
  }
}

/**
 * Validation of span batches posted to `POST /v1/spans`. Spans arrive from
 * standalone proxies and from anyone else who speaks the contract, so nothing
 * here trusts the sender: each span is checked on its own, and one bad span is
 * reported without costing the batch its good ones.
 */
import { z } from 'zod'
import { COST_STATUSES, ENDPOINT_KINDS, ERROR_TYPES, SPAN_MODES, type Span } from './schema.ts'

/** A span the collector refused: its position in the batch, the first bad field's path, why. */
export interface Rejection {
  index: number
  /** Dotted path such as `input_tokens` or `properties.team`; '' when the span itself is not an object. */
  field: string
  message: string
}

/** What a batch turned into; `error` means the request as a whole was refused. */
export type BatchResult = { spans: Span[]; rejected: Rejection[] } | { error: string }

export interface BatchLimits {
  /** Largest batch accepted; default 10 000. */
  maxSpans?: number
}

export const DEFAULT_MAX_SPANS = 10_000

/** Property caps: the map becomes a ClickHouse `Map` column and bloom-filter index, so it stays small. */
export const PROPERTY_LIMITS = { maxKeys: 64, maxKeyLength: 128, maxValueLength: 1024 } as const

// DateTime64(3) stores 1900-01-01 … 2299-12-31; outside that ClickHouse wraps silently, so refuse instead.
const MIN_TIME_MS = Date.UTC(1900, 0, 1)
const MAX_TIME_MS = Date.UTC(2300, 0, 1) - 1

function cappedString(max: number, min = 0) {
  return z
    .string()
    .min(min, min === 1 ? 'must not be empty' : `shorter than ${min} characters`)
    .max(max, `longer than ${max} characters`)
}

/** Nullable in the contract; a sender that leaves the field out means null too. */
function nullableString(max: number) {
  return cappedString(max).nullable().default(null)
}

const count = z.int('expected a whole number').min(0, 'must not be negative')
// Token columns are UInt32: a larger count could never be stored, so it is refused here.
const nullableCount = count.max(4_294_967_295, 'too large for a token count').nullable().default(null)
const hash = z.string().regex(/^[0-9a-f]{8,64}$/, 'expected a lower-case hex hash').nullable().optional()
const milliseconds = z.number().min(0, 'must not be negative')

const timestamp = z.iso
  .datetime({ offset: true, message: 'expected an ISO-8601 date-time with a time zone (Z or ±hh:mm)' })
  .transform((value, ctx) => {
    const ms = Date.parse(value)
    if (!(ms >= MIN_TIME_MS && ms <= MAX_TIME_MS)) {
      ctx.addIssue({ code: 'custom', message: 'outside the storable range 1900–2299' })
      return z.NEVER
    }
    // One spelling (UTC, milliseconds) so equal instants compare and sort equal downstream.
    return new Date(ms).toISOString()
  })

const properties = z
  .record(z.string(), z.unknown(), 'expected an object of string values')
  .superRefine((props, ctx) => {
    const keys = Object.keys(props)
    if (keys.length > PROPERTY_LIMITS.maxKeys) {
      ctx.addIssue({ code: 'custom', message: `has ${keys.length} keys; at most ${PROPERTY_LIMITS.maxKeys} are allowed` })
      return
    }
    for (const key of keys) {
      const value = props[key]
      const problem =
        key.length === 0
          ? 'property name must not be empty'
          : key.length > PROPERTY_LIMITS.maxKeyLength
            ? `property name longer than ${PROPERTY_LIMITS.maxKeyLength} characters`
            : typeof value !== 'string'
              ? `expected a string value, received ${describe(value)}`
              : value.length > PROPERTY_LIMITS.maxValueLength
                ? `value longer than ${PROPERTY_LIMITS.maxValueLength} characters`
                : null
      if (problem !== null) {
        ctx.addIssue({ code: 'custom', path: [key], message: problem })
        return
      }
    }
  })
  // Every value is a string once the refinement passed; the pipe only narrows the type.
  .pipe(z.record(z.string(), z.string()))
  .default({})

/**
 * The contract's span (collector/schema.ts) as a zod schema. Parsing fills
 * missing nullable fields with null and a missing `properties` with `{}`,
 * lower-cases `span_id`, rewrites times to `toISOString()` form and drops
 * unknown fields, so newer senders still get through.
 */
export const spanSchema = z
  .object({
    // RFC 9562 form; lower-cased so a retry spelled in upper case still deduplicates.
    span_id: z.uuid('expected a UUID').transform((id) => id.toLowerCase()),
    started_at: timestamp,
    ended_at: timestamp,
    mode: z.enum(SPAN_MODES),
    provider: cappedString(64, 1),
    endpoint: z.enum(ENDPOINT_KINDS),
    request_model: nullableString(256),
    response_model: nullableString(256),
    stream: z.boolean(),
    status_code: z.int('expected a whole number').min(0, 'must not be negative').max(999, 'not an HTTP status'),
    error_type: z.enum(ERROR_TYPES),
    duration_ms: milliseconds,
    ttft_ms: milliseconds.nullable().default(null),
    input_tokens: nullableCount,
    output_tokens: nullableCount,
    cached_input_tokens: nullableCount,
    cache_write_tokens: nullableCount,
    reasoning_tokens: nullableCount,
    cost_usd: z.number().min(0, 'must not be negative').nullable().default(null),
    cost_status: z.enum(COST_STATUSES),
    finish_reason: nullableString(256),
    user: nullableString(256),
    session: nullableString(256),
    app: nullableString(256),
    properties,
    request_bytes: count,
    response_bytes: count,
    client_addr: nullableString(256),
    request_hash: hash,
    prefix_hash: hash,
    prefix_bytes: count.nullable().optional(),
    request_body: z.string().max(262_144, 'longer than 256 KiB').nullable().optional(),
    response_body: z.string().max(262_144, 'longer than 256 KiB').nullable().optional(),
  })
  .superRefine((span, ctx) => {
    // schema.ts: "null unless cost_status is 'priced'". A cost without that status would be summed as real.
    if (span.cost_status === 'priced' && span.cost_usd === null) {
      ctx.addIssue({ code: 'custom', path: ['cost_usd'], message: "required when cost_status is 'priced'" })
    } else if (span.cost_status !== 'priced' && span.cost_usd !== null) {
      ctx.addIssue({ code: 'custom', path: ['cost_usd'], message: `must be null when cost_status is '${span.cost_status}'` })
    }
  })

// Compile-time guard: the schema's output is exactly the Span type, so a change to schema.ts breaks the build here.
type Exactly<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const schemaMatchesSpan: Exactly<z.output<typeof spanSchema>, Span> = true
void schemaMatchesSpan

/** Zod's wording for an absent field ("expected string, received undefined") reads oddly to a sender. */
const parseOptions = {
  error: (issue: { input?: unknown; code?: string }) =>
    issue.input === undefined && issue.code === 'invalid_type' ? 'required' : undefined,
}

/** Checks one span. `field` is the first bad field's dotted path. */
export function parseSpan(value: unknown): { ok: true; span: Span } | { ok: false; field: string; message: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, field: '', message: `expected a span object, received ${describe(value)}` }
  }
  const parsed = spanSchema.safeParse(value, parseOptions)
  if (parsed.success) return { ok: true, span: parsed.data }
  const [first, ...others] = parsed.error.issues
  const field = first ? first.path.map(String).join('.') : ''
  const more = others.length > 0 ? ` (and ${others.length} more ${others.length === 1 ? 'issue' : 'issues'})` : ''
  return { ok: false, field, message: `${first?.message ?? 'invalid span'}${more}` }
}

/**
 * Validates a `POST /v1/spans` body: a JSON array of spans.
 * @returns the valid spans (normalised) and, for each invalid one, its index,
 *   first bad field and a readable message; or `{ error }` when the body is not
 *   an array or holds more than `limits.maxSpans` (default 10 000) entries.
 * @example validateSpanBatch('{}') // { error: 'expected a JSON array of spans, received string' }
 */
export function validateSpanBatch(body: unknown, limits: BatchLimits = {}): BatchResult {
  const maxSpans = limits.maxSpans ?? DEFAULT_MAX_SPANS
  if (!Array.isArray(body)) return { error: `expected a JSON array of spans, received ${describe(body)}` }
  if (body.length > maxSpans) {
    return { error: `batch of ${body.length} spans exceeds the limit of ${maxSpans}; split it into smaller batches` }
  }
  const spans: Span[] = []
  const rejected: Rejection[] = []
  body.forEach((item: unknown, index) => {
    // zod took ~45% of the collector's CPU at 15k spans/s: the common,
    // canonical shape is checked by hand first, anything else goes to zod.
    const fast = fastSpan(item)
    if (fast) {
      spans.push(fast)
      return
    }
    const result = parseSpan(item)
    if (result.ok) spans.push(result.span)
    else rejected.push({ index, field: result.field, message: result.message })
  })
  return { spans, rejected }
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/
const HASH_RE = /^[0-9a-f]{8,64}$/
const MODES: ReadonlySet<unknown> = new Set(SPAN_MODES)
const ENDPOINTS: ReadonlySet<unknown> = new Set(ENDPOINT_KINDS)
const ERRORS: ReadonlySet<unknown> = new Set(ERROR_TYPES)
const COSTS: ReadonlySet<unknown> = new Set(COST_STATUSES)
const U32 = 4_294_967_295

/** `undefined` = not the fast shape (let zod decide); otherwise the normalised value. */
function optString(v: unknown, max: number): string | null | undefined {
  if (v === undefined || v === null) return null
  return typeof v === 'string' && v.length <= max ? v : undefined
}
function optCount(v: unknown, max: number): number | null | undefined {
  if (v === undefined || v === null) return null
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max ? v : undefined
}
function optMs(v: unknown): number | null | undefined {
  if (v === undefined || v === null) return null
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined
}
// Hours, minutes and seconds in range; the date part is checked (and cached) apart.
const ISO_TIME_OF_DAY = /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/
/** Date part (`yyyy-mm-dd`) → whether it is a real, storable day. Spans of a batch share a few days. */
const validDays = new Map<string, boolean>()

function time(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length !== 24 || !ISO_TIME_OF_DAY.test(v)) return undefined
  // Date.parse and toISOString per timestamp were a tenth of ingest CPU; a
  // day's validity is the same for all its timestamps, so it is decided once.
  const day = v.slice(0, 10)
  let valid = validDays.get(day)
  if (valid === undefined) {
    const probe = `${day}T00:00:00.000Z`
    const ms = Date.parse(probe)
    // zod rewrites to toISOString(); the fast path only takes values already in that form.
    valid = ms >= MIN_TIME_MS && ms <= MAX_TIME_MS && new Date(ms).toISOString() === probe
    if (validDays.size >= 4096) validDays.clear()
    validDays.set(day, valid)
  }
  return valid ? v : undefined
}

/**
 * The span when it is plainly valid and already in normal form (what
 * `spanSchema` would output, field for field); null when zod must look at it
 * (anything invalid, unusual or needing normalisation), so messages and edge
 * cases stay zod's. test/collector/validate.test.ts holds it to zod's verdict
 * on valid spans and on every single-field mutation of them.
 */
export function fastSpan(value: unknown): Span | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const o = value as Record<string, unknown>
  const spanId = o.span_id
  if (typeof spanId !== 'string' || !UUID_RE.test(spanId)) return null
  const startedAt = time(o.started_at)
  const endedAt = time(o.ended_at)
  if (startedAt === undefined || endedAt === undefined) return null
  if (!MODES.has(o.mode) || !ENDPOINTS.has(o.endpoint) || !ERRORS.has(o.error_type) || !COSTS.has(o.cost_status)) return null
  const provider = o.provider
  if (typeof provider !== 'string' || provider.length < 1 || provider.length > 64) return null
  if (typeof o.stream !== 'boolean') return null
  const status = o.status_code
  if (typeof status !== 'number' || !Number.isSafeInteger(status) || status < 0 || status > 999) return null
  const duration = o.duration_ms
  if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 0) return null
  const requestModel = optString(o.request_model, 256)
  const responseModel = optString(o.response_model, 256)
  const finishReason = optString(o.finish_reason, 256)
  const user = optString(o.user, 256)
  const session = optString(o.session, 256)
  const app = optString(o.app, 256)
  const clientAddr = optString(o.client_addr, 256)
  const ttft = optMs(o.ttft_ms)
  const input = optCount(o.input_tokens, U32)
  const output = optCount(o.output_tokens, U32)
  const cached = optCount(o.cached_input_tokens, U32)
  const write = optCount(o.cache_write_tokens, U32)
  const reasoning = optCount(o.reasoning_tokens, U32)
  const cost = optMs(o.cost_usd)
  if (
    requestModel === undefined || responseModel === undefined || finishReason === undefined || user === undefined || session === undefined ||
    app === undefined || clientAddr === undefined || ttft === undefined || input === undefined || output === undefined || cached === undefined ||
    write === undefined || reasoning === undefined || cost === undefined
  ) return null
  if ((o.cost_status === 'priced') !== (cost !== null)) return null
  const requestBytes = o.request_bytes
  const responseBytes = o.response_bytes
  if (typeof requestBytes !== 'number' || !Number.isSafeInteger(requestBytes) || requestBytes < 0) return null
  if (typeof responseBytes !== 'number' || !Number.isSafeInteger(responseBytes) || responseBytes < 0) return null
  let properties: Record<string, string> = {}
  const props = o.properties
  if (props !== undefined) {
    if (typeof props !== 'object' || props === null || Array.isArray(props) || Object.getPrototypeOf(props) !== Object.prototype) return null
    const keys = Object.keys(props)
    if (keys.length > PROPERTY_LIMITS.maxKeys) return null
    properties = {}
    for (const k of keys) {
      const v = (props as Record<string, unknown>)[k]
      if (k.length === 0 || k.length > PROPERTY_LIMITS.maxKeyLength || k === '__proto__' || typeof v !== 'string' || v.length > PROPERTY_LIMITS.maxValueLength) return null
      properties[k] = v
    }
  }
  const span: Span = {
    span_id: spanId.toLowerCase(),
    started_at: startedAt,
    ended_at: endedAt,
    mode: o.mode as Span['mode'],
    provider,
    endpoint: o.endpoint as Span['endpoint'],
    request_model: requestModel,
    response_model: responseModel,
    stream: o.stream,
    status_code: status,
    error_type: o.error_type as Span['error_type'],
    duration_ms: duration,
    ttft_ms: ttft,
    input_tokens: input,
    output_tokens: output,
    cached_input_tokens: cached,
    cache_write_tokens: write,
    reasoning_tokens: reasoning,
    cost_usd: cost,
    cost_status: o.cost_status as Span['cost_status'],
    finish_reason: finishReason,
    user,
    session,
    app,
    properties,
    request_bytes: requestBytes,
    response_bytes: responseBytes,
    client_addr: clientAddr,
  }
  // Optional in the schema: absent stays absent, as zod leaves it.
  for (const key of ['request_hash', 'prefix_hash'] as const) {
    const h = o[key]
    if (h === undefined) continue
    if (h !== null && (typeof h !== 'string' || !HASH_RE.test(h))) return null
    span[key] = h
  }
  for (const key of ['request_body', 'response_body'] as const) {
    const b = o[key]
    if (b === undefined) continue
    if (b !== null && (typeof b !== 'string' || b.length > 262_144)) return null
    span[key] = b
  }
  if (o.prefix_bytes !== undefined) {
    const pb = o.prefix_bytes
    if (pb !== null && (typeof pb !== 'number' || !Number.isSafeInteger(pb) || pb < 0)) return null
    span.prefix_bytes = pb
  }
  return span
}

/** A JSON-ish type name for messages: `null`, `array`, `object`, `string`, … */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

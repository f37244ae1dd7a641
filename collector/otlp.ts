/**
 * OTLP/HTTP JSON traces (`POST /v1/traces`) → Tollgate spans. Apps that are
 * already instrumented with OpenTelemetry's GenAI conventions report their LLM
 * calls here instead of through the proxy. Only spans carrying `gen_ai.*`
 * attributes are LLM calls; the rest of a trace is skipped without complaint.
 *
 * collector/ never imports proxy/, so the OTel → Tollgate provider names live here.
 */
import { createHash } from 'node:crypto'
import type { EndpointKind, ErrorType, Span } from './schema.ts'
import { DEFAULT_MAX_SPANS, describe, parseSpan, type BatchLimits, type BatchResult, type Rejection } from './validate.ts'

/** OTel `gen_ai.provider.name` / `gen_ai.system` → Tollgate provider id; anything else is kept, lower-cased. */
const PROVIDER_IDS: ReadonlyMap<string, string> = new Map([
  ['openai', 'openai'],
  ['anthropic', 'anthropic'],
  ['gcp.gemini', 'gemini'],
  ['gcp.vertex_ai', 'gemini'],
  ['gemini', 'gemini'],
  ['groq', 'groq'],
  ['mistral_ai', 'mistral'],
  ['deepseek', 'deepseek'],
  ['openrouter', 'openrouter'],
  ['together', 'together'],
  ['together_ai', 'together'],
  ['fireworks', 'fireworks'],
  ['x_ai', 'xai'],
  ['xai', 'xai'],
  ['azure.ai.openai', 'azure'],
  ['az.ai.openai', 'azure'],
  ['azure', 'azure'],
  ['aws.bedrock', 'bedrock'],
])

/** When a sender names no provider, `server.address` often still does (host suffix → id). */
const PROVIDER_HOSTS: readonly (readonly [string, string])[] = [
  ['.openai.azure.com', 'azure'],
  ['api.openai.com', 'openai'],
  ['api.anthropic.com', 'anthropic'],
  ['generativelanguage.googleapis.com', 'gemini'],
  ['api.groq.com', 'groq'],
  ['api.mistral.ai', 'mistral'],
  ['api.deepseek.com', 'deepseek'],
  ['openrouter.ai', 'openrouter'],
  ['api.together.xyz', 'together'],
  ['api.fireworks.ai', 'fireworks'],
  ['api.x.ai', 'xai'],
]

/**
 * `gen_ai.operation.name` → endpoint. Anthropic's `chat` stays `chat` even
 * though the proxy records Anthropic calls as `messages`: the operation name
 * says what was done, not which URL served it, and guessing the URL would be
 * wrong for Anthropic models reached through Bedrock or Vertex.
 */
const ENDPOINTS: ReadonlyMap<string, EndpointKind> = new Map([
  ['chat', 'chat'],
  ['text_completion', 'chat'],
  ['completion', 'chat'],
  ['generate_content', 'generate'],
  ['embeddings', 'embeddings'],
  ['embedding', 'embeddings'],
  ['responses', 'responses'],
])

/**
 * GenAI operations that are not a model call. Counting them would inflate
 * request counts and, where an agent span sums its children's usage, count
 * tokens twice. `invoke_agent` is only skipped in-process (span kind INTERNAL);
 * as a CLIENT span it is a call to a remote agent service and is kept.
 */
const NOT_MODEL_CALLS: ReadonlySet<string> = new Set(['execute_tool', 'create_agent'])

const SPAN_KIND_INTERNAL = 1
const STATUS_CODE_ERROR = 2

/** Namespace for span ids derived from OTLP ids (a fixed random UUID; changing it changes every derived id). */
const OTLP_NAMESPACE = Buffer.from('6f1e4bde4f5a4c6e9a51c2d0b7e3a8f4', 'hex')

/** Properties every OTLP span carries, so a query can tell them from proxied calls. */
export const OTLP_SOURCE_PROPERTY = { key: 'source', value: 'otlp' } as const

/** A decoded OTLP AnyValue; kvlist and bytes values are not used by the mapping and decode to undefined. */
type AttrValue = string | number | boolean | readonly (string | number | boolean)[]

/** A bad value in one span; `field` names the attribute or OTLP field. */
class FieldError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.field = field
  }
}

/**
 * Converts an OTLP/HTTP JSON `ExportTraceServiceRequest` into spans.
 *
 * - `span_id` is a UUIDv5 of `traceId:spanId`, so a re-sent OTLP span keeps its id.
 * - Spans without a `gen_ai.*` attribute, and GenAI tool/agent spans that are
 *   not model calls, are skipped: neither returned nor rejected.
 * - `mode` is `reverse` (the enum has nothing better); such spans carry the
 *   property `source=otlp`, plus `otel.trace_id` / `otel.span_id` for finding
 *   the original trace. Attributes `tollgate.property.<name>` become properties.
 * - Cost: when the sender reports `gen_ai.usage.cost` (USD) the span is
 *   `priced` with it; otherwise `cost_usd` is null and `cost_status` is
 *   `no_usage` (no token counts) or `unpriced` — pricing them is the caller's job.
 * - `rejected[].index` counts every span in the request in order
 *   (resourceSpans → scopeSpans → spans, skipped ones included); `field` is the
 *   offending attribute key (e.g. `gen_ai.usage.input_tokens`), OTLP field
 *   (`endTimeUnixNano`) or, from the final check, span field.
 * @returns `{ error }` when the request's structure is wrong or it holds more
 *   than `limits.maxSpans` (default 10 000) spans.
 */
export function otlpTracesToSpans(body: unknown, limits: BatchLimits = {}): BatchResult {
  const maxSpans = limits.maxSpans ?? DEFAULT_MAX_SPANS
  const flat = flattenRequest(body)
  if ('error' in flat) return flat
  if (flat.length > maxSpans) {
    return { error: `request of ${flat.length} spans exceeds the limit of ${maxSpans}; lower the exporter's batch size` }
  }
  const spans: Span[] = []
  const rejected: Rejection[] = []
  flat.forEach(({ span, resource }, index) => {
    try {
      const candidate = toSpan(span, resource)
      if (candidate === null) return
      // The same checks and normalisation as POST /v1/spans, so both doors store the same shapes.
      const checked = parseSpan(candidate)
      if (checked.ok) spans.push(checked.span)
      else rejected.push({ index, field: checked.field, message: checked.message })
    } catch (error) {
      if (!(error instanceof FieldError)) throw error
      rejected.push({ index, field: error.field, message: error.message })
    }
  })
  return { spans, rejected }
}

interface FlatSpan {
  span: unknown
  resource: ReadonlyMap<string, AttrValue>
}

/** Walks resourceSpans → scopeSpans → spans; structural faults above the span level refuse the request. */
function flattenRequest(body: unknown): FlatSpan[] | { error: string } {
  if (!isRecord(body)) return { error: `expected an OTLP ExportTraceServiceRequest JSON object, received ${describe(body)}` }
  // Protobuf JSON omits empty repeated fields, so `{}` is a valid, empty export.
  const resourceSpans = body['resourceSpans'] ?? []
  if (!Array.isArray(resourceSpans)) return { error: `resourceSpans: expected an array, received ${describe(resourceSpans)}` }
  const flat: FlatSpan[] = []
  for (const [r, entry] of resourceSpans.entries()) {
    if (!isRecord(entry)) return { error: `resourceSpans[${r}]: expected an object, received ${describe(entry)}` }
    const resourceNode = entry['resource'] ?? {}
    if (!isRecord(resourceNode)) return { error: `resourceSpans[${r}].resource: expected an object, received ${describe(resourceNode)}` }
    const rawAttributes = resourceNode['attributes'] ?? []
    if (!Array.isArray(rawAttributes)) {
      return { error: `resourceSpans[${r}].resource.attributes: expected an array, received ${describe(rawAttributes)}` }
    }
    const resource = decodeAttributes(rawAttributes)
    const scopeSpans = entry['scopeSpans'] ?? []
    if (!Array.isArray(scopeSpans)) {
      return { error: `resourceSpans[${r}].scopeSpans: expected an array, received ${describe(scopeSpans)}` }
    }
    for (const [s, scope] of scopeSpans.entries()) {
      if (!isRecord(scope)) return { error: `resourceSpans[${r}].scopeSpans[${s}]: expected an object, received ${describe(scope)}` }
      const spans = scope['spans'] ?? []
      if (!Array.isArray(spans)) {
        return { error: `resourceSpans[${r}].scopeSpans[${s}].spans: expected an array, received ${describe(spans)}` }
      }
      for (const span of spans) flat.push({ span, resource })
    }
  }
  return flat
}

/** One OTLP span → a candidate Span (checked afterwards), or null when it is not an LLM call. */
function toSpan(raw: unknown, resource: ReadonlyMap<string, AttrValue>): Span | null {
  if (!isRecord(raw)) throw new FieldError('', `expected an OTLP span object, received ${describe(raw)}`)
  const rawAttributes = raw['attributes'] ?? []
  if (!Array.isArray(rawAttributes)) throw new FieldError('attributes', `expected an array, received ${describe(rawAttributes)}`)
  const own = decodeAttributes(rawAttributes)
  if (![...own.keys()].some((key) => key.startsWith('gen_ai.'))) return null
  const attrs = new Attributes(own, resource)

  const operation = attrs.text('gen_ai.operation.name')?.toLowerCase() ?? null
  if (operation !== null && NOT_MODEL_CALLS.has(operation)) return null
  if (operation === 'invoke_agent' && spanKind(raw['kind']) === SPAN_KIND_INTERNAL) return null

  const traceId = requiredId(raw, 'traceId')
  const otelSpanId = requiredId(raw, 'spanId')
  const start = nanos(raw['startTimeUnixNano'], 'startTimeUnixNano')
  const end = nanos(raw['endTimeUnixNano'], 'endTimeUnixNano')
  if (end < start) throw new FieldError('endTimeUnixNano', 'is before startTimeUnixNano')

  const provider = providerId(attrs)
  const statusCode = attrs.count('http.response.status_code') ?? 0
  const inputTokens = attrs.count('gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens')
  const outputTokens = attrs.count('gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens')
  const reportedCost = attrs.amount('gen_ai.usage.cost')
  const ttftSeconds = attrs.amount('gen_ai.response.time_to_first_chunk', 'gen_ai.server.time_to_first_token')
  const failed = statusIsError(raw['status'])

  const properties: Record<string, string> = {}
  // Resource first, so OTEL_RESOURCE_ATTRIBUTES can tag a whole service and a span can override it.
  for (const [key, value] of [...resource, ...own]) {
    if (key.startsWith('tollgate.property.') && key.length > 'tollgate.property.'.length) {
      properties[key.slice('tollgate.property.'.length)] = scalarText(key, value)
    }
  }
  // Set last so a sender's tollgate.property.source cannot pass an OTLP span off as proxied.
  properties['otel.trace_id'] = traceId
  properties['otel.span_id'] = otelSpanId
  properties[OTLP_SOURCE_PROPERTY.key] = OTLP_SOURCE_PROPERTY.value

  return {
    span_id: deriveSpanId(traceId, otelSpanId),
    started_at: isoFromNanos(start, 'startTimeUnixNano'),
    ended_at: isoFromNanos(end, 'endTimeUnixNano'),
    mode: 'reverse',
    provider,
    endpoint: (operation !== null ? ENDPOINTS.get(operation) : undefined) ?? 'other',
    request_model: attrs.text('gen_ai.request.model'),
    response_model: attrs.text('gen_ai.response.model'),
    stream: attrs.flag('gen_ai.request.stream') ?? false,
    status_code: statusCode,
    error_type: errorType(attrs.text('error.type'), statusCode, failed),
    duration_ms: round3(Number(end - start) / 1e6),
    ttft_ms: ttftSeconds === null ? null : round3(ttftSeconds * 1000),
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    cached_input_tokens: attrs.count(
      'gen_ai.usage.cache_read.input_tokens',
      'gen_ai.usage.cache_read_input_tokens',
      'gen_ai.usage.cached_tokens',
    ),
    cache_write_tokens: attrs.count(
      'gen_ai.usage.cache_creation.input_tokens',
      'gen_ai.usage.cache_write.input_tokens',
      'gen_ai.usage.cache_creation_input_tokens',
    ),
    reasoning_tokens: attrs.count('gen_ai.usage.reasoning.output_tokens', 'gen_ai.usage.reasoning_tokens'),
    cost_usd: reportedCost,
    cost_status: reportedCost !== null ? 'priced' : inputTokens === null && outputTokens === null ? 'no_usage' : 'unpriced',
    finish_reason: attrs.firstText('gen_ai.response.finish_reasons'),
    user: attrs.text('user.id', 'enduser.id'),
    session: attrs.text('session.id', 'gen_ai.conversation.id'),
    app: attrs.text('tollgate.app', 'app', 'service.name'),
    properties,
    request_bytes: 0,
    response_bytes: 0,
    client_addr: attrs.text('client.address'),
  }
}

/**
 * Typed reads of a span's attributes, falling back to its resource's (where
 * `service.name` lives). Each getter takes keys in order of preference, returns
 * null when none is present and throws FieldError for a value of the wrong kind.
 */
class Attributes {
  readonly #own: ReadonlyMap<string, AttrValue>
  readonly #resource: ReadonlyMap<string, AttrValue>

  constructor(own: ReadonlyMap<string, AttrValue>, resource: ReadonlyMap<string, AttrValue>) {
    this.#own = own
    this.#resource = resource
  }

  #find(keys: readonly string[]): [string, AttrValue] | null {
    for (const key of keys) {
      const value = this.#own.get(key) ?? this.#resource.get(key)
      if (value !== undefined) return [key, value]
    }
    return null
  }

  /** A string; numbers and booleans are spelled out (a numeric `user.id` is still an id). */
  text(...keys: string[]): string | null {
    const found = this.#find(keys)
    return found ? scalarText(...found) : null
  }

  /** The first string of an array attribute, or a plain string (older senders). */
  firstText(key: string): string | null {
    const found = this.#find([key])
    if (!found) return null
    const [, value] = found
    if (!isList(value)) return scalarText(key, value)
    const first = value[0]
    return first === undefined ? null : scalarText(key, first)
  }

  /** A whole, non-negative number: intValue (number or string), an integral doubleValue, or a digit string. */
  count(...keys: string[]): number | null {
    const found = this.#find(keys)
    if (!found) return null
    const [key, value] = found
    const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new FieldError(key, `expected a whole number, received ${show(value)}`)
    if (n < 0) throw new FieldError(key, 'must not be negative')
    return n
  }

  /** A finite, non-negative number (seconds, USD). */
  amount(...keys: string[]): number | null {
    const found = this.#find(keys)
    if (!found) return null
    const [key, value] = found
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new FieldError(key, `expected a number, received ${show(value)}`)
    if (n < 0) throw new FieldError(key, 'must not be negative')
    return n
  }

  /** A boolean; the strings "true"/"false" are accepted too. */
  flag(key: string): boolean | null {
    const found = this.#find([key])
    if (!found) return null
    const [, value] = found
    if (typeof value === 'boolean') return value
    if (value === 'true' || value === 'false') return value === 'true'
    throw new FieldError(key, `expected a boolean, received ${show(value)}`)
  }
}

/** OTLP `[{ key, value: AnyValue }]` → map. Entries without a key or with unused value kinds are left out. */
function decodeAttributes(list: readonly unknown[]): Map<string, AttrValue> {
  const map = new Map<string, AttrValue>()
  for (const entry of list) {
    if (!isRecord(entry) || typeof entry['key'] !== 'string') continue
    const value = decodeScalar(entry['value'])
    const array = isRecord(entry['value']) ? entry['value']['arrayValue'] : undefined
    if (value !== undefined) map.set(entry['key'], value)
    else if (isRecord(array) && Array.isArray(array['values'])) {
      // One level only: GenAI attributes are arrays of scalars, and no recursion means no depth to abuse.
      const values = array['values'].map(decodeScalar).filter((v): v is string | number | boolean => v !== undefined)
      map.set(entry['key'], values)
    }
  }
  return map
}

function decodeScalar(value: unknown): string | number | boolean | undefined {
  if (!isRecord(value)) return undefined
  const { stringValue, boolValue, intValue, doubleValue } = value
  if (typeof stringValue === 'string') return stringValue
  if (typeof boolValue === 'boolean') return boolValue
  // int64 travels as a JSON string in proto3 JSON; a non-integer string is kept as NaN and refused by the reader.
  if (typeof intValue === 'number') return intValue
  if (typeof intValue === 'string') return /^\s*-?\d+\s*$/.test(intValue) ? Number(intValue) : Number.NaN
  // Proto3 JSON spells non-finite doubles "NaN", "Infinity", "-Infinity".
  if (typeof doubleValue === 'number') return doubleValue
  if (typeof doubleValue === 'string') return Number(doubleValue)
  return undefined
}

function isList(value: AttrValue): value is readonly (string | number | boolean)[] {
  return Array.isArray(value)
}

function scalarText(key: string, value: AttrValue): string {
  if (isList(value)) throw new FieldError(key, 'expected a single value, received an array')
  return String(value)
}

function show(value: AttrValue): string {
  return isList(value) ? 'an array' : typeof value === 'string' ? JSON.stringify(value) : String(value)
}

function providerId(attrs: Attributes): string {
  const named = attrs.text('gen_ai.provider.name', 'gen_ai.system')?.trim().toLowerCase()
  if (named) return PROVIDER_IDS.get(named) ?? named
  const host = attrs.text('server.address')?.toLowerCase()
  if (host) {
    for (const [suffix, id] of PROVIDER_HOSTS) if (host === suffix || host.endsWith(suffix)) return id
  }
  return 'unknown'
}

/**
 * `error.type` first (it names the failure), then the HTTP status (the proxy's
 * own rule), then the span status: an error with nothing more specific is a
 * `proxy_error`, the enum's "failed outside the HTTP exchange".
 */
function errorType(type: string | null, statusCode: number, failed: boolean): ErrorType {
  if (type !== null) {
    const lower = type.toLowerCase()
    if (lower === '429' || /rate.?limit/.test(lower)) return 'rate_limited'
    if (/time.?out/.test(lower)) return 'timeout'
    if (/^5\d\d$/.test(lower)) return 'http_5xx'
    if (/^4\d\d$/.test(lower)) return 'http_4xx'
  }
  if (statusCode === 429) return 'rate_limited'
  if (statusCode >= 500) return 'http_5xx'
  if (statusCode >= 400) return 'http_4xx'
  // error.type is only set when the operation failed (OTel: "Describes a class of error the operation ended with").
  return failed || type !== null ? 'proxy_error' : 'none'
}

/** `status.code` is an integer in OTLP JSON; some senders spell the enum name. */
function statusIsError(status: unknown): boolean {
  if (!isRecord(status)) return false
  const code = status['code']
  return code === STATUS_CODE_ERROR || code === 'STATUS_CODE_ERROR'
}

function spanKind(kind: unknown): number | null {
  if (typeof kind === 'number') return kind
  if (kind === 'SPAN_KIND_INTERNAL') return SPAN_KIND_INTERNAL
  return null
}

function requiredId(span: Record<string, unknown>, field: 'traceId' | 'spanId'): string {
  const value = span[field]
  if (typeof value !== 'string' || value.trim() === '') throw new FieldError(field, 'required: a non-empty id')
  // Hex ids compare case-insensitively, so a re-send in upper case still maps to the same span_id.
  return value.trim().toLowerCase()
}

/** Unix nanoseconds as a string (proto3 JSON's fixed64) or a number; exact via BigInt. */
function nanos(value: unknown, field: string): bigint {
  let n: bigint | null = null
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) n = BigInt(value.trim())
  else if (typeof value === 'number' && Number.isFinite(value) && value >= 0) n = BigInt(Math.trunc(value))
  if (n === null) throw new FieldError(field, `expected Unix nanoseconds, received ${value === undefined ? 'nothing' : JSON.stringify(value)}`)
  if (n === 0n) throw new FieldError(field, 'required: 0 means unset')
  return n
}

function isoFromNanos(ns: bigint, field: string): string {
  const date = new Date(Number(ns / 1_000_000n))
  if (Number.isNaN(date.getTime())) throw new FieldError(field, 'is not a representable time')
  return date.toISOString()
}

/**
 * UUIDv5 (RFC 9562 §5.5) of `traceId:spanId` in a Tollgate namespace: the same
 * OTLP span always gets the same id, so a retried export deduplicates.
 */
export function deriveSpanId(traceId: string, spanId: string): string {
  const hash = createHash('sha1')
    .update(OTLP_NAMESPACE)
    .update(`${traceId.toLowerCase()}:${spanId.toLowerCase()}`)
    .digest()
  const bytes = hash.subarray(0, 16)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000
}

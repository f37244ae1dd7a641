/**
 * The client's side of a call: attribution headers (read, then stripped so the
 * upstream never sees them), hop-by-hop headers, and a copy of the request body
 * from which the model and stream flags are read. The body itself is piped to
 * the upstream untouched; this module only watches it pass.
 */
import { createHash, hash as cryptoHash, type Hash } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Attribution, RequestInfo } from './types.ts'

const ATTRIBUTION_PREFIX = 'x-tollgate-'
const PROPERTY_PREFIX = 'x-tollgate-property-'
/** Longest attribution value kept; a longer one is cut, never rejected. */
const MAX_ATTRIBUTION_LENGTH = 256
const MAX_PROPERTIES = 32

// RFC 9110 §7.6.1: connection-specific fields a proxy must not forward.
// transfer-encoding is left to Node, which re-frames the body itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization'])

export interface ClientHeaders {
  /** What the x-tollgate-* headers said. */
  attribution: Attribution
  /** The headers to send upstream: no x-tollgate-*, no hop-by-hop fields. */
  upstream: IncomingHttpHeaders
}

/**
 * Splits a client's headers in one pass: x-tollgate-* become the attribution,
 * hop-by-hop fields (and any the `Connection` header names) are dropped, the
 * rest is copied into a new object for the upstream. A copy rather than
 * deletes in place: a deleted property turns Node's header object into a
 * slow dictionary that every later read and copy of it pays for.
 */
export function splitClientHeaders(headers: IncomingHttpHeaders): ClientHeaders {
  const attribution: Attribution = { user: null, session: null, app: null, properties: {} }
  const upstream: IncomingHttpHeaders = {}
  const connectionNamed = connectionOptions(headers.connection)
  let propertyCount = 0
  for (const name in headers) {
    const raw = headers[name]
    if (HOP_BY_HOP.has(name) || connectionNamed?.has(name)) continue
    if (!name.startsWith(ATTRIBUTION_PREFIX)) {
      upstream[name] = raw
      continue
    }
    const value = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).slice(0, MAX_ATTRIBUTION_LENGTH)
    if (name.startsWith(PROPERTY_PREFIX)) {
      const key = name.slice(PROPERTY_PREFIX.length)
      if (key && propertyCount < MAX_PROPERTIES) {
        attribution.properties[key] = value
        propertyCount++
      }
      continue
    }
    switch (name.slice(ATTRIBUTION_PREFIX.length)) {
      case 'user':
        attribution.user = value || null
        break
      case 'session':
        attribution.session = value || null
        break
      case 'app':
        attribution.app = value || null
        break
    }
  }
  return { attribution, upstream }
}

/** Field names a `Connection` header lists as hop-by-hop (RFC 9110 §7.6.1), beyond its own options; null when none. */
function connectionOptions(connection: string | undefined): Set<string> | null {
  if (connection === undefined) return null
  // What nearly every client sends; no split, no Set.
  const whole = connection.toLowerCase()
  if (whole === 'keep-alive' || whole === 'close') return null
  let names: Set<string> | null = null
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase()
    if (name && name !== 'close' && name !== 'keep-alive') (names ??= new Set()).add(name)
  }
  return names
}

/** Bodies up to this size are parsed whole; past it only the head is scanned. */
const MAX_PARSED_BODY_BYTES = 4 * 1024 * 1024
const HEAD_BYTES = 64 * 1024

export interface RequestBodyObserver {
  /** Bytes of request body seen so far. */
  readonly bytes: () => number
  /** Model and stream flags; call after the body has ended. */
  info(): RequestInfo
  /** The body's first `maxBytes` as text (body capture). */
  text(maxBytes: number): string
}

/**
 * Watches the request body pass (a 'data' listener beside the pipe to the
 * upstream) and keeps a bounded copy for reading `model` and `stream`.
 */
export function observeRequestBody(req: IncomingMessage): RequestBodyObserver {
  const watcher = new RequestBodyWatcher()
  req.on('data', watcher.onData)
  return watcher
}

/**
 * One request body's watcher, as a class: one object per call rather than a
 * closure per method. The body is hashed whole even past the parse cap: in one
 * call at the end while it is all kept, incrementally once it is not.
 */
class RequestBodyWatcher implements RequestBodyObserver {
  private chunks: Buffer[] = []
  private kept = 0
  private total = 0
  private overflowed = false
  /** Only past the parse cap, when the whole body is no longer kept. */
  private hash: Hash | null = null

  readonly onData = (chunk: Buffer): void => {
    this.total += chunk.length
    if (this.hash) {
      this.hash.update(chunk)
      return
    }
    if (this.kept + chunk.length > MAX_PARSED_BODY_BYTES) {
      this.overflowed = true
      this.hash = createHash('sha256')
      for (const kept of this.chunks) this.hash.update(kept)
      this.hash.update(chunk)
      // Keep only the head: enough to find "model" in any real request.
      const head = Buffer.concat(this.chunks).subarray(0, HEAD_BYTES)
      this.chunks = [head]
      this.kept = head.length
      return
    }
    this.chunks.push(chunk)
    this.kept += chunk.length
  }

  readonly bytes = (): number => this.total

  text(maxBytes: number): string {
    return this.body().subarray(0, maxBytes).toString('utf8')
  }

  info(): RequestInfo {
    const body = this.body()
    const info = readRequestInfo(body, this.overflowed)
    if (this.total > 0) info.requestHash = (this.hash ? this.hash.digest('hex') : sha256Hex(body)).slice(0, 32)
    return info
  }

  private body(): Buffer {
    if (this.chunks.length !== 1) {
      const whole = Buffer.concat(this.chunks)
      this.chunks = [whole]
    }
    return this.chunks[0] ?? Buffer.alloc(0)
  }
}

/** sha256 in hex; one call for data already in memory (crypto.hash, Node ≥ 20.12). */
function sha256Hex(data: Buffer | string): string {
  return cryptoHash('sha256', data, 'hex')
}

/** Reads model and stream flags from a JSON request body (or its head when `truncated`). */
export function readRequestInfo(body: Buffer, truncated: boolean): RequestInfo {
  const none = (): RequestInfo => ({ model: null, stream: false, includeUsage: null, requestHash: null, prefixHash: null, prefixBytes: null })
  if (body.length === 0) return none()
  const text = body.toString('utf8')
  if (!truncated) {
    try {
      const json: unknown = JSON.parse(text)
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return none()
      const record = json as Record<string, unknown>
      const options = record.stream_options
      const includeUsage =
        typeof options === 'object' && options !== null && 'include_usage' in options
          ? (options as { include_usage: unknown }).include_usage === true
          : null
      const prefix = reusablePrefix(record)
      return {
        model: typeof record.model === 'string' ? record.model : null,
        stream: record.stream === true,
        includeUsage,
        requestHash: null,
        prefixHash: prefix ? sha256Hex(prefix).slice(0, 32) : null,
        prefixBytes: prefix ? Buffer.byteLength(prefix) : null,
      }
    } catch {
      // Malformed JSON is forwarded untouched; the upstream judges it.
      return none()
    }
  }
  const model = /"model"\s*:\s*"((?:[^"\\]|\\.){1,200})"/.exec(text)?.[1] ?? null
  return { ...none(), model, stream: /"stream"\s*:\s*true/.test(text), includeUsage: /"include_usage"\s*:\s*true/.test(text) || null }
}

/**
 * The part of a request a provider's prompt cache could reuse: everything
 * before the newest turn. OpenAI and Anthropic `messages`, the Responses API
 * `input`, Gemini `contents`; system prompts and tools included. Null when
 * there is nothing before the newest turn.
 */
export function reusablePrefix(body: Record<string, unknown>): string | null {
  const turns = [body.messages, body.input, body.contents].find(Array.isArray) as unknown[] | undefined
  const system = body.system ?? body.instructions ?? body.systemInstruction ?? body.system_instruction ?? null
  const tools = body.tools ?? null
  const earlier = turns ? turns.slice(0, -1) : []
  if (earlier.length === 0 && system === null && tools === null) return null
  return JSON.stringify([body.model ?? null, system, tools, earlier])
}

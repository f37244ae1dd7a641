/**
 * Observes response chunks as they pass to the client; never pauses, holds or
 * changes them. A copy is decoded (gzip/deflate/br), framed (SSE or JSON) and
 * handed to the provider parser; the first chunk carrying content sets TTFT.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { StringDecoder } from 'node:string_decoder'
import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import { createParser as createSseParser, type EventSourceParser } from 'eventsource-parser'
import type { CallObservation, ProviderParser } from './types.ts'

/**
 * Sees each response chunk as it passes; must not block, hold or change it.
 * forward.ts hands it a chunk once the chunk has been written to the client.
 */
export interface ResponseTap {
  onResponseStart?(statusCode: number, headers: IncomingHttpHeaders): void
  /** `arrivedAt`: performance.now() when the chunk came from the upstream, before its write. */
  onResponseData?(chunk: Buffer, arrivedAt: number): void
  onResponseEnd?(): void
  onResponseError?(err: Error): void
}

export interface TapResult {
  observation: CallObservation
  /** Clock reading (ms) when the first content-carrying chunk arrived; null if none. */
  firstContentAt: number | null
  /** Raw (still encoded) bytes received from the upstream. */
  responseBytes: number
  /** The body was text/event-stream. */
  sse: boolean
  /** The upstream ended the body cleanly (no reset or error). */
  complete: boolean
  /** The decoded body's first `keepBodyChars` characters, when asked for. */
  bodyText: string | null
}

export interface CaptureTap extends ResponseTap {
  /** Resolves once the decoded copy has been read to the end. */
  settle(): Promise<TapResult>
}

/** Non-stream bodies up to this size are parsed whole. */
const MAX_JSON_BYTES = 8 * 1024 * 1024
/** Past the cap, head and tail are kept: model sits at the head, usage at the tail. */
const EDGE_BYTES = 64 * 1024
const MAX_SSE_EVENT_BYTES = 8 * 1024 * 1024

export interface CaptureTapOptions {
  parser: ProviderParser
  /** Monotonic clock in ms (performance.now). */
  now: () => number
  /** Keep this many characters of the decoded body (body capture); 0 keeps none. @default 0 */
  keepBodyChars?: number
}

/**
 * Builds the tap for one call.
 * @example
 * const tap = createCaptureTap({ parser, now: () => performance.now() })
 * tap.onResponseStart?.(200, { 'content-type': 'application/json' })
 * tap.onResponseData?.(chunk, performance.now())
 * const { observation } = await tap.settle()
 */
export function createCaptureTap(options: CaptureTapOptions): CaptureTap {
  return new CallTap(options)
}

/**
 * One call's tap as a class rather than a closure nest: a call allocates one
 * object instead of a dozen closures (each renamed by the TypeScript loader),
 * which is per-call CPU and per-open-stream memory.
 */
class CallTap implements CaptureTap {
  private readonly parser: ProviderParser
  private readonly now: () => number
  private readonly keepBodyChars: number
  private kept: string | null
  private responseBytes = 0
  private lastRawChunkAt = 0
  private firstContentAt: number | null = null
  private sse = false
  private complete = false
  private successStatus = false
  private decoder: Transform | null = null
  private decoderDone: Promise<void> | null = null
  private text: StringDecoder | null = null
  /** SSE framing, when the body is an event stream. */
  private sseParser: EventSourceParser | null = null
  /** JSON framing: the body's text while it fits, else its head and tail. */
  private parts: string[] = []
  private size = 0
  private overflowed = false
  private head = ''
  private tail = ''

  constructor({ parser, now, keepBodyChars = 0 }: CaptureTapOptions) {
    this.parser = parser
    this.now = now
    this.keepBodyChars = keepBodyChars
    this.kept = keepBodyChars > 0 ? '' : null
  }

  onResponseStart(statusCode: number, headers: IncomingHttpHeaders): void {
    this.successStatus = statusCode >= 200 && statusCode < 300
    const contentType = headers['content-type']
    this.sse = contentType !== undefined && contentType.toLowerCase().includes('text/event-stream')
    if (this.sse) {
      const parser = this.parser
      this.sseParser = createSseParser({
        onEvent: (event) => {
          if (parser.onEvent(event.data, event.event)) this.markContent()
        },
        maxBufferSize: MAX_SSE_EVENT_BYTES,
      })
    }
    const encoding = headers['content-encoding']
    this.decoder = encoding === undefined ? null : createDecoder(encoding)
    if (this.decoder) {
      const d = this.decoder
      d.on('data', (buf: Buffer) => this.onDecoded(buf))
      this.decoderDone = new Promise((resolve) => {
        d.once('end', resolve)
        d.once('close', resolve)
        // A corrupt or cut compressed body: keep what was decoded, stop there.
        d.once('error', () => resolve())
      })
    }
  }

  onResponseData(chunk: Buffer, arrivedAt: number): void {
    // The chunk is already on its way to the client: reading it here delays no byte of it.
    this.responseBytes += chunk.length
    this.lastRawChunkAt = arrivedAt
    if (this.decoder) this.decoder.write(chunk)
    else this.onDecoded(chunk)
  }

  onResponseEnd(): void {
    this.complete = true
  }

  onResponseError(): void {
    this.complete = false
  }

  async settle(): Promise<TapResult> {
    if (this.decoder) {
      this.decoder.end()
      await this.decoderDone
    }
    if (this.text) this.feedText(this.text.end())
    this.finishText()
    return {
      observation: this.parser.result(),
      firstContentAt: this.firstContentAt,
      responseBytes: this.responseBytes,
      sse: this.sse,
      complete: this.complete,
      bodyText: this.kept,
    }
  }

  private markContent(): void {
    // The decoded copy may lag the raw chunk; the raw arrival time is the truth.
    if (this.firstContentAt === null) this.firstContentAt = this.lastRawChunkAt || this.now()
  }

  private onDecoded(buf: Buffer): void {
    if (buf.length === 0) return
    // Created on the first byte: a body-less response never pays for it.
    this.text ??= new StringDecoder('utf8')
    const decoded = this.text.write(buf)
    if (this.kept !== null && this.kept.length < this.keepBodyChars) this.kept += decoded.slice(0, this.keepBodyChars - this.kept.length)
    this.feedText(decoded)
  }

  private feedText(s: string): void {
    if (this.sseParser) {
      this.sseParser.feed(s)
      return
    }
    if (s.length === 0) return
    if (this.successStatus) this.markContent()
    this.size += s.length
    if (!this.overflowed && this.size > MAX_JSON_BYTES) {
      this.overflowed = true
      const all = this.parts.join('')
      this.parts = []
      this.head = all.slice(0, EDGE_BYTES)
      this.tail = all.slice(-EDGE_BYTES)
    }
    if (this.overflowed) this.tail = (this.tail + s).slice(-EDGE_BYTES)
    else this.parts.push(s)
  }

  private finishText(): void {
    if (this.sseParser) {
      // A last event without its blank line still counts (a cut stream's partial usage).
      this.sseParser.reset({ consume: true })
      return
    }
    if (!this.overflowed) {
      this.deliverJson(this.parts.length === 1 ? (this.parts[0] ?? '') : this.parts.join(''))
      return
    }
    // Only the edges were kept: feed the parser what they hold.
    const model = /"(?:model|modelVersion)"\s*:\s*"([^"]{1,200})"/.exec(this.head)?.[1]
    const usage = lastJsonObjectAfter(this.tail, /"(usage|usageMetadata)"\s*:\s*\{/g)
    if (usage) this.parser.onBody({ ...(model ? { model, modelVersion: model } : {}), [usage.key]: usage.value })
  }

  private deliverJson(body: string): void {
    if (body.trim() === '') return
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      return // an error page or a cut body: no usage to read
    }
    // Gemini's streamGenerateContent without alt=sse is a JSON array of responses.
    if (Array.isArray(json)) for (const element of json) this.parser.onBody(element)
    else this.parser.onBody(json)
  }
}

function createDecoder(contentEncoding: string | string[]): Transform | null {
  if (Array.isArray(contentEncoding)) return null
  // Z_SYNC_FLUSH on finish: a stream cut mid-body still yields what arrived.
  const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH }
  switch (contentEncoding.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip(flush)
    case 'deflate':
      return zlib.createInflate(flush)
    case 'br':
      return zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH })
    default:
      return null
  }
}

/** The last `"key": {…}` object in `text` that parses, found by matching braces. */
function lastJsonObjectAfter(text: string, keyPattern: RegExp): { key: string; value: unknown } | null {
  let found: { key: string; value: unknown } | null = null
  for (const match of text.matchAll(keyPattern)) {
    const start = (match.index ?? 0) + match[0].length - 1
    let depth = 0
    for (let i = start; i < text.length; i++) {
      const c = text[i]
      if (c === '{') depth++
      else if (c === '}' && --depth === 0) {
        try {
          found = { key: match[1] ?? 'usage', value: JSON.parse(text.slice(start, i + 1)) }
        } catch {
          // braces inside strings fooled the count; skip this one
        }
        break
      }
    }
  }
  return found
}

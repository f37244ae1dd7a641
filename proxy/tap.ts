/**
 * Observes response chunks as they pass to the client; never pauses, holds or
 * changes them. A copy is decoded (gzip/deflate/br), framed (SSE or JSON) and
 * handed to the provider parser; the first chunk carrying content sets TTFT.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { StringDecoder } from 'node:string_decoder'
import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import { createParser as createSseParser } from 'eventsource-parser'
import type { CallObservation, ProviderParser } from './types.ts'

/** Sees each response chunk as it passes; must not block, hold or change it. */
export interface ResponseTap {
  onResponseStart?(statusCode: number, headers: IncomingHttpHeaders): void
  onResponseData?(chunk: Buffer): void
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

/** Builds the tap for one call. */
export function createCaptureTap({ parser, now, keepBodyChars = 0 }: CaptureTapOptions): CaptureTap {
  let kept = keepBodyChars > 0 ? '' : null
  let responseBytes = 0
  let lastRawChunkAt = 0
  let firstContentAt: number | null = null
  let sse = false
  let complete = false
  let successStatus = false
  let decoder: Transform | null = null
  let decoderDone: Promise<void> = Promise.resolve()
  const text = new StringDecoder('utf8')
  let feedText: (s: string) => void = () => {}
  let finishText: () => void = () => {}

  const markContent = (): void => {
    // The decoded copy may lag the raw chunk; the raw arrival time is the truth.
    if (firstContentAt === null) firstContentAt = lastRawChunkAt || now()
  }

  const onDecoded = (buf: Buffer): void => {
    if (buf.length === 0) return
    const decoded = text.write(buf)
    if (kept !== null && kept.length < keepBodyChars) kept += decoded.slice(0, keepBodyChars - kept.length)
    feedText(decoded)
  }

  function frameSse(): void {
    const sseParser = createSseParser({
      onEvent(event) {
        if (parser.onEvent(event.data, event.event)) markContent()
      },
      maxBufferSize: MAX_SSE_EVENT_BYTES,
    })
    feedText = (s) => sseParser.feed(s)
    // A last event without its blank line still counts (a cut stream's partial usage).
    finishText = () => sseParser.reset({ consume: true })
  }

  function frameJson(): void {
    let head = ''
    let tail = ''
    let size = 0
    let overflowed = false
    const parts: string[] = []
    feedText = (s) => {
      if (s.length === 0) return
      if (successStatus) markContent()
      size += s.length
      if (!overflowed && size > MAX_JSON_BYTES) {
        overflowed = true
        const all = parts.join('')
        parts.length = 0
        head = all.slice(0, EDGE_BYTES)
        tail = all.slice(-EDGE_BYTES)
      }
      if (overflowed) tail = (tail + s).slice(-EDGE_BYTES)
      else parts.push(s)
    }
    finishText = () => {
      if (!overflowed) {
        deliverJson(parts.join(''))
        return
      }
      // Only the edges were kept: feed the parser what they hold.
      const model = /"(?:model|modelVersion)"\s*:\s*"([^"]{1,200})"/.exec(head)?.[1]
      const usage = lastJsonObjectAfter(tail, /"(usage|usageMetadata)"\s*:\s*\{/g)
      if (usage) parser.onBody({ ...(model ? { model, modelVersion: model } : {}), [usage.key]: usage.value })
    }
  }

  function deliverJson(body: string): void {
    if (body.trim() === '') return
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      return // an error page or a cut body: no usage to read
    }
    // Gemini's streamGenerateContent without alt=sse is a JSON array of responses.
    if (Array.isArray(json)) for (const element of json) parser.onBody(element)
    else parser.onBody(json)
  }

  return {
    onResponseStart(statusCode, headers) {
      successStatus = statusCode >= 200 && statusCode < 300
      const contentType = String(headers['content-type'] ?? '').toLowerCase()
      sse = contentType.includes('text/event-stream')
      if (sse) frameSse()
      else frameJson()
      decoder = createDecoder(String(headers['content-encoding'] ?? ''))
      if (decoder) {
        const d = decoder
        d.on('data', onDecoded)
        decoderDone = new Promise((resolve) => {
          d.once('end', resolve)
          d.once('close', resolve)
          // A corrupt or cut compressed body: keep what was decoded, stop there.
          d.once('error', () => resolve())
        })
      }
    },
    onResponseData(chunk) {
      responseBytes += chunk.length
      lastRawChunkAt = now()
      if (decoder) decoder.write(chunk)
      else onDecoded(chunk)
    },
    onResponseEnd() {
      complete = true
    },
    onResponseError() {
      complete = false
    },
    async settle() {
      if (decoder) {
        decoder.end()
        await decoderDone
      }
      feedText(text.end())
      finishText()
      return { observation: parser.result(), firstContentAt, responseBytes, sse, complete, bodyText: kept }
    },
  }
}

function createDecoder(contentEncoding: string): Transform | null {
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

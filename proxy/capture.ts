/**
 * One captured call, end to end: request → route → forward → tap → span → sink.
 * Reverse mode (and later forward mode) hand it a routed request; it returns
 * at once and the span is built after the client's response has closed.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../lib/log.ts'
import { redactText, redactUrl } from '../lib/redact.ts'
import type { Forwarder } from './forward.ts'
import type { ProxyMetrics } from './metrics.ts'
import type { Pricer } from '../lib/price.ts'
import { adapterFor } from './providers/index.ts'
import { observeRequestBody, splitClientHeaders } from './request.ts'
import type { Route } from './route.ts'
import type { SpanSink } from './sink.ts'
import { buildSpan } from './span.ts'
import { createCaptureTap, type CaptureTap } from './tap.ts'
import type { SpanMode } from './types.ts'

/** Characters of each body kept when bodies are captured. */
const BODY_CAPTURE_CHARS = 64 * 1024

export interface CaptureDeps {
  /** TOLLGATE_CAPTURE_BODIES: keep capped, redacted bodies of no call, failed calls, or every call. */
  captureBodies: 'off' | 'errors' | 'all'
  forwarder: Forwarder
  pricer: Pricer
  metrics: ProxyMetrics
  sink: SpanSink
  log: Logger
}

export type CaptureCall = (req: IncomingMessage, res: ServerResponse, route: Route, mode: SpanMode) => void

export function createCapture({ captureBodies, forwarder, pricer, metrics, sink, log }: CaptureDeps): CaptureCall {
  const keepBodyChars = captureBodies === 'off' ? 0 : BODY_CAPTURE_CHARS
  const now = (): number => performance.now()

  return function captureCall(req, res, route, mode) {
    const startedAtMs = Date.now()
    const startMono = performance.now()
    const { attribution, upstream } = splitClientHeaders(req.headers)
    req.headers = upstream
    const body = observeRequestBody(req)
    const parser = adapterFor(route.provider.family).createParser(route.endpoint)
    let tap: CaptureTap | null = null
    metrics.callStarted(route.provider.id)

    forwarder.forward(
      req,
      res,
      { base: route.upstreamBase, path: route.upstreamPath },
      {
        onResponse(proxyRes) {
          const t = createCaptureTap({ parser, now, keepBodyChars })
          tap = t
          t.onResponseStart?.(proxyRes.statusCode ?? 0, proxyRes.headers)
          return t
        },
        onFinish(outcome, statusCode) {
          const endMono = performance.now()
          metrics.callEnded(route.provider.id)
          const finished = tap ? tap.settle() : Promise.resolve(null)
          finished
            .then((tapResult) => {
              const request = body.info()
              const observation = tapResult?.observation
              const models = [observation?.responseModel ?? null, request.model, route.pathModel]
              const cost = observation
                ? pricer.price(route.provider.id, models, observation.usage)
                : { costUsd: null, costStatus: 'no_usage' as const }
              const span = buildSpan({
                spanId: randomUUID(),
                mode,
                provider: route.provider.id,
                endpoint: route.endpoint,
                pathModel: route.pathModel,
                pathStream: route.pathStream,
                request,
                attribution,
                startedAtMs,
                startMono,
                endMono,
                statusCode,
                outcome,
                tap: tapResult,
                cost,
                requestBytes: body.bytes(),
                clientAddr: req.socket.remoteAddress ?? null,
              })
              if (captureBodies === 'all' || (captureBodies === 'errors' && span.error_type !== 'none')) {
                // Prompts and answers can quote keys back; the same redaction as logs applies.
                span.request_body = redactText(body.text(BODY_CAPTURE_CHARS)) || null
                span.response_body = tapResult?.bodyText ? redactText(tapResult.bodyText) : null
              }
              metrics.recordSpan(span)
              sink.add(span)
              const level = span.error_type === 'none' || span.error_type === 'http_4xx' ? 'debug' : 'warn'
              // Checked first: the line's fields (a redacted URL) cost more than pino's no-op.
              if (log.isLevelEnabled(level)) {
                log[level](
                  { provider: span.provider, path: redactUrl(req.url ?? ''), status: span.status_code, error_type: span.error_type, duration_ms: span.duration_ms },
                  'call finished',
                )
              }
            })
            .catch((err: unknown) => {
              // A capture bug must never reach the client; it is logged and counted.
              metrics.spansDropped('capture_error', 1)
              log.error({ err }, 'capture failed for a call')
            })
        },
      },
    )
  }
}

/**
 * The proxy's HTTP server: reserved paths (/metrics, /healthz), then reverse
 * mode by path prefix. Nothing a client sends may crash it.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TollgateConfig } from '../lib/config.ts'
import type { Logger } from '../lib/log.ts'
import { formatHostPort, sendError, sendJson } from '../lib/http.ts'
import { redactUrl } from '../lib/redact.ts'
import { createCapture } from './capture.ts'
import { createForwarder } from './forward.ts'
import { createProxyMetrics, type ProxyMetrics } from './metrics.ts'
import { createPricer } from '../lib/price.ts'
import { KNOWN_PREFIXES, routeReverse } from './route.ts'
import type { SpanSink } from './sink.ts'

export interface ProxyServer {
  readonly url: string
  readonly metrics: ProxyMetrics
  close(): Promise<void>
}

export interface ProxyServerOptions {
  config: TollgateConfig
  /** Where finished spans go; built by the caller (in-process or HTTP). */
  createSink: (metrics: ProxyMetrics) => SpanSink
  log: Logger
  /** Extra CA certificates for HTTPS upstreams. */
  upstreamCa?: string
}

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const { config, log } = options
  const metrics = createProxyMetrics({ maxModelLabels: config.maxModelLabels })
  const sink = options.createSink(metrics)
  const forwarder = createForwarder({ upstreamTimeoutMs: config.upstreamTimeoutMs, upstreamCa: options.upstreamCa })
  const capture = createCapture({ forwarder, pricer: createPricer(config.priceOverrides), metrics, sink, log })

  const server = http.createServer(function handleProxyRequest(req, res) {
    try {
      const path = req.url ?? '/'
      if (path === '/metrics' || path.startsWith('/metrics?')) return void serveMetrics(metrics, res)
      if (path === '/healthz') return void sendJson(res, 200, { status: 'ok' })
      const route = routeReverse(path, config.upstreams)
      if (!route) return void unknownProvider(req, res)
      capture(req, res, route, 'reverse')
    } catch (err) {
      log.error({ err, url: redactUrl(req.url ?? '') }, 'proxy request failed')
      if (!res.headersSent) sendError(res, 500, 'TG_ERR_PROXY_INTERNAL', 'internal proxy error')
      else res.destroy()
    }
  })
  // Malformed HTTP from a client: answer 400 if the socket still can, never throw.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    else socket.destroy()
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.proxyPort, config.host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const url = formatHostPort(address.address, address.port)
  log.info({ url }, 'proxy listening')

  return {
    url,
    metrics,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      forwarder.close()
      await sink.close()
    },
  }
}

async function serveMetrics(metrics: ProxyMetrics, res: ServerResponse): Promise<void> {
  const body = await metrics.registry.metrics()
  res.writeHead(200, { 'content-type': metrics.registry.contentType })
  res.end(body)
}

function unknownProvider(req: IncomingMessage, res: ServerResponse): void {
  const path = redactUrl(req.url ?? '/')
  sendError(
    res,
    404,
    'TG_ERR_UNKNOWN_PROVIDER',
    `No provider for path ${path.split('?')[0]}. Use one of the known prefixes, e.g. /openai/v1/chat/completions.`,
    { known_prefixes: KNOWN_PREFIXES },
  )
  // The body was not read; drain it so a keep-alive socket stays usable.
  req.resume()
}


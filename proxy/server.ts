/**
 * The proxy's HTTP server, one port for both modes: reserved paths (/metrics,
 * /healthz); reverse mode by path prefix; forward mode for `CONNECT` and
 * absolute-URI requests from clients that set HTTP(S)_PROXY. Nothing a client
 * sends may crash it.
 */
import { timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { openCertificateAuthority } from '../lib/ca.ts'
import type { TollgateConfig } from '../lib/config.ts'
import type { Logger } from '../lib/log.ts'
import { formatHostPort, sendError, sendJson } from '../lib/http.ts'
import { redactUrl } from '../lib/redact.ts'
import { createCapture } from './capture.ts'
import { createForwarder } from './forward.ts'
import { createProxyMetrics, type ProxyMetrics } from './metrics.ts'
import { createPricer } from '../lib/price.ts'
import { createConnectHandler } from './connect.ts'
import { KNOWN_PREFIXES, reverseRouter, routeForward } from './route.ts'
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
  const upstreamCa = [options.upstreamCa, config.upstreamCaFile ? readFileSync(config.upstreamCaFile, 'utf8') : undefined]
    .filter(Boolean)
    .join('\n')
  const forwarder = createForwarder({ upstreamTimeoutMs: config.upstreamTimeoutMs, upstreamCa: upstreamCa || undefined })
  const capture = createCapture({ captureBodies: config.captureBodies, forwarder, pricer: createPricer(config.priceOverrides), metrics, sink, log })
  // Created on first start, reused afterwards: clients trust it once.
  const ca = await openCertificateAuthority({ dir: resolve(config.dataDir, 'ca'), log })
  const authorize = createProxyAuthorizer(config.proxyAuth)
  let ownPorts: number[] = []
  const isSelf = (host: string, port: number): boolean => ownPorts.includes(port) && isLocalAddress(host, config.host)
  const connect = createConnectHandler({
    capture,
    secureContextFor: (host) => ca.secureContextFor(host),
    upstreams: config.upstreams,
    forwardHosts: config.forwardHosts,
    connectPorts: config.connectPorts,
    authorize,
    isSelf,
    metrics,
    log,
  })

  /** Forward mode over plain HTTP: `GET http://host/path` from an HTTP_PROXY client. */
  function handleAbsoluteUri(req: IncomingMessage, res: ServerResponse, target: URL): void {
    if (!authorize(req)) {
      res.setHeader('proxy-authenticate', 'Basic realm="tollgate"')
      return sendError(res, 407, 'TG_ERR_CONNECT_REFUSED', 'proxy authentication required')
    }
    const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80))
    if (isSelf(target.hostname, port)) return sendError(res, 403, 'TG_ERR_CONNECT_REFUSED', 'refusing to proxy to Tollgate itself (a relay loop)')
    if (target.protocol !== 'http:') return sendError(res, 400, 'TG_ERR_CONNECT_REFUSED', 'use CONNECT for https:// targets')
    const pathAndQuery = `${target.pathname}${target.search}`
    const route = routeForward('http', target.hostname, port, pathAndQuery, config.upstreams, config.forwardHosts)
    if (route) return capture(req, res, route, 'forward')
    forwarder.passThrough(req, res, { base: target.origin, path: pathAndQuery })
  }

  const route = reverseRouter(config.upstreams)
  const server = http.createServer(function handleProxyRequest(req, res) {
    try {
      const path = req.url ?? '/'
      if (/^https?:\/\//i.test(path)) {
        const target = URL.canParse(path) ? new URL(path) : null
        if (!target) return sendError(res, 400, 'TG_ERR_CONNECT_REFUSED', 'malformed absolute URI')
        return handleAbsoluteUri(req, res, target)
      }
      if (path === '/metrics' || path.startsWith('/metrics?')) return void serveMetrics(metrics, res)
      if (path === '/healthz') return void sendJson(res, 200, { status: 'ok', ...metrics.health() })
      const reverse = route(path)
      if (!reverse) return void unknownProvider(req, res)
      capture(req, res, reverse, 'reverse')
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

  server.on('connect', connect.handleConnect)

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(config.proxyPort, config.host, () => resolveListen())
  })
  const address = server.address() as AddressInfo
  ownPorts = [address.port, config.uiPort].filter((p) => p > 0)
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
      connect.close()
      forwarder.close()
      await sink.close()
    },
  }
}

/** Checks Proxy-Authorization (Basic) when `user:password` is configured; open otherwise. */
function createProxyAuthorizer(credentials: string | undefined): (req: IncomingMessage) => boolean {
  if (!credentials) return () => true
  const expected = Buffer.from(`Basic ${Buffer.from(credentials).toString('base64')}`)
  return (req) => {
    const given = Buffer.from(String(req.headers['proxy-authorization'] ?? ''))
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
}

/** Names this machine answers on, for spotting a relay loop back to the proxy. */
function isLocalAddress(host: string, boundHost: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '0.0.0.0' || h === '::' || h === '::1' || h.startsWith('127.') || h === boundHost.toLowerCase()
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


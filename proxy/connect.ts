/**
 * Forward mode's front door: `CONNECT host:port` from clients that set
 * HTTPS_PROXY. A known LLM API host is intercepted: TLS is terminated with a
 * leaf certificate from Tollgate's CA and the decrypted requests enter the
 * same capture pipeline as reverse mode. Every other host gets a blind TCP
 * tunnel: never decrypted, logged as host:port and byte counts only.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import net, { type Socket } from 'node:net'
import tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type { Logger } from '../lib/log.ts'
import { sendError } from '../lib/http.ts'
import type { CaptureCall } from './capture.ts'
import type { ProxyMetrics } from './metrics.ts'
import { providerForHost, routeForward, type UpstreamOverrides } from './route.ts'

export interface ConnectOptions {
  capture: CaptureCall
  /** Leaf TLS contexts for intercepted hosts (lib/ca.ts). */
  secureContextFor(hostname: string): Promise<tls.SecureContext>
  upstreams: UpstreamOverrides
  forwardHosts: Readonly<Record<string, string>>
  connectPorts: readonly number[]
  /** Decides whether a request may use the proxy (Proxy-Authorization). */
  authorize(req: IncomingMessage): boolean
  /** True when host:port is this proxy itself (a relay loop). */
  isSelf(host: string, port: number): boolean
  metrics: ProxyMetrics
  log: Logger
}

export interface ConnectHandler {
  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void
  close(): void
}

interface InterceptedTarget {
  host: string
  port: number
}

/** `host:port` of a CONNECT request line; IPv6 in brackets. */
export function parseAuthority(authority: string | undefined): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(authority ?? '')
  if (!m?.[1] || !m[2]) return null
  const port = Number(m[2])
  if (port < 1 || port > 65535) return null
  return { host: m[1].replace(/^\[|\]$/g, '').toLowerCase(), port }
}

/**
 * An intercepted connection's target rides on its TLS socket under a symbol,
 * not in a WeakMap: V8's young-generation GC does not free WeakMap entries
 * (see forward.ts), so a burst of short connections would be promoted.
 */
const kTarget = Symbol('tollgate.interceptedTarget')
type InterceptedSocket = Socket & { [kTarget]?: InterceptedTarget }

export function createConnectHandler(options: ConnectOptions): ConnectHandler {
  const { log } = options
  // Decrypted connections are fed to an HTTP server that never listens: it
  // only parses requests (keep-alive, pipelining) off the TLS sockets.
  const inner = http.createServer(function handleInterceptedRequest(req: IncomingMessage, res: ServerResponse) {
    const target = (req.socket as InterceptedSocket)[kTarget]
    if (!target) return sendError(res, 500, 'TG_ERR_PROXY_INTERNAL', 'intercepted connection lost its target')
    const route = routeForward('https', target.host, target.port, req.url ?? '/', options.upstreams, options.forwardHosts)
    if (!route) return sendError(res, 502, 'TG_ERR_UNKNOWN_PROVIDER', `${target.host} is not an LLM API host Tollgate intercepts`)
    options.capture(req, res, route, 'forward')
  })
  inner.keepAliveTimeout = 65_000
  // Hints logged at most once a minute per host: a client that does not trust
  // the CA retries in a loop, and one clear line is enough.
  const lastHint = new Map<string, number>()

  function refuse(socket: Duplex, status: number, reason: string, extraHeaders = ''): void {
    if (status !== 502) options.metrics.connectHandled('refused')
    const body = JSON.stringify({ error: { code: 'TG_ERR_CONNECT_REFUSED', message: reason } })
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}connection: close\r\n\r\n${body}`,
    )
  }

  function intercept(req: IncomingMessage, socket: Duplex, head: Buffer, host: string, port: number): void {
    options
      .secureContextFor(host)
      .then((secureContext) => {
        if (socket.destroyed) return
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        if (head.length) socket.unshift(head)
        const tlsSocket = new tls.TLSSocket(socket as Socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] })
        ;(tlsSocket as InterceptedSocket)[kTarget] = { host, port }
        let secured = false
        tlsSocket.once('secure', () => {
          secured = true
          options.metrics.connectHandled('intercepted')
        })
        tlsSocket.on('error', (err: Error & { code?: string }) => {
          if (!secured) {
            options.metrics.connectHandled('tls_failed')
            const now = Date.now()
            if ((lastHint.get(host) ?? 0) < now - 60_000) {
              lastHint.set(host, now)
              log.warn(
                { host, reason: err.code ?? err.message },
                `TLS handshake with a client for ${host} failed: the client probably does not trust Tollgate's CA. Run \`tollgate ca trust-help\` for the lines to install it.`,
              )
            }
          }
          tlsSocket.destroy()
        })
        inner.emit('connection', tlsSocket)
      })
      .catch((err: unknown) => {
        log.error({ host, err: { message: (err as Error).message } }, 'could not make a certificate for an intercepted host')
        options.metrics.connectHandled('error')
        refuse(socket, 502, `Tollgate could not make a certificate for ${host}`)
      })
  }

  function tunnel(socket: Duplex, head: Buffer, host: string, port: number, clientAddr: string | undefined): void {
    const upstream = net.connect({ host, port })
    let sent = 0
    let received = 0
    let connected = false
    upstream.setNoDelay(true)
    upstream.once('connect', () => {
      connected = true
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length) upstream.write(head)
      options.metrics.connectHandled('tunnelled')
      socket.pipe(upstream)
      upstream.pipe(socket)
    })
    socket.on('data', (chunk: Buffer) => (sent += chunk.length))
    upstream.on('data', (chunk: Buffer) => (received += chunk.length))
    upstream.on('error', (err: Error & { code?: string }) => {
      if (!connected) {
        options.metrics.connectHandled('error')
        refuse(socket, 502, `could not connect to ${host}:${port} (${err.code ?? err.message})`)
      } else socket.destroy()
    })
    socket.on('error', () => upstream.destroy())
    socket.on('close', () => upstream.destroy())
    upstream.on('close', () => {
      socket.destroy()
      // Host, port and byte counts only: a tunnel is never looked into.
      if (connected) log.debug({ host, port, sent, received, client: clientAddr }, 'tunnel closed')
    })
  }

  return {
    handleConnect(req, socket, head) {
      socket.on('error', () => {})
      const target = parseAuthority(req.url)
      if (!target) return refuse(socket, 400, `malformed CONNECT target "${String(req.url).slice(0, 100)}"; expected host:port`)
      if (!options.authorize(req)) {
        return refuse(socket, 407, 'proxy authentication required', 'proxy-authenticate: Basic realm="tollgate"\r\n')
      }
      const { host, port } = target
      if (options.isSelf(host, port)) return refuse(socket, 403, 'refusing to CONNECT to Tollgate itself (a relay loop)')
      if (!options.connectPorts.includes(port)) {
        return refuse(socket, 403, `CONNECT to port ${port} is not allowed; allowed: ${options.connectPorts.join(', ')} (config connectPorts)`)
      }
      if (providerForHost(host, options.forwardHosts)) intercept(req, socket, head, host, port)
      else tunnel(socket, head, host, port, req.socket.remoteAddress)
    },
    close() {
      inner.close()
      inner.closeAllConnections()
    },
  }
}

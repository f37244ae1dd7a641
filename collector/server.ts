/**
 * The collector's HTTP server (port 8081): query API and health. Spans reach
 * it in-process (all-in-one) through `ingest`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatHostPort, sendError, sendJson } from '../lib/http.ts'
import type { Logger } from '../lib/log.ts'
import { parseSpanQuery } from './api/spans.ts'
import { createMemoryStore } from './memory-store.ts'
import type { Span } from './schema.ts'

export interface CollectorServer {
  readonly url: string
  /** In-process intake; synchronous, never throws for a valid span. */
  ingest(span: Span): void
  close(): Promise<void>
}

export interface CollectorServerOptions {
  host: string
  port: number
  log: Logger
}

export async function startCollectorServer(options: CollectorServerOptions): Promise<CollectorServer> {
  const store = createMemoryStore()
  const server = http.createServer(function handleCollectorRequest(req, res) {
    const url = new URL(req.url ?? '/', 'http://collector')
    if (req.method === 'GET' && url.pathname === '/healthz') {
      return sendJson(res, 200, { status: 'ok', store: 'memory', spans: store.size })
    }
    if (req.method === 'GET' && url.pathname === '/api/spans') {
      const parsed = parseSpanQuery(url.searchParams)
      if (!parsed.ok) return sendError(res, 400, 'TG_ERR_BAD_QUERY', parsed.message)
      return sendJson(res, 200, store.query(parsed.filter))
    }
    req.resume()
    sendError(res, 404, 'TG_ERR_NOT_FOUND', `no route for ${req.method} ${url.pathname}`)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const url = formatHostPort(address.address, address.port)
  options.log.info({ url }, 'collector listening')
  return {
    url,
    ingest: (span) => store.add(span),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
    },
  }
}

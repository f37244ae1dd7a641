/**
 * The floor for a Node.js reverse proxy, for reference only: a node:http
 * server, a keep-alive http.Agent and two pipes — no body parsing, no spans,
 * no metrics, no pricing. `BENCH_NODE_FLOOR=1 npm run bench` starts it like
 * Tollgate (a process of its own, through the same tsx loader), so the gap
 * between the two is what Tollgate does per call, not Node or the loader.
 *
 *   FLOOR_UPSTREAM=http://127.0.0.1:9900 node bin/run-ts.mjs bench/node-floor-proxy.ts
 *
 * With `FLOOR_KIND=http-proxy-3` the relay is http-proxy-3's `web()` with the
 * same agent and nothing else: the floor for any proxy built on that library.
 *
 * Prints `listening <url>`; `/openai/...` goes to the upstream's `/...`.
 */
import http from 'node:http'
import { createProxyServer } from 'http-proxy-3'

const upstream = new URL(process.env.FLOOR_UPSTREAM ?? 'http://127.0.0.1:9900')
const agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' })
const httpProxy = process.env.FLOOR_KIND === 'http-proxy-3' ? createProxyServer({ target: upstream.href, agent, changeOrigin: true, xfwd: false }) : null

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').replace(/^\/openai(?=\/)/, '')
  if (httpProxy) {
    req.url = path
    httpProxy.web(req, res, {}, () => res.destroy())
    return
  }
  const headers = { ...req.headers, host: upstream.host }
  delete headers.connection
  const outgoing = http.request(
    {
      agent,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path,
      headers,
    },
    (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
      upstreamRes.pipe(res)
    },
  )
  outgoing.on('error', () => res.destroy())
  res.on('close', () => {
    if (!res.writableFinished) outgoing.destroy()
  })
  req.pipe(outgoing)
})
server.keepAliveTimeout = 65_000

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  process.stdout.write(`listening http://127.0.0.1:${address.port}\n`)
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0))

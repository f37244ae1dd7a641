/**
 * The load generator's baseline: a trivial Node HTTP server that reads each
 * POST body whole (as the collector does) and answers the collector's 200
 * shape without looking at it. What the generator reaches against this is its
 * own ceiling on this machine. Prints `listening <url>`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

let bodies = 0
const server = http.createServer((req, res) => {
  let bytes = 0
  req.on('data', (c: Buffer) => {
    bytes += c.length
  })
  req.on('end', () => {
    bodies++
    const spans = Number(req.headers['x-bench-spans'] ?? 0)
    const text = `{"accepted":${bytes > 0 ? spans : 0},"rejected":[]}`
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening http://127.0.0.1:${port}`)
})
const stop = (): void => {
  server.close()
  server.closeAllConnections()
  process.stderr.write(`sink: ${bodies} bodies\n`)
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

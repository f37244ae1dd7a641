/**
 * Runs the mock upstream as its own process, so a benchmark measures the proxy
 * without the mock competing for the same event loop.
 *
 *   MOCK_PORT=9900 node --import tsx test/helpers/mock-upstream-main.ts
 *
 * Prints `listening <url>` once ready; stops on SIGTERM or SIGINT.
 */
import { startMockUpstream } from './mock-upstream.ts'

const portText = process.env.MOCK_PORT ?? '0'
if (!/^\d+$/.test(portText) || Number(portText) > 65_535) {
  process.stderr.write(`MOCK_PORT must be a port number, got ${JSON.stringify(portText)}\n`)
  process.exit(2)
}

// Recording every request would grow the heap for the whole benchmark run.
const upstream = await startMockUpstream({ port: Number(portText), record: false })
process.stdout.write(`listening ${upstream.url}\n`)

function stop(): void {
  upstream.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`mock upstream: close failed: ${String(err)}\n`)
      process.exit(1)
    },
  )
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

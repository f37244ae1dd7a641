/**
 * `tollgate <command>`: the pieces of Tollgate one by one.
 */
import { parseArgs } from 'node:util'
import { loadConfig } from '../lib/config.ts'
import { errorCode } from '../lib/errors.ts'
import { createLogger } from '../lib/log.ts'
import { startAllInOne } from './start.ts'

const USAGE = `Usage: tollgate <command> [--help]

Commands:
  start      proxy (127.0.0.1:8080) and collector + API (127.0.0.1:8081) in one process

Configuration comes from TOLLGATE_* environment variables and ./tollgate.config.json;
see README.md.`

const COMMAND_HELP: Record<string, string> = {
  start: `Usage: tollgate start

Runs the proxy on TOLLGATE_HOST:TOLLGATE_PROXY_PORT (default 127.0.0.1:8080) and the
collector API on TOLLGATE_HOST:TOLLGATE_UI_PORT (default 127.0.0.1:8081).
Point an SDK at http://127.0.0.1:8080/openai/v1 (or /anthropic, /gemini, ...).
Stops cleanly on SIGINT/SIGTERM.`,
}

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, strict: false, options: { help: { type: 'boolean', short: 'h' } } })
  const command = positionals[0]
  if (!command) {
    console.log(USAGE)
    return values.help ? 0 : 2
  }
  const help = COMMAND_HELP[command]
  if (!help) {
    console.error(`tollgate: unknown command "${command}"\n\n${USAGE}`)
    return 2
  }
  if (values.help) {
    console.log(help)
    return 0
  }
  const config = loadConfig()
  const log = createLogger({ level: config.logLevel })
  const tollgate = await startAllInOne(config, log)
  console.log(`Tollgate proxy:     ${tollgate.proxy.url}  (e.g. baseURL ${tollgate.proxy.url}/openai/v1)`)
  console.log(`Tollgate collector: ${tollgate.collector.url}  (GET /api/spans)`)
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await tollgate.close()
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`tollgate: ${err instanceof Error ? err.message : String(err)}${errorCode(err) ? ` [${errorCode(err)}]` : ''}`)
    process.exit(1)
  },
)

/**
 * `tollgate <command>`: the pieces of Tollgate one by one.
 */
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { openCertificateAuthority, trustHelp, writeCaBundle } from '../lib/ca.ts'
import { formatHostPort } from '../lib/http.ts'
import { loadConfig, type TollgateConfig } from '../lib/config.ts'
import { errorCode } from '../lib/errors.ts'
import { createLogger, type Logger } from '../lib/log.ts'
import { openStore } from '../collector/store.ts'
import { startCollector } from '../collector/server.ts'
import { lowerProcessPriority } from '../lib/priority.ts'
import { collectorOptions, startAllInOne, startStandaloneProxy } from './start.ts'

const USAGE = `Usage: tollgate <command> [--help]

Commands:
  start      proxy (127.0.0.1:8080) and collector + API (127.0.0.1:8081) in one process
  proxy      the proxy alone; sends spans to TOLLGATE_COLLECTOR_URL
  collector  the collector alone: span ingest, storage, query API
  migrate    apply the ClickHouse schema migrations and exit
  ca         forward mode's local CA: ca path | ca bundle [file] | ca trust-help

Configuration comes from TOLLGATE_* environment variables and ./tollgate.config.json;
see README.md.`

const COMMAND_HELP: Record<string, string> = {
  start: `Usage: tollgate start

Runs the proxy on TOLLGATE_HOST:TOLLGATE_PROXY_PORT (default 127.0.0.1:8080) and the
collector on TOLLGATE_HOST:TOLLGATE_UI_PORT (default 127.0.0.1:8081), storing spans in
embedded chDB under TOLLGATE_DATA_DIR (default ./.tollgate), or in the ClickHouse server
at TOLLGATE_CLICKHOUSE_URL. Point an SDK at http://127.0.0.1:8080/openai/v1 (or
/anthropic, /gemini, ...). Stops cleanly on SIGINT/SIGTERM, flushing every span.`,
  proxy: `Usage: tollgate proxy

Runs only the proxy on TOLLGATE_HOST:TOLLGATE_PROXY_PORT. Spans go over HTTP to the
collector(s) in TOLLGATE_COLLECTOR_URL (comma-separated for several), batched, retried,
and counted on /metrics when they must be dropped. Stateless: run many behind a load balancer.`,
  collector: `Usage: tollgate collector

Runs only the collector on TOLLGATE_HOST:TOLLGATE_UI_PORT: POST /v1/spans, POST /v1/traces
(OTLP/HTTP JSON), GET /api/spans|summary|timeseries, /metrics, /healthz. Storage: embedded
chDB under TOLLGATE_DATA_DIR, or TOLLGATE_CLICKHOUSE_URL (and TOLLGATE_CLICKHOUSE_CLUSTER).`,
  ca: `Usage: tollgate ca <path | bundle [file] | trust-help>

Forward mode (HTTPS_PROXY=http://127.0.0.1:8080) decrypts calls to known LLM API hosts
with certificates from Tollgate's local CA, kept in TOLLGATE_DATA_DIR/ca (created on
first use; the key never leaves that directory). Clients must trust that CA:
  ca path        print the CA certificate's path (for NODE_EXTRA_CA_CERTS, curl --cacert)
  ca bundle      write the system roots plus the CA as one PEM (for Python's SSL_CERT_FILE)
                 to [file] (default TOLLGATE_DATA_DIR/ca/bundle.pem) and print its path
  ca trust-help  print the exact lines for curl, Node, Python and the OS trust store
None of these opens the span store, so they work while Tollgate runs.`,
  migrate: `Usage: tollgate migrate

Applies the migrations in migrations/ to the configured store and prints the schema version.
Embedded chDB allows one process per data directory: stop a running Tollgate first
(it migrates at start-up anyway).`,
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
  const log = createLogger({ level: config.logLevel, toStderr: command === 'ca' || command === 'migrate' })
  switch (command) {
    case 'ca':
      return caCommand(config, log, positionals.slice(1))
    case 'migrate':
      return migrateCommand(config, log)
    case 'proxy': {
      const proxy = await startStandaloneProxy(config, log)
      console.log(`Tollgate proxy: ${proxy.url} → collector ${config.collectorUrl}`)
      await untilSignal()
      await proxy.close()
      return 0
    }
    case 'collector': {
      const lowered = lowerProcessPriority(config.collectorNice, log)
      const collector = await startCollector(collectorOptions(config, log))
      lowered.sweep()
      console.log(`Tollgate collector: ${collector.url} (store: ${collector.store.kind})`)
      await untilSignal()
      await collector.close()
      lowered.stop()
      return 0
    }
    default: {
      const tollgate = await startAllInOne(config, log)
      console.log(`Tollgate proxy:     ${tollgate.proxy.url}  (e.g. baseURL ${tollgate.proxy.url}/openai/v1)`)
      console.log(`Tollgate collector: ${tollgate.collector.url}  (GET /api/spans, /api/summary; store: ${tollgate.collector.store.kind})`)
      await untilSignal()
      await tollgate.close()
      return 0
    }
  }
}

async function migrateCommand(config: TollgateConfig, log: Logger): Promise<number> {
  const { store, migration } = await openStore({
    url: config.clickhouseUrl,
    dataDir: config.dataDir,
    cluster: config.clickhouseCluster,
    retentionDays: config.retentionDays,
    log,
  })
  await store.close()
  console.log(`schema at version ${migration.version}; applied now: ${migration.applied.join(', ') || 'none'}`)
  return 0
}

async function caCommand(config: TollgateConfig, log: Logger, args: string[]): Promise<number> {
  const [sub, file] = args
  if (sub !== 'path' && sub !== 'bundle' && sub !== 'trust-help') {
    console.error(`tollgate ca: expected path, bundle or trust-help\n\n${COMMAND_HELP.ca}`)
    return 2
  }
  const dir = resolve(config.dataDir, 'ca')
  const ca = await openCertificateAuthority({ dir, log })
  const bundlePath = resolve(file ?? join(dir, 'bundle.pem'))
  if (sub === 'path') console.log(ca.certPath)
  else if (sub === 'bundle') {
    await writeCaBundle(ca, bundlePath)
    console.log(bundlePath)
  } else {
    const proxyUrl = formatHostPort(config.host, config.proxyPort)
    console.log(trustHelp(ca, { proxyUrl, bundlePath }))
  }
  return 0
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`tollgate: ${err instanceof Error ? err.message : String(err)}${errorCode(err) ? ` [${errorCode(err)}]` : ''}`)
    process.exit(1)
  },
)

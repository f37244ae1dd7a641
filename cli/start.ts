/**
 * The pieces of Tollgate, started from one config: all-in-one (collector and
 * proxy in one process, spans handed over in-process), or each alone.
 */
import type { TollgateConfig } from '../lib/config.ts'
import type { Logger } from '../lib/log.ts'
import { startCollector, type Collector } from '../collector/server.ts'
import { startProxyServer, type ProxyServer } from '../proxy/server.ts'
import { createHttpSink, createInProcessSink } from '../proxy/sink.ts'
import { TollgateError } from '../lib/errors.ts'

export interface Tollgate {
  proxy: ProxyServer
  collector: Collector
  close(): Promise<void>
}

export function collectorOptions(config: TollgateConfig, log: Logger) {
  return {
    host: config.host,
    port: config.uiPort,
    dataDir: config.dataDir,
    clickhouseUrl: config.clickhouseUrl,
    clickhouseCluster: config.clickhouseCluster,
    retentionDays: config.retentionDays,
    priceOverrides: config.priceOverrides,
    budgets: config.budgets,
    recommendations: config.recommendations,
    log,
  }
}

export interface AllInOneOptions {
  upstreamCa?: string
  /** Tests: several instances in one process share one chDB directory, each with its own database. */
  database?: string
  chdbPath?: string
}

export async function startAllInOne(config: TollgateConfig, log: Logger, options: AllInOneOptions = {}): Promise<Tollgate> {
  const collector = await startCollector({ ...collectorOptions(config, log), database: options.database, chdbPath: options.chdbPath })
  let proxy: ProxyServer
  try {
    proxy = await startProxyServer({
      config,
      log,
      createSink: (metrics) => createInProcessSink(collector.ingest, metrics),
      ...(options.upstreamCa ? { upstreamCa: options.upstreamCa } : {}),
    })
  } catch (err) {
    await collector.close()
    throw err
  }
  collector.watchProxy(proxy.url)
  let closing: Promise<void> | null = null
  return {
    proxy,
    collector,
    close() {
      // Proxy first: its last spans still reach the collector, which then flushes them.
      closing ??= proxy.close().then(() => collector.close())
      return closing
    },
  }
}

/** A standalone proxy: stateless but for its queue, sending spans to collectors over HTTP. */
export async function startStandaloneProxy(config: TollgateConfig, log: Logger): Promise<ProxyServer> {
  const urls = config.collectorUrl?.split(',').map((u) => u.trim()).filter(Boolean) ?? []
  if (urls.length === 0) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', 'a standalone proxy needs TOLLGATE_COLLECTOR_URL (one or more collector URLs, comma-separated)')
  }
  return startProxyServer({ config, log, createSink: (metrics) => createHttpSink({ urls, drops: metrics, log }) })
}

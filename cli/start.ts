/**
 * All-in-one: collector and proxy in one process, spans handed over in-process.
 */
import type { TollgateConfig } from '../lib/config.ts'
import type { Logger } from '../lib/log.ts'
import { startCollectorServer, type CollectorServer } from '../collector/server.ts'
import { startProxyServer, type ProxyServer } from '../proxy/server.ts'
import { createInProcessSink } from '../proxy/sink.ts'

export interface Tollgate {
  proxy: ProxyServer
  collector: CollectorServer
  close(): Promise<void>
}

export async function startAllInOne(config: TollgateConfig, log: Logger, options: { upstreamCa?: string } = {}): Promise<Tollgate> {
  const collector = await startCollectorServer({ host: config.host, port: config.uiPort, log })
  const proxy = await startProxyServer({
    config,
    log,
    createSink: (metrics) => createInProcessSink(collector.ingest, metrics),
    ...(options.upstreamCa ? { upstreamCa: options.upstreamCa } : {}),
  })
  let closing: Promise<void> | null = null
  return {
    proxy,
    collector,
    close() {
      // Proxy first: its last spans still reach the collector.
      closing ??= proxy.close().then(() => collector.close())
      return closing
    },
  }
}

/** Where clients should send requests, for the "send your first request" snippets. */
import type { Health } from './types.ts'

/** Tollgate's default proxy port (shared/DESIGN.md). */
const DEFAULT_PROXY_PORT = 8080

/**
 * The proxy's base URL as a browser on this page can reach it: the health
 * report's proxy URL, with a wildcard bind address (0.0.0.0, ::) replaced by
 * the host this page was loaded from; without one, that host on port 8080.
 * @example proxyBaseUrl(undefined, { protocol: 'http:', hostname: 'box' }) // 'http://box:8080'
 */
export function proxyBaseUrl(health: Health | undefined, page: { protocol: string; hostname: string }): string {
  const host = page.hostname.includes(':') ? `[${page.hostname}]` : page.hostname
  const url = health?.proxy?.url
  if (!url) return `${page.protocol === 'https:' ? 'https:' : 'http:'}//${host || '127.0.0.1'}:${DEFAULT_PROXY_PORT}`
  return url.replace(/^(https?:\/\/)(0\.0\.0\.0|\[::\])(?=:|$)/, `$1${host}`).replace(/\/+$/, '')
}

/**
 * Path prefix → provider, upstream base, endpoint kind. Pure: no I/O.
 * A new OpenAI-compatible provider is one row in PROVIDERS.
 */
import type { EndpointKind, ProviderFamily } from './types.ts'
import { memoizeBounded } from '../lib/memo.ts'

export interface ProviderSpec {
  /** Reverse-mode path prefix (without slashes) and the span's `provider`. */
  readonly id: string
  readonly family: ProviderFamily
  /** The provider's public API base; `TOLLGATE_UPSTREAM_<ID>` overrides it. */
  readonly defaultBase: string
  /** Hostnames that identify this provider in forward mode. */
  readonly hosts: readonly string[]
}

export const PROVIDERS: readonly ProviderSpec[] = [
  { id: 'openai', family: 'openai', defaultBase: 'https://api.openai.com', hosts: ['api.openai.com'] },
  { id: 'anthropic', family: 'anthropic', defaultBase: 'https://api.anthropic.com', hosts: ['api.anthropic.com'] },
  { id: 'gemini', family: 'gemini', defaultBase: 'https://generativelanguage.googleapis.com', hosts: ['generativelanguage.googleapis.com'] },
  { id: 'groq', family: 'openai', defaultBase: 'https://api.groq.com', hosts: ['api.groq.com'] },
  { id: 'mistral', family: 'openai', defaultBase: 'https://api.mistral.ai', hosts: ['api.mistral.ai'] },
  { id: 'deepseek', family: 'openai', defaultBase: 'https://api.deepseek.com', hosts: ['api.deepseek.com'] },
  { id: 'openrouter', family: 'openai', defaultBase: 'https://openrouter.ai', hosts: ['openrouter.ai'] },
  { id: 'together', family: 'openai', defaultBase: 'https://api.together.xyz', hosts: ['api.together.xyz'] },
  { id: 'fireworks', family: 'openai', defaultBase: 'https://api.fireworks.ai', hosts: ['api.fireworks.ai'] },
  { id: 'xai', family: 'openai', defaultBase: 'https://api.x.ai', hosts: ['api.x.ai'] },
  // Azure's base depends on the resource: /azure/<resource>/... → https://<resource>.openai.azure.com/...
  { id: 'azure', family: 'openai', defaultBase: 'https://{resource}.openai.azure.com', hosts: ['*.openai.azure.com'] },
]

const PROVIDER_BY_ID = new Map(PROVIDERS.map((p) => [p.id, p]))

export const KNOWN_PREFIXES: readonly string[] = PROVIDERS.map((p) => `/${p.id}/`)

export interface Route {
  provider: ProviderSpec
  /** Absolute upstream base URL (scheme, host, optional path) the path is appended to. */
  upstreamBase: string
  /** Path and query sent upstream. */
  upstreamPath: string
  endpoint: EndpointKind
  /** Model named in the URL (Gemini, Azure deployments); the body's `model` wins when present. */
  pathModel: string | null
  /** The URL itself asks for a stream (Gemini's `:streamGenerateContent`). */
  pathStream: boolean
}

/** Upstream base overrides by provider id, e.g. from `TOLLGATE_UPSTREAM_OPENAI`. */
export type UpstreamOverrides = Readonly<Record<string, string>>

const RESOURCE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/i

/**
 * Routes a reverse-mode request path such as `/openai/v1/chat/completions?x=1`.
 * @returns null when the prefix names no known provider.
 * @example routeReverse('/anthropic/v1/messages', {})?.upstreamBase // 'https://api.anthropic.com'
 */
export function routeReverse(pathAndQuery: string, overrides: UpstreamOverrides): Route | null {
  const match = /^\/([a-z0-9-]+)(\/.*)?$/i.exec(pathAndQuery.split('?', 1)[0] ?? '')
  const id = match?.[1]?.toLowerCase()
  const provider = id === undefined ? undefined : PROVIDER_BY_ID.get(id)
  if (!provider || !id) return null
  let rest = pathAndQuery.slice(id.length + 1) || '/'
  if (rest.startsWith('?')) rest = '/' + rest

  let upstreamBase = overrides[provider.id] ?? provider.defaultBase
  if (provider.id === 'azure') {
    const resourceMatch = /^\/([^/?]+)(.*)$/.exec(rest)
    const resource = resourceMatch?.[1]
    if (!resource || !RESOURCE_NAME.test(resource)) return null
    rest = resourceMatch[2] || '/'
    if (!overrides[provider.id]) upstreamBase = provider.defaultBase.replace('{resource}', resource)
  }
  return { provider, upstreamBase, upstreamPath: rest, ...classifyPath(rest) }
}

/** Distinct paths remembered by a reverse router before it starts over. */
const ROUTE_CACHE_SIZE = 1024

/**
 * routeReverse for one set of overrides, remembering the route of each path:
 * clients call a handful of paths over and over, and routing one is a few
 * regular expressions. Routes are never modified by their users. A path
 * with a query is routed afresh every time and never kept: queries vary per
 * call and can carry an API key (Gemini's `?key=`).
 */
export function reverseRouter(overrides: UpstreamOverrides): (pathAndQuery: string) => Route | null {
  // Bounded: unknown paths are as cacheable as known ones, so a scan cannot grow it.
  const routeOfPath = memoizeBounded(ROUTE_CACHE_SIZE, (path: string) => routeReverse(path, overrides))
  return (pathAndQuery) => (pathAndQuery.includes('?') ? routeReverse(pathAndQuery, overrides) : routeOfPath(pathAndQuery))
}

/** Finds the provider a forward-mode host belongs to, e.g. `api.openai.com`. */
export function providerForHost(host: string, extraHosts: Readonly<Record<string, string>> = {}): ProviderSpec | null {
  const lower = host.toLowerCase()
  const extra = extraHosts[lower]
  if (extra) return PROVIDER_BY_ID.get(extra) ?? null
  for (const provider of PROVIDERS) {
    for (const pattern of provider.hosts) {
      if (pattern.startsWith('*.') ? lower.endsWith(pattern.slice(1)) : lower === pattern) return provider
    }
  }
  return null
}

/**
 * Routes a forward-mode request (HTTPS_PROXY or an absolute-URI request) for
 * a known LLM host. The upstream is the host itself over the same scheme,
 * unless `TOLLGATE_UPSTREAM_<PROVIDER>` overrides it.
 * @returns null when the host is not a known LLM API host.
 * @example routeForward('https', 'api.openai.com', 443, '/v1/chat/completions', {})?.provider.id // 'openai'
 */
export function routeForward(
  scheme: 'http' | 'https',
  host: string,
  port: number,
  pathAndQuery: string,
  overrides: UpstreamOverrides,
  extraHosts: Readonly<Record<string, string>> = {},
): Route | null {
  const provider = providerForHost(host, extraHosts)
  if (!provider) return null
  const defaultPort = scheme === 'https' ? 443 : 80
  const upstreamBase = overrides[provider.id] ?? `${scheme}://${host.toLowerCase()}${port === defaultPort ? '' : `:${port}`}`
  const upstreamPath = pathAndQuery.startsWith('/') ? pathAndQuery : `/${pathAndQuery}`
  return { provider, upstreamBase, upstreamPath, ...classifyPath(upstreamPath) }
}

export function providerById(id: string): ProviderSpec | undefined {
  return PROVIDER_BY_ID.get(id)
}

/** Endpoint kind and URL-borne model from a provider path such as `/v1beta/models/gemini-2.5-flash:generateContent`. */
export function classifyPath(pathAndQuery: string): Pick<Route, 'endpoint' | 'pathModel' | 'pathStream'> {
  const path = pathAndQuery.split('?', 1)[0] ?? ''
  const gemini = /\/models\/([^/:]+):([A-Za-z]+)$/.exec(path)
  if (gemini) {
    const method = gemini[2] ?? ''
    const endpoint: EndpointKind = /generateContent$/i.test(method)
      ? 'generate'
      : /embedContent$/i.test(method)
        ? 'embeddings'
        : 'other'
    return { endpoint, pathModel: decodeURIComponent(gemini[1] ?? '') || null, pathStream: /^stream/i.test(method) }
  }
  const deployment = /\/deployments\/([^/]+)\//.exec(path)
  const pathModel = deployment?.[1] ? decodeURIComponent(deployment[1]) : null
  const endpoint: EndpointKind = /\/chat\/completions$/.test(path)
    ? 'chat'
    : /\/responses$/.test(path)
      ? 'responses'
      : /\/messages$/.test(path)
        ? 'messages'
        : /\/embeddings$/.test(path)
          ? 'embeddings'
          : 'other'
  return { endpoint, pathModel, pathStream: false }
}

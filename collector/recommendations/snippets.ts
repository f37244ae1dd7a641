/**
 * Config snippets a recommendation carries: LiteLLM router YAML, OpenAI /
 * Anthropic SDK calls, tollgate.config.json. Every base URL points at the
 * Tollgate proxy, so the change stays observed.
 */
import type { ModelPricing } from './prices.ts'
import { PROVIDER_ROUTES, type ProviderRoute } from './model-families.ts'

/** A provider×model to route to. */
export interface Deployment {
  provider: string
  model: string
}

const q = (s: string): string => JSON.stringify(s)

function route(provider: string): ProviderRoute {
  return PROVIDER_ROUTES[provider] ?? { api: 'openai', basePath: `/${provider}`, litellm: 'openai', keyEnv: `${provider.toUpperCase()}_API_KEY` }
}

/** The base URL a client of `provider` uses through the proxy. */
export function proxyBase(proxyUrl: string, provider: string): string {
  return `${proxyUrl.replace(/\/+$/, '')}${route(provider).basePath}`
}

function litellmEntry(name: string, d: Deployment, proxyUrl: string): string[] {
  const r = route(d.provider)
  // Azure names the deployment, not the model; LiteLLM also needs the API version.
  const model = d.provider === 'azure' ? `azure/<your ${d.model} deployment>` : `${r.litellm}/${d.model}`
  const lines = [
    `  - model_name: ${q(name)}`,
    `    litellm_params:`,
    `      model: ${q(model)}`,
    `      api_base: ${q(proxyBase(proxyUrl, d.provider))}`,
    `      api_key: ${q(`os.environ/${r.keyEnv}`)}`,
  ]
  if (d.provider === 'azure') lines.push(`      api_version: "2024-10-21"`)
  return lines
}

/** LiteLLM router: `primary`, falling back to `fallbacks` in order on errors and rate limits. */
export function litellmFallback(primary: Deployment, fallbacks: readonly Deployment[], proxyUrl: string): string {
  const names = fallbacks.map((f, i) => `${primary.model}-fallback-${i + 1}`)
  return [
    `# LiteLLM router (config.yaml): retry once, then fall back when ${primary.provider} fails.`,
    `model_list:`,
    ...litellmEntry(primary.model, primary, proxyUrl),
    ...fallbacks.flatMap((f, i) => litellmEntry(names[i]!, f, proxyUrl)),
    `router_settings:`,
    `  num_retries: 1`,
    `  fallbacks: [{ ${q(primary.model)}: [${names.map(q).join(', ')}] }]`,
    `  allowed_fails: 3      # cool a failing deployment down after 3 failures a minute`,
    `  cooldown_time: 30`,
  ].join('\n')
}

/** LiteLLM router spreading one model over several deployments by observed latency. */
export function litellmLatencyRouting(name: string, deployments: readonly Deployment[], proxyUrl: string): string {
  return [
    `# LiteLLM router (config.yaml): send "${name}" to whichever deployment is currently fastest.`,
    `model_list:`,
    ...deployments.flatMap((d) => litellmEntry(name, d, proxyUrl)),
    `router_settings:`,
    `  routing_strategy: latency-based-routing`,
  ].join('\n')
}

/** OpenAI SDK pointed at an OpenAI-compatible provider through the proxy. */
export function openaiClientFor(d: Deployment, proxyUrl: string, comment: string): string {
  const r = route(d.provider)
  return [
    `// ${comment}`,
    `import OpenAI from 'openai'`,
    `const client = new OpenAI({ baseURL: ${q(proxyBase(proxyUrl, d.provider))}, apiKey: process.env.${r.keyEnv} })`,
    `await client.chat.completions.create({ model: ${q(d.model)}, messages })`,
  ].join('\n')
}

/** Routing snippet for a move to `to`: the SDK base URL when it speaks OpenAI, else LiteLLM. */
export function moveSnippet(from: Deployment, to: Deployment, proxyUrl: string, comment: string): string {
  if (route(to.provider).api === 'openai' && to.provider !== 'azure') return openaiClientFor(to, proxyUrl, comment)
  return litellmFallback(to, [from], proxyUrl)
}

/**
 * What-if trial of a cheaper model on 5% of the traffic. Same provider: one
 * SDK client picking the model per call; another provider: a LiteLLM
 * deployment pair weighted 95/5. Tollgate's spans tell the arms apart by model.
 */
export function cheaperTrial(current: Deployment, candidate: Deployment, proxyUrl: string): string {
  const head = `What-if: send 5% of this traffic to ${candidate.model} and compare answers offline before switching.`
  if (current.provider !== candidate.provider) {
    const entries = [
      ...litellmEntry(current.model, current, proxyUrl),
      '      weight: 95',
      ...litellmEntry(current.model, candidate, proxyUrl),
      '      weight: 5',
    ]
    return [`# ${head}`, `model_list:`, ...entries, `router_settings:`, `  routing_strategy: simple-shuffle   # honours the weights`].join('\n')
  }
  const r = route(candidate.provider)
  const header = `{ headers: { 'x-tollgate-property-experiment': trial ? 'candidate' : 'control' } }`
  if (r.api === 'anthropic') {
    return [
      `// ${head}`,
      `import Anthropic from '@anthropic-ai/sdk'`,
      `const anthropic = new Anthropic({ baseURL: ${q(proxyBase(proxyUrl, candidate.provider))} })`,
      `const trial = Math.random() < 0.05`,
      `await anthropic.messages.create({ model: trial ? ${q(candidate.model)} : ${q(current.model)}, max_tokens, messages }, ${header})`,
    ].join('\n')
  }
  return [
    `// ${head}`,
    `import OpenAI from 'openai'`,
    `const client = new OpenAI({ baseURL: ${q(proxyBase(proxyUrl, candidate.provider))}, apiKey: process.env.${r.keyEnv} })`,
    `const trial = Math.random() < 0.05`,
    `await client.chat.completions.create({ model: trial ? ${q(candidate.model)} : ${q(current.model)}, messages }, ${header})`,
  ].join('\n')
}

/** LiteLLM exact-match response cache. */
export function responseCache(): string {
  return [
    `# LiteLLM (config.yaml): answer byte-identical requests from a cache.`,
    `litellm_settings:`,
    `  cache: true`,
    `  cache_params:`,
    `    type: redis          # or "local" for one process`,
    `    ttl: 3600            # seconds; keep it below how long an answer stays valid`,
  ].join('\n')
}

/** Prompt-caching snippet for `provider`'s API. */
export function promptCaching(d: Deployment, proxyUrl: string): string {
  const r = route(d.provider)
  if (r.api === 'anthropic') {
    return [
      `// Anthropic caches only what is marked: end the shared prefix with cache_control.`,
      `import Anthropic from '@anthropic-ai/sdk'`,
      `const anthropic = new Anthropic({ baseURL: ${q(proxyBase(proxyUrl, d.provider))} })`,
      `await anthropic.messages.create({`,
      `  model: ${q(d.model)},`,
      `  max_tokens,`,
      `  system: [{ type: 'text', text: SHARED_INSTRUCTIONS, cache_control: { type: 'ephemeral' } }],`,
      `  tools, // tools come before system in the cache order: keep them identical between calls`,
      `  messages,`,
      `})`,
    ].join('\n')
  }
  if (r.api === 'gemini') {
    return [
      `// Gemini 2.5 caches implicitly when the shared part comes first and is identical;`,
      `// for a guaranteed discount create an explicit cache (ai.caches.create) and pass it:`,
      `await ai.models.generateContent({ model: ${q(d.model)}, contents, config: { cachedContent: cache.name } })`,
    ].join('\n')
  }
  return [
    `// ${d.provider} caches identical prompt prefixes of 1024+ tokens automatically. Keep the static part`,
    `// (system prompt, tools, examples) first and byte-identical; a stable prompt_cache_key keeps`,
    `// calls sharing a prefix on the same cache.`,
    `await client.chat.completions.create({ model: ${q(d.model)}, messages, prompt_cache_key: 'shared-prefix-v1' })`,
  ].join('\n')
}

/** Streaming with usage, for OpenAI-compatible chat completions. */
export function includeUsage(d: Deployment): string {
  if (route(d.provider).api !== 'openai') {
    return `// ${d.provider} streams carry usage in their final events; make sure the client reads the stream to the end.`
  }
  return [
    `// OpenAI-compatible streams report usage only when asked: the final chunk then carries it.`,
    `const stream = await client.chat.completions.create({`,
    `  model: ${q(d.model)},`,
    `  messages,`,
    `  stream: true,`,
    `  stream_options: { include_usage: true },`,
    `})`,
  ].join('\n')
}

/** tollgate.config.json `priceOverrides` for an unpriced model; a listing elsewhere gives starting numbers. */
export function priceOverride(model: string, reference: ModelPricing | null): string {
  const prices: Record<string, number | string> = reference
    ? { input_mtok: reference.inputMtok, output_mtok: reference.outputMtok }
    : { input_mtok: '<USD per 1M input tokens>', output_mtok: '<USD per 1M output tokens>' }
  if (reference?.cacheReadMtok != null) prices.cache_read_mtok = reference.cacheReadMtok
  return JSON.stringify({ priceOverrides: { [model]: prices } }, null, 2)
}

/**
 * Which providers serve which model families, how a model's name is written
 * on each, and how to reach a provider through the Tollgate proxy. A small,
 * hand-kept table: the collector must not import proxy/, so the provider
 * facts it needs (API family, path prefix) are copied from proxy/route.ts.
 */

/** The wire format a provider speaks (proxy/route.ts ProviderSpec.family). */
export type ApiFamily = 'openai' | 'anthropic' | 'gemini'

/** How a Tollgate provider id is reached through the proxy and named by LiteLLM. */
export interface ProviderRoute {
  readonly api: ApiFamily
  /** Proxy path prefix a client's base URL ends with (reverse mode). */
  readonly basePath: string
  /** LiteLLM's provider prefix (`<prefix>/<model>`). */
  readonly litellm: string
  /** Environment variable LiteLLM and the SDKs read the key from. */
  readonly keyEnv: string
}

/** Every provider id proxy/route.ts PROVIDERS knows, with its route. */
export const PROVIDER_ROUTES: Readonly<Record<string, ProviderRoute>> = {
  openai: { api: 'openai', basePath: '/openai/v1', litellm: 'openai', keyEnv: 'OPENAI_API_KEY' },
  anthropic: { api: 'anthropic', basePath: '/anthropic', litellm: 'anthropic', keyEnv: 'ANTHROPIC_API_KEY' },
  gemini: { api: 'gemini', basePath: '/gemini', litellm: 'gemini', keyEnv: 'GEMINI_API_KEY' },
  groq: { api: 'openai', basePath: '/groq/openai/v1', litellm: 'groq', keyEnv: 'GROQ_API_KEY' },
  mistral: { api: 'openai', basePath: '/mistral/v1', litellm: 'mistral', keyEnv: 'MISTRAL_API_KEY' },
  deepseek: { api: 'openai', basePath: '/deepseek/v1', litellm: 'deepseek', keyEnv: 'DEEPSEEK_API_KEY' },
  openrouter: { api: 'openai', basePath: '/openrouter/api/v1', litellm: 'openrouter', keyEnv: 'OPENROUTER_API_KEY' },
  together: { api: 'openai', basePath: '/together/v1', litellm: 'together_ai', keyEnv: 'TOGETHERAI_API_KEY' },
  fireworks: { api: 'openai', basePath: '/fireworks/inference/v1', litellm: 'fireworks_ai', keyEnv: 'FIREWORKS_AI_API_KEY' },
  xai: { api: 'openai', basePath: '/xai/v1', litellm: 'xai', keyEnv: 'XAI_API_KEY' },
  // Azure paths name the resource; the deployment is the model.
  azure: { api: 'openai', basePath: '/azure/<resource>', litellm: 'azure', keyEnv: 'AZURE_API_KEY' },
}

/** A model family and the providers that serve it, in the order fallbacks are suggested. */
export interface ModelFamily {
  readonly id: string
  /** Tested against the canonical name (canonicalModel). */
  readonly match: RegExp
  readonly providers: readonly string[]
  /** OpenRouter's vendor prefix (`<vendor>/<model>`). */
  readonly openrouterVendor: string
}

/**
 * First match wins, so narrow families come before broad ones (gpt-oss is open
 * weights, not an OpenAI API model; deepseek-r1-distill-llama is DeepSeek's).
 */
export const MODEL_FAMILIES: readonly ModelFamily[] = [
  { id: 'gpt-oss', match: /^gpt-oss/, providers: ['groq', 'together', 'fireworks', 'openrouter'], openrouterVendor: 'openai' },
  { id: 'openai', match: /^(gpt-|chatgpt-|o\d)/, providers: ['openai', 'azure', 'openrouter'], openrouterVendor: 'openai' },
  { id: 'claude', match: /^claude-/, providers: ['anthropic', 'openrouter'], openrouterVendor: 'anthropic' },
  { id: 'gemini', match: /^gem(ini|ma)-/, providers: ['gemini', 'openrouter'], openrouterVendor: 'google' },
  { id: 'deepseek', match: /deepseek/, providers: ['deepseek', 'together', 'fireworks', 'groq', 'openrouter'], openrouterVendor: 'deepseek' },
  { id: 'llama', match: /llama/, providers: ['groq', 'together', 'fireworks', 'openrouter'], openrouterVendor: 'meta-llama' },
  { id: 'qwen', match: /^(qwen|qwq)/, providers: ['groq', 'together', 'fireworks', 'openrouter'], openrouterVendor: 'qwen' },
  {
    id: 'mistral',
    match: /^(mistral|mixtral|ministral|codestral|magistral|devstral|pixtral|open-mistral)/,
    providers: ['mistral', 'together', 'fireworks', 'openrouter'],
    openrouterVendor: 'mistralai',
  },
  { id: 'grok', match: /^grok/, providers: ['xai', 'openrouter'], openrouterVendor: 'x-ai' },
]

/** Decorations hosts add to an open-weights model's name that do not change the weights. */
const HOST_SUFFIXES = /-(instruct|turbo|versatile|instant|chat|hf|specdec|latest|lite|fp8|fp16|bf16)(?=-|$)/g

/**
 * A name-insensitive key for "the same model": lower case, without a vendor
 * path (`meta-llama/`, `accounts/fireworks/models/`), a date or snapshot
 * suffix, host decorations (`-instruct-turbo`, `-versatile`), and with
 * version dots and Fireworks' `v3p3` written as dashes.
 * @example canonicalModel('meta-llama/Llama-3.3-70B-Instruct-Turbo') === canonicalModel('llama-3.3-70b-versatile') // 'llama-3-3-70b'
 */
export function canonicalModel(model: string): string {
  let m = model.toLowerCase().trim()
  m = m.slice(m.lastIndexOf('/') + 1)
  m = m.replace(/^meta-llama-/, 'llama-')
  m = m.replace(/-(\d{4}-\d{2}-\d{2}|\d{8})$/, '')
  m = m.replace(/\bv(\d+)p(\d+)\b/g, '$1-$2')
  m = m.replace(/(\d)\.(\d)/g, '$1-$2')
  const open = !/^(gpt-\d|chatgpt-|o\d|claude-|gemini-)/.test(m)
  // gpt-4-turbo and gpt-4 are different models; on open weights "-turbo" is a host's serving tier.
  if (open) m = m.replace(HOST_SUFFIXES, '')
  else m = m.replace(/-latest$/, '')
  return m
}

/** The family a model belongs to, or null when no row matches. */
export function modelFamily(model: string): ModelFamily | null {
  const key = canonicalModel(model)
  return MODEL_FAMILIES.find((f) => f.match.test(key)) ?? null
}

/** Words naming a tier within one generation (sonnet vs haiku, pro vs flash, mini, …). */
const TIER_WORDS = new Set([
  'mini', 'nano', 'micro', 'lite', 'flash', 'pro', 'plus', 'max', 'turbo', 'opus', 'sonnet', 'haiku', 'large', 'medium',
  'small', 'tiny', 'instant', 'fast', 'chat', 'latest', 'preview', 'exp',
])

/**
 * A model's generation without its tier: the models a cheaper or faster
 * sibling is looked for among first.
 * @example modelLine('gpt-4o-mini') === modelLine('gpt-4o') // 'gpt-4o'
 * @example modelLine('claude-haiku-4-5') // 'claude-4-5'
 */
export function modelLine(model: string): string {
  return canonicalModel(model)
    .split('-')
    .filter((w) => !TIER_WORDS.has(w))
    .join('-')
}

/**
 * Names to try for `model` on `provider` before scanning its catalog: the
 * model as is, and OpenRouter's `<vendor>/<model>` form.
 */
export function nameCandidates(model: string, provider: string): string[] {
  const names = [model]
  const family = modelFamily(model)
  if (provider === 'openrouter' && family && !model.includes('/')) {
    const bare = model.toLowerCase().replace(/-(\d{4}-\d{2}-\d{2}|\d{8})$/, '')
    names.push(`${family.openrouterVendor}/${model}`, `${family.openrouterVendor}/${bare}`)
    // OpenRouter writes versions with dots: anthropic/claude-sonnet-4.5.
    names.push(`${family.openrouterVendor}/${bare.replace(/(\d)-(\d)(?!\d)/g, '$1.$2')}`)
  }
  return [...new Set(names)]
}

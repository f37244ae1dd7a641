/**
 * Per-model unit prices for what-if arithmetic: the same source the proxy
 * prices calls with (config `priceOverrides` first, then genai-prices), read
 * as per-million-token rates so token volumes of a whole window can be
 * re-priced on another model linearly.
 */
import { calcPrice, findProvider, type ModelInfo, type ModelPrice } from '@pydantic/genai-prices'
import { pricingProviderId, type PriceOverride } from '../../lib/price.ts'
import { canonicalModel, nameCandidates } from './model-families.ts'

/** USD per million tokens of one model on one provider. */
export interface ModelPricing {
  /** Tollgate provider id. */
  provider: string
  /** The model name as it is called on that provider. */
  model: string
  /** The genai-prices model id (or the override's key) the prices come from. */
  pricedAs: string
  source: 'genai-prices' | 'override'
  inputMtok: number
  outputMtok: number
  /** Null: the model has no prompt-cache price (no prompt caching known). */
  cacheReadMtok: number | null
  cacheWriteMtok: number | null
  contextWindow: number | null
}

/** Token volumes as spans count them: input includes cached and cache-write tokens. */
export interface TokenVolumes {
  input: number
  cachedInput: number
  cacheWrite: number
  output: number
}

/** Prices for the recommendation rules; unit tests hand-build one. */
export interface PriceBook {
  /** The prices of `model` on `provider`, or null when neither overrides nor genai-prices know it. */
  lookup(provider: string, model: string): ModelPricing | null
  /**
   * The text-generation models genai-prices lists for `provider`: not
   * deprecated, not dated snapshots, not audio/image/embedding models, with
   * input and output prices. Sorted by id.
   */
  catalog(provider: string): readonly ModelPricing[]
}

/**
 * Cost of `v` at `p`'s rates. Linear on purpose: volumes summed over a window
 * are re-priced as a whole, so tiered long-context prices use their base tier.
 */
export function volumeCost(p: ModelPricing, v: TokenVolumes): number {
  const fresh = Math.max(0, v.input - v.cachedInput - v.cacheWrite)
  return (
    (fresh * p.inputMtok +
      v.cachedInput * (p.cacheReadMtok ?? p.inputMtok) +
      v.cacheWrite * (p.cacheWriteMtok ?? p.inputMtok) +
      v.output * p.outputMtok) /
    1e6
  )
}

/** A price key's base rate (tiered prices carry `base`). */
function rate(prices: ModelPrice, key: string): number | null {
  const v = prices[key]
  if (typeof v === 'number') return v
  if (v && typeof v === 'object' && 'base' in v && typeof v.base === 'number') return v.base
  return null
}

/** Price keys of models that are not plain text generation (audio, images, per-request fees). */
const NON_TEXT_PRICE = /audio|image|video|hours|characters|requests_kcount/
/** Ids that are not chat models, or not served by the provider's own API (gpt-oss on openai). */
const NON_CHAT_ID =
  /(embed|audio|realtime|tts|transcribe|whisper|image|dall-e|moderation|search|computer-use|vision|deep-research|^ft:|\.ft-|:free$|:extended$|-preview|-exp\b|gpt-oss)/
const DATED = /-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$/

/**
 * Builds the price book once per collector.
 * @param overrides config `priceOverrides`, matched exactly by model on any provider, as the proxy does.
 */
export function createPriceBook(overrides: Readonly<Record<string, PriceOverride>> = {}): PriceBook {
  const lookups = new Map<string, ModelPricing | null>()
  const catalogs = new Map<string, readonly ModelPricing[]>()

  function fromGenai(provider: string, model: string): ModelPricing | null {
    const providerId = pricingProviderId(provider)
    for (const name of nameCandidates(model, provider)) {
      let found: ReturnType<typeof calcPrice> = null
      try {
        found = calcPrice({ input_tokens: 1, output_tokens: 1 }, name, { providerId })
      } catch {
        // An unknown provider id throws in some versions; unknown is null here.
        found = null
      }
      if (!found) continue
      const input = rate(found.model_price, 'input_mtok')
      const output = rate(found.model_price, 'output_mtok')
      if (input === null || output === null) continue
      return {
        provider,
        model: name,
        pricedAs: found.model.id,
        source: 'genai-prices',
        inputMtok: input,
        outputMtok: output,
        cacheReadMtok: rate(found.model_price, 'cache_read_mtok'),
        cacheWriteMtok: rate(found.model_price, 'cache_write_mtok'),
        contextWindow: found.model.context_window ?? null,
      }
    }
    return null
  }

  function lookup(provider: string, model: string): ModelPricing | null {
    const key = `${provider}\u0000${model}`
    if (lookups.has(key)) return lookups.get(key) ?? null
    let result: ModelPricing | null = null
    const override = overrides[model]
    if (override) {
      result = {
        provider,
        model,
        pricedAs: model,
        source: 'override',
        inputMtok: override.input_mtok,
        outputMtok: override.output_mtok,
        cacheReadMtok: override.cache_read_mtok ?? null,
        cacheWriteMtok: override.cache_write_mtok ?? null,
        contextWindow: null,
      }
    } else {
      result = fromGenai(provider, model)
      // Not listed under the name as called: a catalog entry with the same canonical name (a host's spelling).
      if (!result) {
        const key = canonicalModel(model)
        const match = catalog(provider).find((m) => canonicalModel(m.pricedAs) === key)
        result = match ? { ...match } : null
      }
    }
    lookups.set(key, result)
    return result
  }

  function catalog(provider: string): readonly ModelPricing[] {
    const cached = catalogs.get(provider)
    if (cached) return cached
    const providerId = pricingProviderId(provider)
    let models: ModelInfo[] = []
    try {
      models = findProvider({ providerId })?.models ?? []
    } catch {
      models = []
    }
    const list: ModelPricing[] = []
    for (const info of models) {
      if (info.deprecated) continue
      if (NON_CHAT_ID.test(info.id) || DATED.test(info.id)) continue
      const priced = fromGenai(provider, info.id)
      // The id must resolve to itself, or its prices belong to another entry.
      if (!priced || priced.pricedAs !== info.id) continue
      const prices = Array.isArray(info.prices) ? (info.prices.at(-1)?.prices ?? {}) : info.prices
      if (Object.keys(prices).some((k) => NON_TEXT_PRICE.test(k))) continue
      if (priced.inputMtok <= 0 || priced.outputMtok <= 0) continue
      list.push(priced)
    }
    list.sort((a, b) => (a.pricedAs < b.pricedAs ? -1 : a.pricedAs > b.pricedAs ? 1 : 0))
    catalogs.set(provider, list)
    return list
  }

  return { lookup, catalog }
}

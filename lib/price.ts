/**
 * Cost of a call from its token counts, through `@pydantic/genai-prices`
 * (maintained data, cache- and reasoning-aware) or a per-model override from
 * config. An unknown model is `unpriced`, never $0; a call without usage is
 * `no_usage`, never a guess.
 */
import { calcPrice, type Provider, type Usage } from '@pydantic/genai-prices'
import { LRUCache } from 'lru-cache'
import type { CostStatus } from '../collector/schema.ts'

/** Token counts with the span contract's meaning (input includes cached and cache-write). */
export interface UsageCounts {
  input_tokens: number | null
  output_tokens: number | null
  cached_input_tokens: number | null
  cache_write_tokens: number | null
  reasoning_tokens: number | null
}

/** Tollgate provider ids whose genai-prices id differs. */
const PRICING_PROVIDER_IDS: Readonly<Record<string, string>> = { gemini: 'google', xai: 'x-ai' }

/** The genai-prices provider id for a span's `provider`. */
export function pricingProviderId(provider: string): string {
  return PRICING_PROVIDER_IDS[provider] ?? provider
}

export interface PriceOverride {
  input_mtok: number
  output_mtok: number
  cache_read_mtok?: number | undefined
  cache_write_mtok?: number | undefined
}

export interface CallCost {
  costUsd: number | null
  costStatus: CostStatus
}

export interface Pricer {
  /** Prices `usage` for the first of `models` that has a price; `provider` is the span's provider id. */
  price(provider: string, models: readonly (string | null)[], usage: UsageCounts): CallCost
}

/** Builds the pricer once: overrides become one genai-prices custom provider. */
export function createPricer(overrides: Readonly<Record<string, PriceOverride>> = {}): Pricer {
  const overrideProvider: Provider | null =
    Object.keys(overrides).length === 0
      ? null
      : {
          id: 'tollgate-overrides',
          name: 'Tollgate price overrides',
          api_pattern: '^$',
          models: Object.entries(overrides).map(([model, prices]) => ({
            id: model,
            match: { equals: model },
            prices: { ...prices },
          })),
        }

  // Matching a model name against genai-prices' whole catalogue is the
  // costly part of pricing (regexes over hundreds of models); once matched, a
  // one-model provider prices the next call of that model directly, with the
  // same data and the same date-dependent rules.
  const matched = new LRUCache<string, Provider | typeof NO_PRICE>({ max: 2000 })

  function priceOne(usage: Usage, model: string, providerId: string): ReturnType<typeof calcPrice> {
    const key = `${providerId}\u0000${model}`
    const known = matched.get(key)
    if (known === NO_PRICE) return null
    try {
      if (known) return calcPrice(usage, model, { provider: known })
      const result = calcPrice(usage, model, { providerId })
      matched.set(key, result ? { ...result.provider, models: [result.model] } : NO_PRICE)
      return result
    } catch {
      // genai-prices throws on usage it finds inconsistent (e.g. cache > input): unpriced, not a crash.
      return null
    }
  }

  return {
    price(provider, models, usage) {
      if (usage.input_tokens === null && usage.output_tokens === null) return { costUsd: null, costStatus: 'no_usage' }
      const priceUsage = toPriceUsage(usage)
      for (const model of models) {
        if (!model) continue
        const result =
          (overrideProvider && model in overrides ? calcPrice(priceUsage, model, { provider: overrideProvider }) : null) ??
          priceOne(priceUsage, model, pricingProviderId(provider))
        if (result) return { costUsd: roundUsd(result.total_price), costStatus: 'priced' }
      }
      return { costUsd: null, costStatus: 'unpriced' }
    },
  }
}

const NO_PRICE = Symbol('no price')

/** genai-prices takes total input with cache parts named alongside, as the contract does. */
function toPriceUsage(usage: UsageCounts): Usage {
  const out: Usage = {
    input_tokens: usage.input_tokens ?? 0,
    output_tokens: usage.output_tokens ?? 0,
  }
  if (usage.cached_input_tokens) out.cache_read_tokens = usage.cached_input_tokens
  if (usage.cache_write_tokens) out.cache_write_tokens = usage.cache_write_tokens
  return out
}

/** Float noise (0.1 + 0.2) rounded away at a billionth of a dollar. */
function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9
}

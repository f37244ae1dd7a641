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
  // same data and the same date-dependent rules. A model whose price is one
  // flat rate card (no tiers, no date or time-of-day conditions) goes further:
  // its cost is linear in the token counts, so genai-prices is asked once for
  // the rate of each count and later calls are four multiplications.
  const matched = new LRUCache<string, MatchedModel | typeof NO_PRICE>({ max: 2000 })

  function priceOne(usage: Usage, model: string, providerId: string): number | null {
    const key = `${providerId}\u0000${model}`
    let known = matched.get(key)
    if (known === NO_PRICE) return null
    if (known === undefined) {
      const result = calcSafely(usage, model, { providerId })
      // A throw (inconsistent usage) says nothing about the model: match again next time.
      if (result === undefined) return null
      known = result ? matchedModel({ ...result.provider, models: [result.model] }, model) : NO_PRICE
      matched.set(key, known)
      return result ? result.total_price : null
    }
    if (known.rates && withinLinearDomain(usage)) return linearPrice(known.rates, usage)
    return calcSafely(usage, model, { provider: known.provider })?.total_price ?? null
  }

  return {
    price(provider, models, usage) {
      if (usage.input_tokens === null && usage.output_tokens === null) return { costUsd: null, costStatus: 'no_usage' }
      const priceUsage = toPriceUsage(usage)
      for (const model of models) {
        if (!model) continue
        const total =
          (overrideProvider && model in overrides ? (calcSafely(priceUsage, model, { provider: overrideProvider })?.total_price ?? null) : null) ??
          priceOne(priceUsage, model, pricingProviderId(provider))
        if (total !== null) return { costUsd: roundUsd(total), costStatus: 'priced' }
      }
      return { costUsd: null, costStatus: 'unpriced' }
    },
  }
}

/** A model genai-prices matched, as a one-model provider, with its linear rates when its price allows them. */
interface MatchedModel {
  provider: Provider
  rates: LinearRates | null
}

/** USD per call, and USD per token of each count, as genai-prices computes them for a flat rate card. */
interface LinearRates {
  perCall: number
  input: number
  cacheRead: number
  cacheWrite: number
  output: number
}

/** calcPrice, with its throw on inconsistent usage (e.g. cache > input) as `undefined`. */
function calcSafely(usage: Usage, model: string, options: { provider: Provider } | { providerId: string }): ReturnType<typeof calcPrice> | undefined {
  try {
    return calcPrice(usage, model, options)
  } catch {
    return undefined
  }
}

const PROBE_TOKENS = 1_000_000

function matchedModel(provider: Provider, model: string): MatchedModel {
  const prices = provider.models[0]?.prices
  // Conditional prices change with the date or the time of day; tiered prices with the input size.
  const flat = prices !== undefined && !Array.isArray(prices) && Object.values(prices).every((p) => p === undefined || typeof p === 'number')
  if (!flat) return { provider, rates: null }
  const total = (usage: Usage): number | undefined => calcSafely(usage, model, { provider })?.total_price
  const none = total({ input_tokens: 0, output_tokens: 0 })
  const input = total({ input_tokens: PROBE_TOKENS, output_tokens: 0 })
  const cacheRead = total({ input_tokens: PROBE_TOKENS, output_tokens: 0, cache_read_tokens: PROBE_TOKENS })
  const cacheWrite = total({ input_tokens: PROBE_TOKENS, output_tokens: 0, cache_write_tokens: PROBE_TOKENS })
  const output = total({ input_tokens: 0, output_tokens: PROBE_TOKENS })
  if (none === undefined || input === undefined || cacheRead === undefined || cacheWrite === undefined || output === undefined) return { provider, rates: null }
  return {
    provider,
    rates: {
      perCall: none,
      input: (input - none) / PROBE_TOKENS,
      // A cached or cache-write token replaces a plain input token in the leaf genai-prices prices.
      cacheRead: (cacheRead - input) / PROBE_TOKENS,
      cacheWrite: (cacheWrite - input) / PROBE_TOKENS,
      output: (output - none) / PROBE_TOKENS,
    },
  }
}

/** Where genai-prices' result is linear in the counts: the cache parts fit inside the input (beyond it, it throws). */
function withinLinearDomain(usage: Usage): boolean {
  const input = usage.input_tokens ?? 0
  const cacheRead = usage.cache_read_tokens ?? 0
  const cacheWrite = usage.cache_write_tokens ?? 0
  const output = usage.output_tokens ?? 0
  // genai-prices rejects negative or non-finite counts; those go to it and are refused there.
  const valid = (n: number): boolean => Number.isFinite(n) && n >= 0
  return valid(input) && valid(cacheRead) && valid(cacheWrite) && valid(output) && cacheRead + cacheWrite <= input
}

function linearPrice(rates: LinearRates, usage: Usage): number {
  return (
    rates.perCall +
    rates.input * (usage.input_tokens ?? 0) +
    rates.cacheRead * (usage.cache_read_tokens ?? 0) +
    rates.cacheWrite * (usage.cache_write_tokens ?? 0) +
    rates.output * (usage.output_tokens ?? 0)
  )
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

import { calcPrice } from '@pydantic/genai-prices'
import { describe, expect, it } from 'vitest'
import { createPricer, type UsageCounts } from '../../lib/price.ts'

const usage = (u: Partial<UsageCounts>): UsageCounts => ({
  input_tokens: null,
  output_tokens: null,
  cached_input_tokens: null,
  cache_write_tokens: null,
  reasoning_tokens: null,
  ...u,
})

describe('createPricer', () => {
  const pricer = createPricer()

  it('prices with genai-prices, cache reads at their own rate', () => {
    const got = pricer.price('openai', ['gpt-4o'], usage({ input_tokens: 1000, cached_input_tokens: 400, output_tokens: 100 }))
    const expected = calcPrice({ input_tokens: 1000, cache_read_tokens: 400, output_tokens: 100 }, 'gpt-4o', { providerId: 'openai' })
    expect(got.costStatus).toBe('priced')
    expect(got.costUsd).toBeCloseTo(expected!.total_price, 12)
    // Cached reads are cheaper than fresh input: pricing them as plain input would be wrong.
    const uncached = pricer.price('openai', ['gpt-4o'], usage({ input_tokens: 1000, output_tokens: 100 }))
    expect(got.costUsd!).toBeLessThan(uncached.costUsd!)
  })

  it('prices Anthropic cache writes above plain input', () => {
    const withWrite = pricer.price('anthropic', ['claude-sonnet-4-20250514'], usage({ input_tokens: 5000, cache_write_tokens: 4000, output_tokens: 10 }))
    const plain = pricer.price('anthropic', ['claude-sonnet-4-20250514'], usage({ input_tokens: 5000, output_tokens: 10 }))
    expect(withWrite.costUsd!).toBeGreaterThan(plain.costUsd!)
  })

  it('falls through the model list: response model, then request model', () => {
    const got = pricer.price('openai', ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'], usage({ input_tokens: 10, output_tokens: 10 }))
    expect(got.costStatus).toBe('priced')
    expect(pricer.price('openai', [null, 'gpt-4o-mini'], usage({ input_tokens: 10, output_tokens: 10 })).costStatus).toBe('priced')
  })

  it('maps Tollgate provider ids to genai-prices ids (gemini → google, xai → x-ai)', () => {
    const got = pricer.price('gemini', ['gemini-2.5-flash'], usage({ input_tokens: 100, output_tokens: 100 }))
    const expected = calcPrice({ input_tokens: 100, output_tokens: 100 }, 'gemini-2.5-flash', { providerId: 'google' })
    expect(got.costUsd).toBeCloseTo(expected!.total_price, 12)
    expect(pricer.price('xai', ['grok-3'], usage({ input_tokens: 100, output_tokens: 100 })).costStatus).toBe('priced')
  })

  it('records an unknown model as unpriced, never $0', () => {
    expect(pricer.price('openai', ['totally-made-up-model'], usage({ input_tokens: 10, output_tokens: 10 }))).toEqual({ costUsd: null, costStatus: 'unpriced' })
  })

  it('records a call without usage as no_usage', () => {
    expect(pricer.price('openai', ['gpt-4o'], usage({}))).toEqual({ costUsd: null, costStatus: 'no_usage' })
  })

  it('uses a per-model override from config before genai-prices', () => {
    const custom = createPricer({ 'my-finetune': { input_mtok: 2, output_mtok: 8, cache_read_mtok: 1 }, 'gpt-4o': { input_mtok: 1, output_mtok: 1 } })
    expect(custom.price('openai', ['my-finetune'], usage({ input_tokens: 1_000_000, cached_input_tokens: 500_000, output_tokens: 1_000_000 }))).toEqual({
      costUsd: 2 * 0.5 + 1 * 0.5 + 8,
      costStatus: 'priced',
    })
    expect(custom.price('openai', ['gpt-4o'], usage({ input_tokens: 1_000_000, output_tokens: 0 })).costUsd).toBe(1)
  })
})

describe('the matched-model cache', () => {
  it('prices repeat calls exactly as the first, including unknown models', () => {
    const pricer = createPricer()
    const u = { input_tokens: 1234, output_tokens: 567, cached_input_tokens: 200, cache_write_tokens: null, reasoning_tokens: null }
    const first = pricer.price('openai', ['gpt-4o-2024-08-06'], u)
    for (let i = 0; i < 3; i++) expect(pricer.price('openai', ['gpt-4o-2024-08-06'], u)).toEqual(first)
    const direct = calcPrice({ input_tokens: 1234, output_tokens: 567, cache_read_tokens: 200 }, 'gpt-4o-2024-08-06', { providerId: 'openai' })
    expect(first.costUsd).toBeCloseTo(direct!.total_price, 12)
    expect(pricer.price('openai', ['nope-model'], u).costStatus).toBe('unpriced')
    expect(pricer.price('openai', ['nope-model'], u).costStatus).toBe('unpriced')
    // A different usage on a cached model is priced afresh, not reused.
    expect(pricer.price('openai', ['gpt-4o-2024-08-06'], { ...u, output_tokens: 10 }).costUsd).toBeLessThan(first.costUsd!)
  })
})

describe('flat-rate models', () => {
  // The pricer prices a flat rate card (no tiers, no date or time-of-day conditions) from rates
  // it reads off genai-prices once; every such model must price exactly as genai-prices does.
  it('price every catalogue model as calcPrice does, over many usages', async () => {
    const { findProvider } = await import('@pydantic/genai-prices')
    const pricer = createPricer()
    const usages: UsageCounts[] = [
      usage({ input_tokens: 0, output_tokens: 0 }),
      usage({ input_tokens: 1, output_tokens: 1 }),
      usage({ input_tokens: 120, output_tokens: 48 }),
      usage({ input_tokens: 1000, cached_input_tokens: 400, output_tokens: 100 }),
      usage({ input_tokens: 5000, cache_write_tokens: 4000, output_tokens: 10 }),
      usage({ input_tokens: 9000, cached_input_tokens: 3000, cache_write_tokens: 6000, output_tokens: 77 }),
      usage({ input_tokens: 2_345_678, cached_input_tokens: 1_000_001, output_tokens: 123_457 }),
      usage({ input_tokens: null, output_tokens: 500 }),
      // Beyond the linear domain (cache parts exceed the input): handed to genai-prices as before.
      usage({ input_tokens: 10, cached_input_tokens: 20, output_tokens: 5 }),
    ]
    let compared = 0
    for (const [tollgateId, providerId] of [['openai', 'openai'], ['anthropic', 'anthropic'], ['gemini', 'google'], ['groq', 'groq'], ['mistral', 'mistral'], ['deepseek', 'deepseek'], ['xai', 'x-ai']] as const) {
      const provider = findProvider({ providerId })
      expect(provider, providerId).toBeDefined()
      for (const model of provider!.models) {
        for (const u of usages) {
          // Twice: the first call matches the model, the second takes the cached path.
          pricer.price(tollgateId, [model.id], u)
          const got = pricer.price(tollgateId, [model.id], u)
          let expected: number | null = null
          try {
            const cacheRead = u.cached_input_tokens ? { cache_read_tokens: u.cached_input_tokens } : {}
            const cacheWrite = u.cache_write_tokens ? { cache_write_tokens: u.cache_write_tokens } : {}
            const r = calcPrice({ input_tokens: u.input_tokens ?? 0, output_tokens: u.output_tokens ?? 0, ...cacheRead, ...cacheWrite }, model.id, { providerId })
            expected = r ? r.total_price : null
          } catch {
            expected = null
          }
          if (expected === null) expect(got.costStatus, `${providerId}/${model.id}`).toBe('unpriced')
          else {
            expect(got.costStatus, `${providerId}/${model.id}`).toBe('priced')
            // Both are rounded to a billionth of a dollar; the last digit may differ by float noise only.
            expect(Math.abs(got.costUsd! - Math.round(expected * 1e9) / 1e9), `${providerId}/${model.id} ${JSON.stringify(u)}`).toBeLessThanOrEqual(1.0000001e-9)
          }
          compared++
        }
      }
    }
    expect(compared).toBeGreaterThan(500)
  })
})

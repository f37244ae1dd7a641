/** Picks the usage-extraction code for a provider family. */
import type { ProviderAdapter, ProviderFamily } from '../types.ts'
import { anthropicAdapter } from './anthropic.ts'
import { geminiAdapter } from './gemini.ts'
import { openaiAdapter } from './openai.ts'

const ADAPTERS: Readonly<Record<ProviderFamily, ProviderAdapter>> = {
  openai: openaiAdapter,
  anthropic: anthropicAdapter,
  gemini: geminiAdapter,
}

export function adapterFor(family: ProviderFamily): ProviderAdapter {
  return ADAPTERS[family]
}

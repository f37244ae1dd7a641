import { describe, expect, it } from 'vitest'
import { classifyPath, providerForHost, reverseRouter, routeReverse } from '../../proxy/route.ts'

describe('routeReverse', () => {
  it('maps each documented prefix to its provider and public base', () => {
    const cases: [string, string, string, string][] = [
      ['/openai/v1/chat/completions', 'openai', 'https://api.openai.com', '/v1/chat/completions'],
      ['/anthropic/v1/messages', 'anthropic', 'https://api.anthropic.com', '/v1/messages'],
      ['/gemini/v1beta/models/gemini-2.5-flash:generateContent', 'gemini', 'https://generativelanguage.googleapis.com', '/v1beta/models/gemini-2.5-flash:generateContent'],
      ['/groq/openai/v1/chat/completions', 'groq', 'https://api.groq.com', '/openai/v1/chat/completions'],
      ['/mistral/v1/chat/completions', 'mistral', 'https://api.mistral.ai', '/v1/chat/completions'],
      ['/deepseek/v1/chat/completions', 'deepseek', 'https://api.deepseek.com', '/v1/chat/completions'],
      ['/openrouter/api/v1/chat/completions', 'openrouter', 'https://openrouter.ai', '/api/v1/chat/completions'],
      ['/together/v1/chat/completions', 'together', 'https://api.together.xyz', '/v1/chat/completions'],
      ['/fireworks/inference/v1/chat/completions', 'fireworks', 'https://api.fireworks.ai', '/inference/v1/chat/completions'],
      ['/xai/v1/chat/completions', 'xai', 'https://api.x.ai', '/v1/chat/completions'],
    ]
    for (const [path, id, base, upstreamPath] of cases) {
      const route = routeReverse(path, {})
      expect(route?.provider.id, path).toBe(id)
      expect(route?.upstreamBase, path).toBe(base)
      expect(route?.upstreamPath, path).toBe(upstreamPath)
    }
  })

  it('keeps the query string, Gemini key included, for the upstream', () => {
    const route = routeReverse('/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=abc', {})
    expect(route?.upstreamPath).toBe('/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=abc')
    expect(route?.endpoint).toBe('generate')
    expect(route?.pathModel).toBe('gemini-2.5-pro')
    expect(route?.pathStream).toBe(true)
  })

  it('routes Azure by resource name, or to the override base', () => {
    const route = routeReverse('/azure/myres/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21', {})
    expect(route?.upstreamBase).toBe('https://myres.openai.azure.com')
    expect(route?.upstreamPath).toBe('/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21')
    expect(route?.pathModel).toBe('gpt4o-prod')
    expect(route?.endpoint).toBe('chat')
    const local = routeReverse('/azure/myres/openai/deployments/d/embeddings', { azure: 'http://127.0.0.1:9' })
    expect(local?.upstreamBase).toBe('http://127.0.0.1:9')
    expect(local?.endpoint).toBe('embeddings')
    expect(routeReverse('/azure/bad.host/openai/x', {})).toBeNull()
  })

  it('applies TOLLGATE_UPSTREAM_<PROVIDER> overrides', () => {
    expect(routeReverse('/openai/v1/embeddings', { openai: 'http://127.0.0.1:9900' })?.upstreamBase).toBe('http://127.0.0.1:9900')
  })

  it('returns null for unknown or missing prefixes', () => {
    expect(routeReverse('/nope/v1/chat/completions', {})).toBeNull()
    expect(routeReverse('/', {})).toBeNull()
    expect(routeReverse('/metricsx', {})).toBeNull()
  })
})

describe('classifyPath', () => {
  it('names the endpoint kind', () => {
    expect(classifyPath('/v1/chat/completions').endpoint).toBe('chat')
    expect(classifyPath('/v1/responses').endpoint).toBe('responses')
    expect(classifyPath('/v1/messages').endpoint).toBe('messages')
    expect(classifyPath('/v1/embeddings').endpoint).toBe('embeddings')
    expect(classifyPath('/v1beta/models/text-embedding-004:embedContent').endpoint).toBe('embeddings')
    expect(classifyPath('/v1/models').endpoint).toBe('other')
    expect(classifyPath('/v1/messages/count_tokens').endpoint).toBe('other')
  })
})

describe('providerForHost', () => {
  it('knows the LLM API hosts, Azure by suffix, and config additions', () => {
    expect(providerForHost('api.openai.com')?.id).toBe('openai')
    expect(providerForHost('API.ANTHROPIC.COM')?.id).toBe('anthropic')
    expect(providerForHost('myres.openai.azure.com')?.id).toBe('azure')
    expect(providerForHost('example.com')).toBeNull()
    expect(providerForHost('llm.internal', { 'llm.internal': 'openai' })?.id).toBe('openai')
  })
})

describe('routeForward', () => {
  it('sends a known host to itself, or to the provider override', async () => {
    const { routeForward } = await import('../../proxy/route.ts')
    const direct = routeForward('https', 'api.openai.com', 443, '/v1/chat/completions', {})
    expect(direct).toMatchObject({ upstreamBase: 'https://api.openai.com', upstreamPath: '/v1/chat/completions', endpoint: 'chat' })
    expect(direct?.provider.id).toBe('openai')
    expect(routeForward('https', 'api.anthropic.com', 8443, '/v1/messages', {})?.upstreamBase).toBe('https://api.anthropic.com:8443')
    expect(routeForward('https', 'api.openai.com', 443, '/v1/embeddings', { openai: 'http://127.0.0.1:9' })?.upstreamBase).toBe('http://127.0.0.1:9')
    expect(routeForward('https', 'res1.openai.azure.com', 443, '/openai/deployments/d1/chat/completions', {})).toMatchObject({ pathModel: 'd1', endpoint: 'chat' })
    expect(routeForward('https', 'example.com', 443, '/', {})).toBeNull()
  })
})

describe('reverseRouter', () => {
  it('routes as routeReverse does, keeps a path without a query, never one with a query', () => {
    const overrides = { openai: 'http://127.0.0.1:9' }
    const router = reverseRouter(overrides)
    for (const path of ['/openai/v1/chat/completions', '/anthropic/v1/messages', '/nope/x', '/azure/res/openai/deployments/d/chat/completions', '/gemini/v1beta/models/m:generateContent?key=secret']) {
      expect(router(path)).toEqual(routeReverse(path, overrides))
      expect(router(path)).toEqual(routeReverse(path, overrides))
    }
    expect(router('/openai/v1/chat/completions')).toBe(router('/openai/v1/chat/completions'))
    const withKey = '/gemini/v1beta/models/m:generateContent?key=secret'
    expect(router(withKey)).not.toBe(router(withKey))
  })

  it('stays bounded under a scan of distinct paths', () => {
    const router = reverseRouter({})
    const first = router('/openai/v1/chat/completions')
    for (let i = 0; i < 5000; i++) router(`/openai/v1/x${i}`)
    // Still correct after it started over, and the first route was forgotten along the way.
    expect(router('/openai/v1/chat/completions')).toEqual(first)
    expect(router('/openai/v1/chat/completions')).not.toBe(first)
  })
})

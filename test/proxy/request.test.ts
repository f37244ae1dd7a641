import { describe, expect, it } from 'vitest'
import { readRequestInfo, splitClientHeaders } from '../../proxy/request.ts'

describe('splitClientHeaders', () => {
  it('reads x-tollgate-* headers into the attribution and leaves them out of the upstream headers', () => {
    const headers: Record<string, string | string[] | undefined> = {
      'x-tollgate-user': 'alice',
      'x-tollgate-session': 's-1',
      'x-tollgate-app': 'checkout',
      'x-tollgate-property-team': 'growth',
      'x-tollgate-property-env': 'prod',
      authorization: 'Bearer sk-test',
      'content-type': 'application/json',
    }
    const { attribution, upstream } = splitClientHeaders(headers)
    expect(attribution).toEqual({ user: 'alice', session: 's-1', app: 'checkout', properties: { team: 'growth', env: 'prod' } })
    expect(upstream).toEqual({ authorization: 'Bearer sk-test', 'content-type': 'application/json' })
  })

  it('caps value length and property count', () => {
    const headers: Record<string, string> = { 'x-tollgate-user': 'u'.repeat(1000) }
    for (let i = 0; i < 50; i++) headers[`x-tollgate-property-p${i}`] = 'v'
    const { attribution, upstream } = splitClientHeaders(headers)
    expect(attribution.user).toHaveLength(256)
    expect(Object.keys(attribution.properties)).toHaveLength(32)
    expect(upstream).toEqual({})
  })

  it('drops RFC 9110 hop-by-hop fields and those named by Connection, keeping multi-valued fields whole', () => {
    const headers: Record<string, string | string[]> = {
      connection: 'keep-alive, X-Private-Hop',
      'keep-alive': 'timeout=5',
      'x-private-hop': '1',
      te: 'trailers',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic abc',
      'proxy-connection': 'keep-alive',
      trailer: 'x-checksum',
      'x-api-key': 'k',
      'set-cookie': ['a=1', 'b=2'],
    }
    const { upstream } = splitClientHeaders(headers)
    expect(upstream).toEqual({ 'x-api-key': 'k', 'set-cookie': ['a=1', 'b=2'] })
  })
})

describe('readRequestInfo', () => {
  it('reads model, stream and include_usage', () => {
    const body = Buffer.from(JSON.stringify({ model: 'gpt-4o', stream: true, stream_options: { include_usage: true } }))
    expect(readRequestInfo(body, false)).toMatchObject({ model: 'gpt-4o', stream: true, includeUsage: true })
    expect(readRequestInfo(Buffer.from('{"model":"m","stream":true}'), false)).toMatchObject({ model: 'm', stream: true, includeUsage: null })
  })
  it('survives malformed and non-object bodies', () => {
    expect(readRequestInfo(Buffer.from('{"model": '), false)).toEqual({ model: null, stream: false, includeUsage: null, requestHash: null, prefixHash: null, prefixBytes: null })
    expect(readRequestInfo(Buffer.from('[1,2]'), false).model).toBeNull()
    expect(readRequestInfo(Buffer.alloc(0), false).model).toBeNull()
  })
  it('scans the head of a body too large to parse', () => {
    const head = Buffer.from('{"model":"claude-sonnet-4-5","stream":true,"messages":[{"content":"xxxxxxxx')
    expect(readRequestInfo(head, true)).toMatchObject({ model: 'claude-sonnet-4-5', stream: true })
  })
})

describe('reusable prefix', () => {
  const ask = (messages: unknown[], extra: object = {}) => readRequestInfo(Buffer.from(JSON.stringify({ model: 'claude-sonnet-4-5', messages, ...extra })), false)

  it('is shared by requests that differ only in the newest turn', () => {
    const history = [{ role: 'user', content: 'long shared context '.repeat(100) }, { role: 'assistant', content: 'ok' }]
    const a = ask([...history, { role: 'user', content: 'question A' }], { system: 'You are terse.' })
    const b = ask([...history, { role: 'user', content: 'question B' }], { system: 'You are terse.' })
    expect(a.prefixHash).toMatch(/^[0-9a-f]{32}$/)
    expect(a.prefixHash).toBe(b.prefixHash)
    expect(a.prefixBytes).toBeGreaterThan(2000)
    const otherSystem = ask([...history, { role: 'user', content: 'question A' }], { system: 'You are verbose.' })
    expect(otherSystem.prefixHash).not.toBe(a.prefixHash)
  })

  it('is absent for a lone first turn without system prompt or tools', () => {
    expect(ask([{ role: 'user', content: 'hi' }]).prefixHash).toBeNull()
    expect(ask([{ role: 'user', content: 'hi' }], { system: 'be nice' }).prefixHash).not.toBeNull()
  })
})

/**
 * TOLLGATE_CAPTURE_BODIES: off keeps none, errors keeps failed calls' bodies,
 * all keeps every call's — capped, redacted, stored beside the span in
 * ClickHouse and shown by GET /api/spans/<id> (never in the list).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { mockFaultHeaders, mockText, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

let upstream: MockUpstream
beforeAll(async () => {
  upstream = await startMockUpstream()
})
afterAll(() => upstream.close())

const secretPrompt = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'my key is sk-proj-LEAKED0123456789abcdef, keep it safe' }] })

async function call(tg: TestTollgate, headers: Record<string, string> = {}, body = secretPrompt): Promise<Span> {
  const before = (await tg.spans()).length
  const res = await fetch(`${tg.proxyUrl}/openai/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })
  await res.text()
  const [listed] = await tg.waitForSpans(before + 1)
  expect(listed!.request_body, 'the list never carries bodies').toBeUndefined()
  return tg.api<Span>(`/api/spans/${listed!.span_id}`)
}

describe.each(['off', 'errors', 'all'] as const)('captureBodies=%s', (mode) => {
  let tg: TestTollgate
  beforeAll(async () => {
    tg = await startTestTollgate({ upstreams: { openai: upstream.url }, captureBodies: mode })
  })
  afterAll(() => tg.close())

  it('keeps the bodies the mode asks for, redacted', async () => {
    const ok = await call(tg)
    const failed = await call(tg, mockFaultHeaders({ status: 429 }))
    expect(failed.error_type).toBe('rate_limited')

    if (mode === 'off') {
      expect([ok.request_body, ok.response_body, failed.request_body, failed.response_body]).toEqual([null, null, null, null])
      return
    }
    expect(failed.request_body).toContain('keep it safe')
    expect(failed.request_body).not.toContain('LEAKED0123456789')
    expect(failed.response_body).toContain('rate_limit_exceeded')
    if (mode === 'errors') {
      expect(ok.request_body).toBeNull()
      expect(ok.response_body).toBeNull()
    } else {
      expect(ok.request_body).toContain('[redacted]')
      expect(JSON.parse(ok.response_body!).choices[0].message.content).toBe(mockText())
    }
  })
})

describe('captured bodies are capped', () => {
  it('keeps at most 64 KiB of a large request', async () => {
    const tg = await startTestTollgate({ upstreams: { openai: upstream.url }, captureBodies: 'all' })
    try {
      const big = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(300_000) }] })
      const span = await call(tg, {}, big)
      expect(span.request_body!.length).toBe(64 * 1024)
      expect(span.request_bytes).toBe(Buffer.byteLength(big))
      const missing = await fetch(`${tg.collectorUrl}/api/spans/00000000-0000-4000-8000-000000000000`)
      expect(missing.status).toBe(404)
    } finally {
      await tg.close()
    }
  })
})

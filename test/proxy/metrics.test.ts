import { describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { createProxyMetrics } from '../../proxy/metrics.ts'

function span(model: string): Span {
  return {
    span_id: 'x', started_at: '', ended_at: '', mode: 'reverse', provider: 'openai', endpoint: 'chat',
    request_model: model, response_model: null, stream: false, status_code: 200, error_type: 'none',
    duration_ms: 10, ttft_ms: 5, input_tokens: 1, output_tokens: 1, cached_input_tokens: null, cache_write_tokens: null,
    reasoning_tokens: null, cost_usd: 0.001, cost_status: 'priced', finish_reason: 'stop', user: 'u1', session: null,
    app: null, properties: {}, request_bytes: 1, response_bytes: 1, client_addr: '127.0.0.1',
  }
}

describe('model label cap', () => {
  it('folds models past maxModelLabels into "other" so series stay bounded', async () => {
    const metrics = createProxyMetrics({ maxModelLabels: 5, defaultMetrics: false })
    for (let i = 0; i < 500; i++) metrics.recordSpan(span(`invented-model-${i}`))
    const text = await metrics.registry.metrics()
    const models = new Set([...text.matchAll(/tollgate_requests_total\{[^}]*model="([^"]+)"/g)].map((m) => m[1]))
    expect(models.size).toBe(6)
    expect(models.has('other')).toBe(true)
    expect(text).toMatch(/tollgate_requests_total\{provider="openai",model="other",endpoint="chat",status_class="2xx"\} 495/)
    // Never a per-caller label.
    expect(text).not.toContain('u1')
  })
})

import { describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { fastSpan, parseSpan, PROPERTY_LIMITS, spanSchema, validateSpanBatch, type BatchResult } from '../../collector/validate.ts'

/** A span as the proxy sends it: an Anthropic streamed call with prompt caching. */
function proxySpan(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    span_id: '3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f',
    started_at: '2025-06-01T12:00:00.000Z',
    ended_at: '2025-06-01T12:00:02.345Z',
    mode: 'reverse',
    provider: 'anthropic',
    endpoint: 'messages',
    request_model: 'claude-sonnet-4-5',
    response_model: 'claude-sonnet-4-5-20250929',
    stream: true,
    status_code: 200,
    error_type: 'none',
    duration_ms: 2345.123,
    ttft_ms: 412.5,
    input_tokens: 12_450,
    output_tokens: 830,
    cached_input_tokens: 12_000,
    cache_write_tokens: 0,
    reasoning_tokens: null,
    cost_usd: 0.016_245,
    cost_status: 'priced',
    finish_reason: 'end_turn',
    user: 'user-42',
    session: 'sess-9',
    app: 'support-bot',
    properties: { team: 'growth', env: 'prod' },
    request_bytes: 48_211,
    response_bytes: 9_840,
    client_addr: '10.0.0.7',
    ...overrides,
  }
}

function ok(result: BatchResult): Extract<BatchResult, { spans: Span[] }> {
  if ('error' in result) throw new Error(`unexpected batch error: ${result.error}`)
  return result
}

function rejectionOf(span: Record<string, unknown>): { field: string; message: string } {
  const { rejected, spans } = ok(validateSpanBatch([span]))
  expect(spans).toHaveLength(0)
  expect(rejected).toHaveLength(1)
  const [first] = rejected
  if (!first) throw new Error('no rejection')
  return { field: first.field, message: first.message }
}

describe('validateSpanBatch: valid spans', () => {
  it('accepts a batch of proxy spans unchanged', () => {
    const second = proxySpan({
      span_id: '9a1d6f0e-2c3b-4a5d-8e7f-0b1c2d3e4f50',
      provider: 'openai',
      endpoint: 'chat',
      cost_usd: null,
      cost_status: 'unpriced',
      properties: {},
    })
    const { spans, rejected } = ok(validateSpanBatch([proxySpan(), second]))
    expect(rejected).toEqual([])
    expect(spans).toEqual([proxySpan(), second])
  })

  it('normalises times to toISOString() form and the id to lower case', () => {
    const { spans } = ok(
      validateSpanBatch([
        proxySpan({
          span_id: '3F2B8C1E-5D4A-4E7B-9C0D-1A2B3C4D5E6F',
          started_at: '2025-06-01T14:00:00+02:00',
          ended_at: '2025-06-01T12:00:02.345678Z',
        }),
      ]),
    )
    expect(spans[0]?.span_id).toBe('3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f')
    expect(spans[0]?.started_at).toBe('2025-06-01T12:00:00.000Z')
    expect(spans[0]?.ended_at).toBe('2025-06-01T12:00:02.345Z')
  })

  it('fills missing nullable fields with null and missing properties with {}', () => {
    const sparse = proxySpan()
    for (const key of ['request_model', 'response_model', 'ttft_ms', 'input_tokens', 'output_tokens', 'cached_input_tokens',
      'cache_write_tokens', 'reasoning_tokens', 'finish_reason', 'user', 'session', 'app', 'client_addr', 'properties']) {
      delete sparse[key]
    }
    sparse['cost_usd'] = undefined
    sparse['cost_status'] = 'no_usage'
    const { spans, rejected } = ok(validateSpanBatch([sparse]))
    expect(rejected).toEqual([])
    expect(spans[0]).toMatchObject({
      request_model: null, response_model: null, ttft_ms: null, input_tokens: null, output_tokens: null,
      cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null, cost_usd: null,
      finish_reason: null, user: null, session: null, app: null, client_addr: null, properties: {},
    })
  })

  it('ignores unknown fields from newer senders', () => {
    const { spans } = ok(validateSpanBatch([proxySpan({ tenant_id: 't-1', gpu_seconds: 3.2 })]))
    expect(spans[0]).not.toHaveProperty('tenant_id')
    expect(spans[0]).toEqual(proxySpan())
  })

  it('exports the schema itself', () => {
    expect(spanSchema.safeParse(proxySpan()).success).toBe(true)
  })
})

describe('validateSpanBatch: bad spans', () => {
  it('keeps the good spans of a mixed batch and names each bad one by index and field', () => {
    const batch = [
      proxySpan(),
      proxySpan({ input_tokens: -5 }),
      proxySpan({ span_id: '9a1d6f0e-2c3b-4a5d-8e7f-0b1c2d3e4f50' }),
      proxySpan({ mode: 'sideways' }),
      'not a span',
      proxySpan({ properties: { team: 42 } }),
    ]
    const { spans, rejected } = ok(validateSpanBatch(batch))
    expect(spans.map((s) => s.span_id)).toEqual([
      '3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f',
      '9a1d6f0e-2c3b-4a5d-8e7f-0b1c2d3e4f50',
    ])
    expect(rejected.map(({ index, field }) => ({ index, field }))).toEqual([
      { index: 1, field: 'input_tokens' },
      { index: 3, field: 'mode' },
      { index: 4, field: '' },
      { index: 5, field: 'properties.team' },
    ])
    expect(rejected[2]?.message).toBe('expected a span object, received string')
  })

  it('rejects a bad enum value, naming the allowed ones', () => {
    const mode = rejectionOf(proxySpan({ mode: 'sideways' }))
    expect(mode.field).toBe('mode')
    expect(mode.message).toContain('"reverse"')
    expect(rejectionOf(proxySpan({ endpoint: 'completions' })).field).toBe('endpoint')
    expect(rejectionOf(proxySpan({ error_type: 'oops' })).field).toBe('error_type')
    expect(rejectionOf(proxySpan({ cost_status: 'free' })).field).toBe('cost_status')
  })

  it('rejects negative, fractional and non-finite counts and durations', () => {
    expect(rejectionOf(proxySpan({ input_tokens: -5 }))).toEqual({ field: 'input_tokens', message: 'must not be negative' })
    expect(rejectionOf(proxySpan({ output_tokens: 1.5 })).field).toBe('output_tokens')
    expect(rejectionOf(proxySpan({ reasoning_tokens: '12' })).field).toBe('reasoning_tokens')
    expect(rejectionOf(proxySpan({ duration_ms: -1 })).field).toBe('duration_ms')
    expect(rejectionOf(proxySpan({ duration_ms: Number.NaN })).field).toBe('duration_ms')
    expect(rejectionOf(proxySpan({ ttft_ms: Number.POSITIVE_INFINITY })).field).toBe('ttft_ms')
    expect(rejectionOf(proxySpan({ response_bytes: -1 })).field).toBe('response_bytes')
    expect(rejectionOf(proxySpan({ status_code: 2000 })).field).toBe('status_code')
  })

  it('rejects a span_id that is not a UUID and times without a zone or out of range', () => {
    expect(rejectionOf(proxySpan({ span_id: 'abc123' }))).toEqual({ field: 'span_id', message: 'expected a UUID' })
    expect(rejectionOf(proxySpan({ started_at: '2025-06-01T12:00:00' })).field).toBe('started_at')
    expect(rejectionOf(proxySpan({ started_at: 1748779200000 })).field).toBe('started_at')
    expect(rejectionOf(proxySpan({ ended_at: '1800-01-01T00:00:00Z' })).field).toBe('ended_at')
  })

  it('says "required" for a missing required field', () => {
    const span = proxySpan()
    delete span['provider']
    expect(rejectionOf(span)).toEqual({ field: 'provider', message: 'required' })
  })

  it('reports the first bad field and counts the others', () => {
    const { field, message } = rejectionOf(proxySpan({ stream: 'yes', input_tokens: -1, user: 7 }))
    expect(field).toBe('stream')
    expect(message).toMatch(/\(and 2 more issues\)$/)
  })

  it('rejects over-long strings instead of truncating them', () => {
    expect(rejectionOf(proxySpan({ request_model: 'm'.repeat(257) }))).toEqual({
      field: 'request_model',
      message: 'longer than 256 characters',
    })
    expect(rejectionOf(proxySpan({ user: 'u'.repeat(257) })).field).toBe('user')
    expect(rejectionOf(proxySpan({ provider: '' })).field).toBe('provider')
  })

  it('holds cost_usd to cost_status', () => {
    expect(rejectionOf(proxySpan({ cost_status: 'unpriced' })).field).toBe('cost_usd')
    expect(rejectionOf(proxySpan({ cost_usd: null })).field).toBe('cost_usd')
    expect(rejectionOf(proxySpan({ cost_usd: -0.01 })).field).toBe('cost_usd')
  })
})

describe('validateSpanBatch: properties', () => {
  it('rejects more than 64 properties', () => {
    const many = Object.fromEntries(Array.from({ length: PROPERTY_LIMITS.maxKeys + 1 }, (_, i) => [`k${i}`, 'v']))
    expect(rejectionOf(proxySpan({ properties: many }))).toEqual({
      field: 'properties',
      message: 'has 65 keys; at most 64 are allowed',
    })
    const enough = Object.fromEntries(Array.from({ length: PROPERTY_LIMITS.maxKeys }, (_, i) => [`k${i}`, 'v']))
    expect(ok(validateSpanBatch([proxySpan({ properties: enough })])).spans).toHaveLength(1)
  })

  it('rejects long names and values, naming the property', () => {
    const longKey = 'k'.repeat(129)
    expect(rejectionOf(proxySpan({ properties: { [longKey]: 'v' } }))).toEqual({
      field: `properties.${longKey}`,
      message: 'property name longer than 128 characters',
    })
    expect(rejectionOf(proxySpan({ properties: { team: 'x'.repeat(1025) } }))).toEqual({
      field: 'properties.team',
      message: 'value longer than 1024 characters',
    })
    expect(rejectionOf(proxySpan({ properties: { team: 42 } }))).toEqual({
      field: 'properties.team',
      message: 'expected a string value, received number',
    })
    expect(rejectionOf(proxySpan({ properties: ['growth'] })).field).toBe('properties')
  })
})

describe('validateSpanBatch: the batch', () => {
  it('refuses a body that is not an array', () => {
    expect(validateSpanBatch({ spans: [proxySpan()] })).toEqual({ error: 'expected a JSON array of spans, received object' })
    expect(validateSpanBatch(null)).toEqual({ error: 'expected a JSON array of spans, received null' })
    expect(validateSpanBatch('[]')).toEqual({ error: 'expected a JSON array of spans, received string' })
  })

  it('refuses a batch above maxSpans and accepts one at it', () => {
    const four = [0, 1, 2, 3].map(() => proxySpan())
    const refused = validateSpanBatch(four, { maxSpans: 3 })
    expect(refused).toHaveProperty('error')
    expect('error' in refused && refused.error).toMatch(/4 spans exceeds the limit of 3/)
    expect(ok(validateSpanBatch(four.slice(0, 3), { maxSpans: 3 })).spans).toHaveLength(3)
  })

  it('defaults maxSpans to 10 000', () => {
    const span = proxySpan()
    expect(validateSpanBatch(new Array(10_001).fill(span))).toHaveProperty('error')
    expect(ok(validateSpanBatch(new Array(10_000).fill(span))).spans).toHaveLength(10_000)
  })

  it('accepts an empty batch', () => {
    expect(validateSpanBatch([])).toEqual({ spans: [], rejected: [] })
  })
})

describe('the hand-written fast path agrees with zod', () => {
  // Values a sender might put in any field: right, wrong, edge and odd.
  const probes: unknown[] = [
    undefined, null, '', 'x', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(256), 'x'.repeat(257), 0, 1, -1, 1.5, 999, 1000,
    2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, -0, true, false, {}, [], [1],
    { a: 'b' }, '2025-06-01T12:00:00.000Z', '2025-06-01T12:00:00Z', '2025-06-01T12:00:00.000+02:00', '2025-06-01 12:00:00',
    '2300-01-01T00:00:00.000Z', '1899-12-31T23:59:59.999Z', '1900-01-01T00:00:00.000Z', '2299-12-31T23:59:59.999Z',
    '2025-02-30T12:00:00.000Z', '2024-02-29T12:00:00.000Z', '2025-02-29T12:00:00.000Z', '2025-13-01T00:00:00.000Z',
    '2025-06-31T00:00:00.000Z', '2025-06-01T24:00:00.000Z', '2025-06-01T23:60:00.000Z', '2025-06-01T23:59:60.000Z',
    '2025-06-01T12:00:00.000z', '+02025-06-01T12:00:00.000Z', '3F2B8C1E-5D4A-4E7B-9C0D-1A2B3C4D5E6F',
    '00000000-0000-0000-0000-000000000000', '3f2b8c1e-5d4a-0e7b-9c0d-1a2b3c4d5e6f', 'abcdef01', 'ABCDEF01', 'abcdef0', 'f'.repeat(64),
    'f'.repeat(65), 'reverse', 'forward', 'otlp', 'chat', 'none', 'rate_limited', 'priced', 'unpriced', 'no_usage',
  ]
  const propertyProbes: unknown[] = [
    { '': 'x' }, { ['k'.repeat(129)]: 'x' }, { k: 'v'.repeat(1025) }, { k: 1 }, { k: null },
    Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])), JSON.parse('{"__proto__":"x"}'), Object.create(null),
  ]
  const bases: Record<string, unknown>[] = [
    proxySpan(),
    proxySpan({ cost_status: 'unpriced', cost_usd: null, ttft_ms: null, properties: {} }),
    proxySpan({ request_hash: 'abcdef0123456789', prefix_hash: null, prefix_bytes: 12, request_body: '{}', response_body: null }),
  ]

  function agree(span: unknown): boolean {
    const fast = fastSpan(span)
    const zod = parseSpan(span)
    // The fast path may pass a span to zod, never accept one zod refuses or normalise it differently.
    if (fast !== null) {
      expect(zod, JSON.stringify(span)?.slice(0, 300)).toEqual({ ok: true, span: fast })
    }
    return fast !== null
  }

  it('takes the canonical shapes itself, with the output zod gives', () => {
    for (const base of bases) expect(agree(base)).toBe(true)
    const minimal = proxySpan()
    for (const key of ['request_model', 'response_model', 'ttft_ms', 'input_tokens', 'finish_reason', 'user', 'properties', 'client_addr']) delete minimal[key]
    expect(agree(minimal)).toBe(true)
  })

  it('on every field set to every probe value, and on odd properties', () => {
    let fastTaken = 0
    let cases = 0
    for (const base of bases) {
      for (const key of [...Object.keys(base), 'request_hash', 'prefix_hash', 'prefix_bytes', 'request_body', 'response_body', 'unknown_field']) {
        for (const value of probes) {
          const span = { ...base, [key]: value }
          if (value === undefined) delete span[key]
          cases++
          if (agree(span)) fastTaken++
        }
      }
      for (const properties of propertyProbes) {
        cases++
        if (agree({ ...base, properties })) fastTaken++
      }
    }
    // Both paths were exercised: some mutations stay on the fast path, most go to zod.
    expect(fastTaken).toBeGreaterThan(50)
    expect(fastTaken).toBeLessThan(cases)
  })
})

/** The URL hash keeps the view state: view, range, filters, selections. */
import { describe, expect, it } from 'vitest'
import { DEFAULT_STATE, formatUrlState, parseUrlState, stateFromSpansQuery, type UrlState } from '../../dashboard/src/lib/url-state.ts'

const NOW = Date.UTC(2025, 5, 11, 12, 0, 0)

describe('parseUrlState', () => {
  it('opens the 24-hour overview for an empty hash', () => {
    expect(parseUrlState('', NOW)).toEqual(DEFAULT_STATE)
    expect(parseUrlState('#/', NOW)).toEqual(DEFAULT_STATE)
  })
  it('reads view, range, refresh, filters and selections', () => {
    const state = parseUrlState('#/requests?range=1h&refresh=30&model=gpt-4o&status=error&property=feature%3Asearch&span=abc', NOW)
    expect(state).toEqual({
      ...DEFAULT_STATE,
      view: 'requests',
      range: { preset: '1h' },
      refresh: 30,
      filters: { model: 'gpt-4o', status: 'error', property: 'feature:search' },
      span: 'abc',
    })
  })
  it('falls back to defaults for unknown values', () => {
    const state = parseUrlState('#/nowhere?range=2y&refresh=7&by=planet', NOW)
    expect(state.view).toBe('overview')
    expect(state.range).toEqual({ preset: '24h' })
    expect(state.refresh).toBe(0)
    expect(state.spendBy).toBe('model')
  })
  it('reads custom ranges in epoch ms, ISO or relative form', () => {
    expect(parseUrlState('#/overview?range=custom&from=1749600000000&to=1749603600000', NOW).range).toEqual({ preset: 'custom', from: 1749600000000, to: 1749603600000 })
    expect(parseUrlState('#/overview?from=2025-06-11T10:00:00Z&to=2025-06-11T11:00:00Z', NOW).range).toEqual({
      preset: 'custom',
      from: Date.UTC(2025, 5, 11, 10),
      to: Date.UTC(2025, 5, 11, 11),
    })
    expect(parseUrlState('#/overview?range=custom&from=now-2h', NOW).range).toEqual({ preset: 'custom', from: NOW - 7_200_000, to: NOW })
  })
  it('rejects a custom range that ends before it starts', () => {
    expect(parseUrlState('#/overview?range=custom&from=1749603600000&to=1749600000000', NOW).range).toEqual({ preset: '24h' })
  })
  it('ignores blank filters', () => {
    expect(parseUrlState('#/requests?model=&user=%20', NOW).filters).toEqual({})
  })
})

describe('formatUrlState', () => {
  it('leaves defaults out', () => {
    expect(formatUrlState(DEFAULT_STATE)).toBe('#/overview')
    expect(formatUrlState({ ...DEFAULT_STATE, view: 'models' })).toBe('#/models')
  })
  it('round-trips every field', () => {
    const states: UrlState[] = [
      {
        view: 'models',
        range: { preset: '7d' },
        refresh: 10,
        filters: {},
        detail: { provider: 'openrouter', model: 'anthropic/claude-3.5-sonnet' },
        span: null,
        spendBy: 'model',
        propertyKey: '',
      },
      {
        view: 'requests',
        range: { preset: 'custom', from: 1749600000000, to: 1749603600000 },
        refresh: 0,
        filters: { q: 'gpt', provider: 'openai', status: 'rate_limited', user: 'a&b=c', session: 's 1', app: 'web', endpoint: 'chat', property: 'k:v:w', model: 'gpt-4o' },
        detail: null,
        span: '0b7e0d52-1111-4c1e-9d9b-000000000001',
        spendBy: 'model',
        propertyKey: '',
      },
      { ...DEFAULT_STATE, view: 'spend', spendBy: 'property', propertyKey: 'feature' },
    ]
    for (const state of states) expect(parseUrlState(formatUrlState(state), NOW)).toEqual(state)
  })
})

describe('stateFromSpansQuery', () => {
  it('opens the Requests view with the recommendation’s filters and window', () => {
    const base: UrlState = { ...DEFAULT_STATE, view: 'recommendations', filters: { user: 'old' }, span: 'x' }
    const state = stateFromSpansQuery('model=gpt-4o&status=error&from=1749600000000&to=2025-06-11T01:00:00Z', base, NOW)
    expect(state).toEqual({
      ...base,
      view: 'requests',
      range: { preset: 'custom', from: 1749600000000, to: Date.UTC(2025, 5, 11, 1) },
      filters: { model: 'gpt-4o', status: 'error' },
      span: null,
    })
  })
  it('keeps the current range when the query has no from', () => {
    const state = stateFromSpansQuery('?provider=anthropic', { ...DEFAULT_STATE, range: { preset: '7d' } }, NOW)
    expect(state.range).toEqual({ preset: '7d' })
    expect(state.filters).toEqual({ provider: 'anthropic' })
  })
})

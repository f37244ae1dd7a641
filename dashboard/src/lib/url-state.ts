/**
 * The dashboard's state as a URL hash, so every view can be bookmarked and
 * shared: `#/<view>?range=1h&model=gpt-4o&span=…`. Defaults are left out, so
 * the plain collector URL opens the 24-hour overview.
 */
import { isPreset, parseTime, type RangeSpec } from './range.ts'
import { FILTER_KEYS, type SpanFilters } from './types.ts'

export const VIEWS = ['overview', 'models', 'spend', 'requests', 'recommendations'] as const
export type View = (typeof VIEWS)[number]

export const REFRESH_INTERVALS = [0, 10, 30, 60] as const
/** Auto-refresh period in seconds; 0 is off. */
export type RefreshInterval = (typeof REFRESH_INTERVALS)[number]

export const SPEND_GROUPS = ['model', 'provider', 'user', 'app', 'property'] as const
/** What the Spend view splits by; `property` needs a property key. */
export type SpendGroup = (typeof SPEND_GROUPS)[number]

/** A model as the summary groups it: provider × model. */
export interface ModelKey {
  provider: string
  model: string
}

export interface UrlState {
  view: View
  range: RangeSpec
  refresh: RefreshInterval
  /** The Requests view's filters. */
  filters: SpanFilters
  /** Models view: the model whose detail is open. */
  detail: ModelKey | null
  /** Requests view: the span whose detail panel is open. */
  span: string | null
  spendBy: SpendGroup
  /** Spend view with spendBy=property: the property key. */
  propertyKey: string
}

export const DEFAULT_STATE: UrlState = {
  view: 'overview',
  range: { preset: '24h' },
  refresh: 0,
  filters: {},
  detail: null,
  span: null,
  spendBy: 'model',
  propertyKey: '',
}

function oneOf<T extends string | number>(values: readonly T[], raw: string | null, fallback: T): T {
  return values.find((v) => String(v) === raw) ?? fallback
}

/** Filters from query parameters; blank values are no filter. */
export function filtersFrom(params: URLSearchParams): SpanFilters {
  const filters: SpanFilters = {}
  for (const key of FILTER_KEYS) {
    const value = params.get(key)?.trim()
    if (value) filters[key] = value
  }
  return filters
}

function rangeFrom(params: URLSearchParams, now: number): RangeSpec {
  const preset = params.get('range')
  if (preset !== null && isPreset(preset)) return { preset }
  // `from`/`to` alone (a hand-written or recommendation link) mean a custom range too.
  if (preset === 'custom' || params.has('from')) {
    const from = parseTime(params.get('from') ?? '', now)
    const to = parseTime(params.get('to') ?? 'now', now)
    if (from !== null && to !== null && to > from) return { preset: 'custom', from, to }
  }
  return DEFAULT_STATE.range
}

/**
 * Reads a location hash (`#/models?range=1h`); anything unknown falls back
 * to its default, so a hand-edited or stale link still opens.
 * @param now resolves relative custom times such as `from=now-2h`.
 */
export function parseUrlState(hash: string, now: number = Date.now()): UrlState {
  const text = hash.replace(/^#/, '')
  const q = text.indexOf('?')
  const path = (q < 0 ? text : text.slice(0, q)).replace(/^\/+|\/+$/g, '')
  const params = new URLSearchParams(q < 0 ? '' : text.slice(q + 1))
  const view = oneOf(VIEWS, path || null, DEFAULT_STATE.view)
  const detailModel = params.get('detail_model')
  return {
    view,
    range: rangeFrom(params, now),
    refresh: oneOf(REFRESH_INTERVALS, params.get('refresh'), DEFAULT_STATE.refresh),
    filters: filtersFrom(params),
    detail: detailModel ? { provider: params.get('detail_provider') ?? '', model: detailModel } : null,
    span: params.get('span') || null,
    spendBy: oneOf(SPEND_GROUPS, params.get('by'), DEFAULT_STATE.spendBy),
    propertyKey: params.get('key') ?? '',
  }
}

/**
 * The hash for a state, defaults left out.
 * @example formatUrlState({ ...DEFAULT_STATE, view: 'models' }) // '#/models'
 */
export function formatUrlState(state: UrlState): string {
  const params = new URLSearchParams()
  if (state.range.preset === 'custom') {
    params.set('range', 'custom')
    params.set('from', String(state.range.from))
    params.set('to', String(state.range.to))
  } else if (state.range.preset !== DEFAULT_STATE.range.preset) {
    params.set('range', state.range.preset)
  }
  if (state.refresh !== DEFAULT_STATE.refresh) params.set('refresh', String(state.refresh))
  for (const key of FILTER_KEYS) {
    const value = state.filters[key]
    if (value) params.set(key, value)
  }
  if (state.detail) {
    params.set('detail_provider', state.detail.provider)
    params.set('detail_model', state.detail.model)
  }
  if (state.span) params.set('span', state.span)
  if (state.spendBy !== DEFAULT_STATE.spendBy) params.set('by', state.spendBy)
  if (state.propertyKey) params.set('key', state.propertyKey)
  const query = params.toString()
  return `#/${state.view}${query ? `?${query}` : ''}`
}

/**
 * A recommendation's `spans_query` (`model=gpt-4o&status=error&from=…&to=…`)
 * as the Requests view state: its filters replace the current ones, and its
 * from/to, when given, become a custom range.
 */
export function stateFromSpansQuery(spansQuery: string, base: UrlState, now: number = Date.now()): UrlState {
  const params = new URLSearchParams(spansQuery.replace(/^\?/, ''))
  const from = params.get('from')
  const to = params.get('to')
  let range = base.range
  if (from !== null) {
    const fromMs = parseTime(from, now)
    const toMs = parseTime(to ?? 'now', now)
    if (fromMs !== null && toMs !== null && toMs > fromMs) range = { preset: 'custom', from: fromMs, to: toMs }
  }
  return { ...base, view: 'requests', range, filters: filtersFrom(params), span: null, detail: null }
}

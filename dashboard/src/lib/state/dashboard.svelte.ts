/**
 * The dashboard's shared state: view, time range, filters and selections,
 * mirrored in the URL hash (lib/url-state.ts). One instance per app, shared
 * through context; controls write it, pages read it.
 */
import { createContext } from 'svelte'
import { previousWindow, resolveWindow, type RangeSpec } from '../range.ts'
import type { SpanFilters, TimeWindow } from '../types.ts'
import { formatUrlState, type ModelKey, type RefreshInterval, type SpendGroup, type UrlState, type View } from '../url-state.ts'

export class DashboardState {
  view = $state<View>('overview')
  range = $state.raw<RangeSpec>({ preset: '24h' })
  refreshInterval = $state<RefreshInterval>(0)
  filters = $state.raw<SpanFilters>({})
  detail = $state.raw<ModelKey | null>(null)
  span = $state<string | null>(null)
  spendBy = $state<SpendGroup>('model')
  propertyKey = $state('')
  /** The instant relative ranges end at; moved forward by every refresh. */
  now = $state(Date.now())

  /** The window every query of this refresh uses, so all panels agree. */
  window: TimeWindow = $derived(resolveWindow(this.range, this.now))
  /** The equal-length period before, for "change vs previous period". */
  previous: TimeWindow = $derived(previousWindow(this.window))

  snapshot: UrlState = $derived({
    view: this.view,
    range: this.range,
    refresh: this.refreshInterval,
    filters: this.filters,
    detail: this.detail,
    span: this.span,
    spendBy: this.spendBy,
    propertyKey: this.propertyKey,
  })
  hash: string = $derived(formatUrlState(this.snapshot))

  constructor(initial: UrlState) {
    this.apply(initial)
  }

  /** Takes a whole state, as from the URL. */
  apply(state: UrlState): void {
    const rangeChanged = JSON.stringify(state.range) !== JSON.stringify(this.range)
    this.view = state.view
    this.range = state.range
    this.refreshInterval = state.refresh
    this.filters = state.filters
    this.detail = state.detail
    this.span = state.span
    this.spendBy = state.spendBy
    this.propertyKey = state.propertyKey
    if (rangeChanged) this.now = Date.now()
  }

  /** The link for this state with some fields changed, for `<a href>`. */
  href(patch: Partial<UrlState>): string {
    return formatUrlState({ ...this.snapshot, ...patch })
  }

  /** Re-resolves relative ranges to the current time; every page reloads. */
  refresh(): void {
    this.now = Date.now()
  }

  setRange(range: RangeSpec): void {
    this.range = range
    this.refresh()
  }

  setFilters(filters: SpanFilters): void {
    this.filters = filters
    this.span = null
  }
}

export const [getDashboard, setDashboard] = createContext<DashboardState>()

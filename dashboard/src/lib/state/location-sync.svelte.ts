/** Keeps the URL hash and the dashboard state in step, and runs auto-refresh. */
import { parseUrlState } from '../url-state.ts'
import type { DashboardState } from './dashboard.svelte.ts'

/**
 * State → URL on every change (a new history entry when the view or a
 * selection changes, so Back works; replaced otherwise), and URL → state on
 * Back/Forward or a pasted link. Call during component initialisation.
 */
export function useLocationSync(dash: DashboardState): void {
  $effect(() => {
    const hash = dash.hash
    if (location.hash === hash) return
    const shown = parseUrlState(location.hash)
    const navigated = shown.view !== dash.view || shown.detail?.model !== dash.detail?.model || shown.span !== dash.span
    if (navigated && location.hash !== '') history.pushState(null, '', hash)
    else history.replaceState(null, '', hash)
  })
  $effect(() => {
    const onLocation = () => {
      if (location.hash !== dash.hash) dash.apply(parseUrlState(location.hash))
    }
    addEventListener('hashchange', onLocation)
    addEventListener('popstate', onLocation)
    return () => {
      removeEventListener('hashchange', onLocation)
      removeEventListener('popstate', onLocation)
    }
  })
}

/** Refreshes every `dash.refreshInterval` seconds while it is not 0. */
export function useAutoRefresh(dash: DashboardState): void {
  $effect(() => {
    const seconds = dash.refreshInterval
    if (seconds === 0) return
    const timer = setInterval(() => dash.refresh(), seconds * 1000)
    return () => clearInterval(timer)
  })
}

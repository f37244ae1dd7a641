/** The collector's health report, reloaded with every refresh and shared through context. */
import { createContext } from 'svelte'
import { fetchHealth } from '../api.ts'
import type { Health } from '../types.ts'
import type { DashboardState } from './dashboard.svelte.ts'
import { Resource } from './resource.svelte.ts'

export const [getHealth, setHealth] = createContext<Resource<Health>>()

/** Creates the shared health resource and reloads it on each refresh. Call during component initialisation. */
export function useHealth(dash: DashboardState): Resource<Health> {
  const health = new Resource<Health>()
  setHealth(health)
  $effect(() => {
    void dash.now
    return health.load((signal) => fetchHealth(signal))
  })
  return health
}

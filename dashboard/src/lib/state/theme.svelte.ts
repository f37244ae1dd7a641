/**
 * Light or dark: the system's preference until the user picks one with the
 * toggle; the pick is kept in localStorage (index.html applies it before the
 * first paint).
 */
import { createContext } from 'svelte'
import type { ThemeName } from '../palette.ts'

export const THEME_STORAGE_KEY = 'tollgate-theme'

function savedChoice(): ThemeName | null {
  try {
    const value = localStorage.getItem(THEME_STORAGE_KEY)
    return value === 'light' || value === 'dark' ? value : null
  } catch {
    // Storage can be blocked (privacy settings); the system preference still works.
    return null
  }
}

export class ThemeState {
  /** The user's pick; null follows the system. */
  choice = $state<ThemeName | null>(savedChoice())
  systemDark = $state(typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches)
  current: ThemeName = $derived(this.choice ?? (this.systemDark ? 'dark' : 'light'))

  toggle(): void {
    this.choice = this.current === 'dark' ? 'light' : 'dark'
    try {
      localStorage.setItem(THEME_STORAGE_KEY, this.choice)
    } catch {
      // Not persisted; the toggle still applies to this page.
    }
  }
}

export const [getTheme, setTheme] = createContext<ThemeState>()

/**
 * Follows the system preference and writes the theme to `<html data-theme>`.
 * Call during component initialisation.
 */
export function useTheme(theme: ThemeState): void {
  $effect(() => {
    const query = matchMedia('(prefers-color-scheme: dark)')
    const onChange = () => (theme.systemDark = query.matches)
    query.addEventListener('change', onChange)
    return () => query.removeEventListener('change', onChange)
  })
  $effect(() => {
    document.documentElement.dataset.theme = theme.current
  })
}

/** Chart colours per theme; CSS variables hold the rest of the theme. */

export type ThemeName = 'light' | 'dark'

export interface ChartPalette {
  axis: string
  grid: string
  /** Series colours in order; picked to stay apart in both themes and for common colour blindness. */
  series: readonly string[]
  success: string
  error: string
}

const SERIES = ['#4f6bed', '#e8833a', '#2aa876', '#c94f9b', '#8e5bd6', '#1fa6c9', '#c9a227', '#7a8699', '#d9534f', '#5c9e3f', '#b5651d', '#3b8ea5']

export const PALETTES: Record<ThemeName, ChartPalette> = {
  light: { axis: '#4b5563', grid: 'rgba(17, 24, 39, 0.08)', series: SERIES, success: '#2aa876', error: '#d9534f' },
  dark: { axis: '#a3acb9', grid: 'rgba(255, 255, 255, 0.08)', series: SERIES.map((c) => (c === '#4f6bed' ? '#7b93ff' : c)), success: '#34c08a', error: '#f0706b' },
}

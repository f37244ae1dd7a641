/** Table columns and sorting, shared by every table component. */

export interface Column<T> {
  key: string
  label: string
  /** Longer header text for the tooltip and screen readers. */
  title?: string
  /** The sort value; null sorts last either way. */
  value: (row: T) => number | string | null
  /** The cell text; String(value) by default. */
  format?: (row: T) => string
  /** A second, muted line under the cell text. */
  sub?: (row: T) => string
  /** Makes the cell a link (the row's detail). */
  href?: (row: T) => string
  /** Numbers align right. @default 'start' */
  align?: 'start' | 'end'
}

export type SortDirection = 'asc' | 'desc'

export interface SortState {
  key: string
  direction: SortDirection
}

/**
 * Rows ordered by one column; nulls last in both directions, ties keep their order.
 * @example sortRows(rows, columns, { key: 'cost', direction: 'desc' })
 */
export function sortRows<T>(rows: readonly T[], columns: readonly Column<T>[], sort: SortState | null): T[] {
  const column = sort && columns.find((c) => c.key === sort.key)
  if (!sort || !column) return [...rows]
  const sign = sort.direction === 'asc' ? 1 : -1
  return rows
    .map((row, index) => ({ row, index, value: column.value(row) }))
    .sort((a, b) => {
      if (a.value === null || b.value === null) return a.value === b.value ? a.index - b.index : a.value === null ? 1 : -1
      const order = typeof a.value === 'number' && typeof b.value === 'number' ? a.value - b.value : String(a.value).localeCompare(String(b.value))
      return order === 0 ? a.index - b.index : sign * order
    })
    .map((x) => x.row)
}

/** Clicking the sorted column flips it; another column starts descending for numbers (largest first), ascending for text. */
export function nextSort(current: SortState | null, key: string, numeric: boolean): SortState {
  if (current?.key === key) return { key, direction: current.direction === 'asc' ? 'desc' : 'asc' }
  return { key, direction: numeric ? 'desc' : 'asc' }
}

/**
 * The Requests view's list: the first page reloads when the window or the
 * filters change; "Load more" appends the next page by cursor. Keyset paging
 * stays exact while new spans arrive.
 */
import { fetchSpans, type SpansQuery } from '../api.ts'
import type { Span } from '../types.ts'

/** Spans per page. */
export const PAGE_SIZE = 50

export class SpanPager {
  spans = $state.raw<Span[]>([])
  nextCursor = $state<string | null>(null)
  loading = $state(false)
  error = $state<string | null>(null)
  /** True once the first page has answered (until then the list shows "loading", not "empty"). */
  loaded = $state(false)
  #query: SpansQuery | null = null
  #generation = 0

  /** Loads the first page for `query`; returns the abort function for `$effect` cleanup. */
  reset(query: SpansQuery): () => void {
    this.#query = query
    return this.#fetch(undefined, false)
  }

  /** Appends the next page. */
  more(): void {
    if (this.nextCursor && !this.loading) this.#fetch(this.nextCursor, true)
  }

  #fetch(cursor: string | undefined, append: boolean): () => void {
    const query = this.#query
    if (!query) return () => {}
    const generation = ++this.#generation
    const controller = new AbortController()
    this.loading = true
    fetchSpans({ ...query, limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) }, controller.signal).then(
      (page) => {
        if (generation !== this.#generation) return
        this.spans = append ? [...this.spans, ...page.spans] : page.spans
        this.nextCursor = page.next_cursor
        this.error = null
        this.loading = false
        this.loaded = true
      },
      (err: unknown) => {
        if (generation !== this.#generation || controller.signal.aborted) return
        this.error = err instanceof Error ? err.message : String(err)
        this.loading = false
      },
    )
    return () => controller.abort()
  }
}

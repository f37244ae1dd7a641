/**
 * One async value a page shows. `load` keeps the previous data on screen
 * while the next request runs (no layout jump on refresh), drops answers
 * that arrive after a newer request started, and aborts on cleanup.
 */
export class Resource<T> {
  /** The last successful answer; kept while a refresh runs. */
  data = $state.raw<T | undefined>(undefined)
  /** The last failure's message, cleared by the next success. */
  error = $state<string | null>(null)
  loading = $state(false)
  #generation = 0

  /**
   * Starts `fetcher`; returns the abort function, to be returned from the
   * `$effect` that calls it so a changed input cancels the stale request.
   * @example $effect(() => summary.load((signal) => fetchSummary({ ...dash.window }, signal)))
   */
  load(fetcher: (signal: AbortSignal) => Promise<T>): () => void {
    const generation = ++this.#generation
    const controller = new AbortController()
    this.loading = true
    fetcher(controller.signal).then(
      (value) => {
        if (generation !== this.#generation) return
        this.data = value
        this.error = null
        this.loading = false
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

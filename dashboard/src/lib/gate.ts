/**
 * At most `slots` API calls in flight; the rest wait here, first come first
 * served. The embedded store (chDB) runs one query at a time, so a burst of
 * calls would only wait inside the collector — where a call the page has
 * since abandoned (a range switched mid-load) still runs its query. Waiting
 * here instead, an aborted call is dropped before it is sent. The collector
 * says how many queries it runs at once (`x-tollgate-query-slots` on every
 * API answer), and the gate widens or narrows to that.
 */
export interface Gate {
  /** Runs `task` once a slot is free; rejects with the signal's reason if aborted while waiting. */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>
  /** Sets how many tasks may run at once (at least 1); waiting tasks start if slots opened. */
  setSlots(slots: number): void
  /** Tasks running now, and waiting. */
  readonly running: number
  readonly waiting: number
}

interface Waiter {
  start: () => void
  signal: AbortSignal | undefined
  onAbort: () => void
}

export function createGate(initialSlots = 1): Gate {
  let slots = Math.max(1, Math.floor(initialSlots))
  let running = 0
  const queue: Waiter[] = []

  const next = (): void => {
    while (running < slots && queue.length > 0) {
      const waiter = queue.shift() as Waiter
      waiter.signal?.removeEventListener('abort', waiter.onAbort)
      waiter.start()
    }
  }

  return {
    run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      if (signal?.aborted) return Promise.reject(signal.reason)
      return new Promise<T>((resolve, reject) => {
        const start = (): void => {
          running++
          task()
            .then(resolve, reject)
            .finally(() => {
              running--
              next()
            })
        }
        if (running < slots) return start()
        const waiter: Waiter = {
          start,
          signal,
          onAbort: () => {
            const i = queue.indexOf(waiter)
            if (i >= 0) queue.splice(i, 1)
            reject(signal?.reason)
          },
        }
        signal?.addEventListener('abort', waiter.onAbort, { once: true })
        queue.push(waiter)
      })
    },
    setSlots(n: number): void {
      if (!Number.isFinite(n)) return
      slots = Math.max(1, Math.floor(n))
      next()
    },
    get running() {
      return running
    },
    get waiting() {
      return queue.length
    },
  }
}

/**
 * Memoises a one-argument function in a Map that is emptied when it reaches
 * `max` entries. For per-request lookups over a few hot keys (routes, upstream
 * bases): no recency bookkeeping on every hit, as an LRU would do, and a
 * scan of invented keys cannot grow it past `max`.
 */
export function memoizeBounded<K, V>(max: number, compute: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>()
  return (key) => {
    const hit = cache.get(key)
    // An undefined result is recomputed each time: harmless, and one lookup per hit.
    if (hit !== undefined) return hit
    const value = compute(key)
    if (cache.size >= max) cache.clear()
    cache.set(key, value)
    return value
  }
}

import { describe, expect, it } from 'vitest'
import { memoizeBounded } from '../../lib/memo.ts'

describe('memoizeBounded', () => {
  it('computes each key once while it is kept, null results included', () => {
    const calls: string[] = []
    const f = memoizeBounded(10, (k: string) => (calls.push(k), k === 'none' ? null : k.toUpperCase()))
    expect([f('a'), f('a'), f('none'), f('none'), f('b')]).toEqual(['A', 'A', null, null, 'B'])
    expect(calls).toEqual(['a', 'none', 'b'])
  })

  it('never holds more than max keys: a scan of new keys empties it and starts over', () => {
    let computed = 0
    const f = memoizeBounded(3, (k: number) => (computed++, k * 2))
    for (let i = 0; i < 100; i++) expect(f(i)).toBe(i * 2)
    expect(computed).toBe(100)
    // 99 was kept after the last emptying; 0 was not.
    f(99)
    expect(computed).toBe(100)
    f(0)
    expect(computed).toBe(101)
  })
})

import { describe, expect, it } from 'vitest'
import { SerializedSpanQueue } from '../../proxy/span-queue.ts'

const span = (i: number, text = 'x') => JSON.stringify({ i, text })

describe('SerializedSpanQueue', () => {
  it('hands spans back oldest first as JSON arrays of at most the count asked', () => {
    const q = new SerializedSpanQueue(16)
    for (let i = 0; i < 5; i++) q.push(span(i))
    expect(q.length).toBe(5)
    expect(JSON.parse(q.take(2).toString())).toEqual([{ i: 0, text: 'x' }, { i: 1, text: 'x' }])
    expect(q.length).toBe(3)
    expect(JSON.parse(q.take(10).toString()).map((s: { i: number }) => s.i)).toEqual([2, 3, 4])
    expect(q.length).toBe(0)
    expect(q.take(1).toString()).toBe('[]')
  })

  it('keeps multi-byte text intact across compaction and growth', () => {
    const q = new SerializedSpanQueue(32)
    const texts = ['héllo', '日本語のテキスト', '🙂 emoji', 'a'.repeat(500), 'ü'.repeat(100)]
    const out: string[] = []
    for (let round = 0; round < 20; round++) {
      for (const [i, t] of texts.entries()) q.push(span(round * 10 + i, t))
      // Take fewer than were pushed, so later pushes must move the rest to the front or grow.
      for (const s of JSON.parse(q.take(3).toString()) as { text: string }[]) out.push(s.text)
    }
    for (const s of JSON.parse(q.take(1000).toString()) as { text: string }[]) out.push(s.text)
    expect(out).toEqual(Array.from({ length: 20 }, () => texts).flat())
  })

  it('clear() empties it', () => {
    const q = new SerializedSpanQueue()
    q.push(span(1))
    q.clear()
    expect(q.length).toBe(0)
    q.push(span(2))
    expect(JSON.parse(q.take(5).toString())).toEqual([{ i: 2, text: 'x' }])
  })
})

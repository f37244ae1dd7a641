import { describe, expect, it } from 'vitest'
import { createGate } from '../../dashboard/src/lib/gate.ts'

/** A task that runs until `finish` is called, recording when it started. */
function deferredTask(log: string[], name: string) {
  let finish!: (v: string) => void
  let fail!: (e: Error) => void
  const done = new Promise<string>((resolve, reject) => {
    finish = resolve
    fail = reject
  })
  return {
    task: () => {
      log.push(`start ${name}`)
      return done
    },
    finish: () => finish(name),
    fail: (e: Error) => fail(e),
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0))

describe('createGate', () => {
  it('runs one task at a time by default, in the order they came', async () => {
    const log: string[] = []
    const gate = createGate()
    const [a, b, c] = ['a', 'b', 'c'].map((n) => deferredTask(log, n))
    const results = [gate.run(a!.task), gate.run(b!.task), gate.run(c!.task)]
    await tick()
    expect(log).toEqual(['start a'])
    expect([gate.running, gate.waiting]).toEqual([1, 2])
    a!.finish()
    await tick()
    expect(log).toEqual(['start a', 'start b'])
    b!.finish()
    await tick()
    c!.finish()
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c'])
    expect([gate.running, gate.waiting]).toEqual([0, 0])
  })

  it('a failed task frees its slot and rejects only its own caller', async () => {
    const log: string[] = []
    const gate = createGate(1)
    const a = deferredTask(log, 'a')
    const b = deferredTask(log, 'b')
    const ra = gate.run(a.task)
    const rb = gate.run(b.task)
    a.fail(new Error('boom'))
    await expect(ra).rejects.toThrow('boom')
    await tick()
    expect(log).toEqual(['start a', 'start b'])
    b.finish()
    await expect(rb).resolves.toBe('b')
  })

  it('an aborted waiting task is never started and rejects with the abort reason', async () => {
    const log: string[] = []
    const gate = createGate(1)
    const a = deferredTask(log, 'a')
    const b = deferredTask(log, 'b')
    const c = deferredTask(log, 'c')
    const controller = new AbortController()
    const ra = gate.run(a.task)
    const rb = gate.run(b.task, controller.signal)
    const rc = gate.run(c.task)
    controller.abort(new Error('range changed'))
    await expect(rb).rejects.toThrow('range changed')
    expect(gate.waiting).toBe(1)
    a.finish()
    await tick()
    c.finish()
    expect(await Promise.all([ra, rc])).toEqual(['a', 'c'])
    expect(log).toEqual(['start a', 'start c'])
  })

  it('an already aborted signal rejects at once', async () => {
    const gate = createGate(1)
    const controller = new AbortController()
    controller.abort(new Error('gone'))
    let ran = false
    await expect(
      gate.run(async () => {
        ran = true
      }, controller.signal),
    ).rejects.toThrow('gone')
    expect(ran).toBe(false)
  })

  it('more slots start waiting tasks at once; fewer never stop running ones', async () => {
    const log: string[] = []
    const gate = createGate(1)
    const tasks = ['a', 'b', 'c', 'd'].map((n) => deferredTask(log, n))
    const results = tasks.map((t) => gate.run(t.task))
    await tick()
    expect(log).toEqual(['start a'])
    gate.setSlots(3)
    expect(log).toEqual(['start a', 'start b', 'start c'])
    gate.setSlots(0) // clamped to 1; a, b and c keep running
    expect(gate.running).toBe(3)
    tasks[0]!.finish()
    tasks[1]!.finish()
    await tick()
    expect(log).toEqual(['start a', 'start b', 'start c'])
    tasks[2]!.finish()
    await tick()
    expect(log).toEqual(['start a', 'start b', 'start c', 'start d'])
    tasks[3]!.finish()
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c', 'd'])
  })
})

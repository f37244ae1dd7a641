/**
 * A standalone collector is background work beside the proxy it serves: its
 * batch inserts (chDB's threads) burn a core for a few hundred milliseconds
 * each second, and on a small shared machine that core is taken from the
 * proxy's request path. Raising the nice value of every thread of the process
 * lets the scheduler give the proxy the CPU first, and the collector the rest.
 *
 * Linux sets nice per thread: a thread inherits its creator's value, so the
 * main thread is lowered first and threads that already exist (chDB's pools,
 * V8's, libuv's) are swept from /proc/self/task, again now and then for
 * threads a not-yet-lowered thread started. Elsewhere only the calling thread
 * is lowered. A value is only ever raised (a lower priority), never undone.
 */
import { readdirSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import type { Logger } from './log.ts'

/** How often threads created since the last sweep are lowered too. */
const SWEEP_MS = 5000

export interface LoweredPriority {
  /** Lowers threads started since the last sweep. */
  sweep(): void
  stop(): void
}

const UNCHANGED: LoweredPriority = { sweep() {}, stop() {} }

/**
 * Raises this process's threads to nice `nice` (0–19); 0 leaves them alone.
 * @example const lowered = lowerProcessPriority(10, log) // … lowered.stop() on shutdown
 */
export function lowerProcessPriority(nice: number, log: Logger): LoweredPriority {
  if (nice <= 0) return UNCHANGED
  // Thread 0 is the calling thread. A thread already at `nice` or lower in priority is left as it is.
  const lowerThread = (tid: number): void => {
    if (getPriority(tid) < nice) setPriority(tid, nice)
  }
  try {
    lowerThread(0)
  } catch (err) {
    log.warn({ err, nice }, "could not lower the collector's CPU priority")
    return UNCHANGED
  }
  const sweep = (): void => {
    let tids: string[]
    try {
      tids = readdirSync('/proc/self/task')
    } catch {
      return // not Linux: the main thread alone was lowered
    }
    for (const tid of tids) {
      try {
        lowerThread(Number(tid))
      } catch {
        // the thread ended between the listing and the call
      }
    }
  }
  sweep()
  const timer = setInterval(sweep, SWEEP_MS).unref()
  return { sweep, stop: () => clearInterval(timer) }
}

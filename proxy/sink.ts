/**
 * Hands finished spans to the collector. A request never awaits it: `add` is
 * synchronous and never throws; what cannot be kept is counted, never silent.
 */
import type { Span } from '../collector/schema.ts'

export interface SpanSink {
  /** Takes a span; returns at once. */
  add(span: Span): void
  /** Resolves once every span added so far has been handed on. */
  flush(): Promise<void>
  close(): Promise<void>
}

export interface SpanDropCounter {
  spansDropped(reason: string, count: number): void
}

/**
 * All-in-one mode: the collector lives in this process; `accept` is its
 * synchronous intake (a bounded queue of its own).
 */
export function createInProcessSink(accept: (span: Span) => void, drops: SpanDropCounter): SpanSink {
  return {
    add(span) {
      try {
        accept(span)
      } catch {
        drops.spansDropped('collector_rejected', 1)
      }
    },
    async flush() {},
    async close() {},
  }
}

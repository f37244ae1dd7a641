/**
 * Recent spans kept in memory, newest first. The all-in-one collector serves
 * /api/spans from it until ClickHouse storage is wired in; bounded so a busy
 * proxy cannot grow it without limit.
 */
import type { Span } from './schema.ts'

export interface SpanFilter {
  from?: number | undefined
  to?: number | undefined
  model?: string | undefined
  provider?: string | undefined
  /** An error_type, or `error` for any failure, or `ok`. */
  status?: string | undefined
  user?: string | undefined
  limit: number
  /** Opaque cursor from a previous page. */
  cursor?: string | undefined
}

export interface SpanPage {
  spans: Span[]
  next_cursor: string | null
}

export interface MemoryStore {
  add(span: Span): void
  query(filter: SpanFilter): SpanPage
  readonly size: number
}

export function createMemoryStore(capacity = 10_000): MemoryStore {
  const ring: Span[] = []
  let seq = 0 // sequence number of the newest span
  let head = 0
  return {
    add(span) {
      if (ring.length < capacity) ring.push(span)
      else ring[head] = span
      head = (head + 1) % capacity
      seq++
    },
    query(filter) {
      const spans: Span[] = []
      // Cursor = sequence number of the last span returned; pages go older.
      const startSeq = filter.cursor ? Number.parseInt(filter.cursor, 10) - 1 : seq
      const oldestSeq = seq - ring.length + 1
      let s = Math.min(startSeq, seq)
      for (; s >= oldestSeq && spans.length < filter.limit; s--) {
        const span = ring[(s - 1) % capacity]
        if (span && matches(span, filter)) spans.push(span)
      }
      const more = s >= oldestSeq
      return { spans, next_cursor: more && spans.length === filter.limit ? String(s + 1) : null }
    },
    get size() {
      return ring.length
    },
  }
}

function matches(span: Span, f: SpanFilter): boolean {
  const at = Date.parse(span.started_at)
  if (f.from !== undefined && at < f.from) return false
  if (f.to !== undefined && at >= f.to) return false
  if (f.model && span.request_model !== f.model && span.response_model !== f.model) return false
  if (f.provider && span.provider !== f.provider) return false
  if (f.user && span.user !== f.user) return false
  if (f.status === 'error' && span.error_type === 'none') return false
  if (f.status === 'ok' && span.error_type !== 'none') return false
  if (f.status && f.status !== 'error' && f.status !== 'ok' && span.error_type !== f.status) return false
  return true
}

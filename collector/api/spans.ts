/** GET /api/spans: newest first, filtered, cursor-paged. */
import { z } from 'zod'
import type { SpanFilter } from '../memory-store.ts'

const timeParam = z
  .string()
  .transform((s, ctx) => {
    const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s)
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected epoch ms or an ISO-8601 time' })
      return z.NEVER
    }
    return ms
  })
  .optional()

export const spanQuerySchema = z.object({
  from: timeParam,
  to: timeParam,
  model: z.string().max(200).optional(),
  provider: z.string().max(64).optional(),
  status: z.string().max(32).optional(),
  user: z.string().max(256).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().regex(/^\d+$/, 'expected a cursor from next_cursor').optional(),
})

/** Parses the query string; the error message names the bad parameter. */
export function parseSpanQuery(params: URLSearchParams): { ok: true; filter: SpanFilter } | { ok: false; message: string } {
  const parsed = spanQuerySchema.safeParse(Object.fromEntries(params))
  if (!parsed.success) {
    return { ok: false, message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') }
  }
  return { ok: true, filter: parsed.data }
}

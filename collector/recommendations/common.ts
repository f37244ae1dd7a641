/**
 * Helpers every rule uses: stable ids, confidence from sample size, the
 * 30-day scaling, /api/spans query strings, rounding and the final order.
 */
import { createHash } from 'node:crypto'
import type { Confidence, Facts, ModelFacts, Recommendation, RecommendationKind, RecommendationThresholds, Severity } from './types.ts'

/** One day in ms. */
export const DAY_MS = 86_400_000
/** Monthly figures are the window's scaled to this many days. */
export const MONTH_DAYS = 30

/**
 * A stable id: the first 16 hex of sha256 over kind, variant (a rule's
 * sub-case, e.g. caching's `exact` / `prefix`) and the subject's fields.
 */
export function recommendationId(kind: RecommendationKind, variant: string, subject: Recommendation['subject']): string {
  const parts = [kind, variant, subject.provider ?? '', subject.model ?? '', subject.app ?? '', subject.user ?? '']
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16)
}

/** low below `confidence.medium` spans, high from `confidence.high`, medium between. */
export function confidenceFor(sampleSize: number, t: RecommendationThresholds): Confidence {
  if (sampleSize >= t.confidence.high) return 'high'
  if (sampleSize >= t.confidence.medium) return 'medium'
  return 'low'
}

/** Factor from the window's figures to 30 days. */
export function monthlyFactor(facts: Pick<Facts, 'from' | 'to'>): number {
  return (MONTH_DAYS * DAY_MS) / Math.max(1, facts.to - facts.from)
}

/** `n` rounded to `digits` decimals. */
export function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** Evidence rounding: USD to a millionth, shares to 1e-4, ms to 0.1 — enough to compare, short to read. */
export const usd = (n: number): number => round(n, 6)
/** @see usd */
export const share = (n: number): number => round(n, 4)
/** @see usd */
export const ms = (n: number): number => round(n, 1)

/** `$1,234.56`, or more digits for sub-cent sums. */
export function formatUsd(n: number): string {
  const abs = Math.abs(n)
  const digits = abs >= 1 || abs === 0 ? 2 : abs >= 0.01 ? 4 : 6
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`
}

/** `0.123` → `12.3%`. */
export const formatPct = (rate: number): string => `${round(rate * 100, 1)}%`

/** `1 call`, `3 calls`. */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/** A /api/spans query string; the key order is fixed so the string is stable. */
export function spansQuery(q: { provider?: string; model?: string; app?: string; user?: string; status?: string; from: number; to: number }): string {
  const p = new URLSearchParams()
  if (q.provider !== undefined) p.set('provider', q.provider)
  if (q.model !== undefined) p.set('model', q.model)
  if (q.app !== undefined) p.set('app', q.app)
  if (q.user !== undefined) p.set('user', q.user)
  if (q.status !== undefined) p.set('status', q.status)
  p.set('from', String(q.from))
  p.set('to', String(q.to))
  return p.toString()
}

/** Calls with token usage among the successful ones. */
export function usageCalls(m: ModelFacts): number {
  return m.ok_requests - m.ok_no_usage_requests
}

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 }

/** The USD a recommendation is ranked by: saving plus risk. */
export function rankUsd(r: Recommendation): number {
  return (r.estimated_monthly_saving_usd ?? 0) + (r.estimated_monthly_risk_usd ?? 0)
}

/** Severity (critical first), then estimated USD (largest first), then id. */
export function compareRecommendations(a: Recommendation, b: Recommendation): number {
  return SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || rankUsd(b) - rankUsd(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

/** `a` before `b` by provider then model: the order rules walk facts in. */
export function byProviderModel<T extends { provider: string; model: string }>(a: T, b: T): number {
  return a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0
}

/**
 * The one place secrets are removed. Nothing that reaches a span, a log line
 * or an error message may carry credentials: auth headers, API keys, cookies,
 * or Gemini's `?key=` query parameter.
 */

/** Header names (lower-case) whose values are credentials. */
export const SECRET_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'cookie',
  'set-cookie',
])

/** Query parameters that carry credentials. */
const SECRET_QUERY_PARAMS = new Set(['key', 'api_key', 'api-key', 'apikey', 'access_token', 'token'])

const REDACTED = '[redacted]'

/** A copy of `headers` with every credential replaced by `[redacted]`. */
export function redactHeaders<T extends Record<string, unknown>>(headers: T): T {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(headers)) {
    out[name] = SECRET_HEADERS.has(name.toLowerCase()) ? REDACTED : value
  }
  return out as T
}

/** A path or URL with credential query parameters replaced, e.g. `?key=AIza…` → `?key=[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = decodeSafe(eq < 0 ? pair : pair.slice(0, eq)).toLowerCase()
      return SECRET_QUERY_PARAMS.has(name) ? `${pair.slice(0, eq < 0 ? pair.length : eq)}=${REDACTED}` : pair
    })
  return `${url.slice(0, q)}?${params.join('&')}`
}

// Key shapes of the providers Tollgate fronts; a free-text message (an upstream
// error body, an exception) may quote one back.
const SECRET_PATTERNS: readonly RegExp[] = [
  /\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}/g, // OpenAI, Anthropic (sk-ant-…), DeepSeek, OpenRouter (sk-or-…)
  /\bAIza[0-9A-Za-z_-]{20,}/g, // Google API keys
  /\bgsk_[A-Za-z0-9]{16,}/g, // Groq
  /\bxai-[A-Za-z0-9]{16,}/g, // xAI
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi,
  /([?&](?:key|api_key|apikey|access_token|token)=)[^&\s"']+/gi,
]

/** Free text with anything shaped like a credential replaced. */
export function redactText(text: string): string {
  let out = text
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (match, group1: unknown) =>
      typeof group1 === 'string' && (group1.startsWith('?') || group1.startsWith('&')) ? `${group1}${REDACTED}` : REDACTED,
    )
  }
  return out
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

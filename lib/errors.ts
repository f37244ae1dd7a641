/**
 * Every Tollgate error, each with a stable code. Callers match on `err.code`,
 * never on `instanceof`; a wrapped error keeps its `cause`. docs/errors.md
 * lists the same codes (test/lib/errors.test.ts keeps the two in step).
 */

export const ERROR_CODES = {
  TG_ERR_UNKNOWN_PROVIDER: 'The path names no known provider prefix',
  TG_ERR_UPSTREAM_UNREACHABLE: 'The upstream could not be reached (refused, DNS, TLS)',
  TG_ERR_UPSTREAM_TIMEOUT: 'The upstream sent nothing for longer than the upstream timeout',
  TG_ERR_UPSTREAM_RESET: 'The upstream closed the connection before the response was complete',
  TG_ERR_PROXY_INTERNAL: 'An unexpected failure inside the proxy while handling a call',
  TG_ERR_CONFIG_INVALID: 'The configuration (env or tollgate.config.json) is invalid',
  TG_ERR_BAD_SPAN_BATCH: 'A span batch sent to the collector is malformed or too large',
  TG_ERR_NOT_FOUND: 'No such route on the collector or proxy',
  TG_ERR_BAD_QUERY: 'A query parameter of the collector API is invalid',
  TG_ERR_CLI_USAGE: 'The command line is invalid',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class TollgateError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** The `code` of any error-like value (Node's `ECONNRESET`, ours, ClickHouse's), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code
    if (typeof code === 'string' || typeof code === 'number') return String(code)
  }
  return undefined
}

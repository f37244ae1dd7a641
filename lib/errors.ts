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
  TG_ERR_CONNECT_REFUSED: 'A forward-mode request was refused: malformed target, port not allowed, proxy auth missing, or a relay loop',
  TG_ERR_PROXY_INTERNAL: 'An unexpected failure inside the proxy while handling a call',
  TG_ERR_CONFIG_INVALID: 'The configuration (env or tollgate.config.json) is invalid',
  TG_ERR_BAD_SPAN_BATCH: 'A span batch sent to the collector is malformed or too large',
  TG_ERR_NOT_FOUND: 'No such route on the collector or proxy',
  TG_ERR_BAD_QUERY: 'A query parameter of the collector API is invalid',
  TG_ERR_CLI_USAGE: 'The command line is invalid',
  TG_ERR_SPOOL_FULL: 'The spool already holds maxSpoolBytes of rows not yet stored; the append was refused',
  TG_ERR_SPOOL_LOCKED: 'Another live process holds the spool directory',
  TG_ERR_SPOOL_IO: 'Writing or fsyncing the spool failed; the append was not acknowledged',
  TG_ERR_SPOOL_CORRUPT: 'A spool file (checkpoint or segment) is not in the expected format',
  TG_ERR_SPOOL_RANGE: 'A spool read or commit named a position outside the pending range',
  TG_ERR_INTAKE_CLOSED: 'The collector is shutting down and takes no more rows',
  TG_ERR_STORE_TIMEOUT: 'A store call took longer than its timeout; it is retried',
  TG_ERR_MIGRATION: 'A schema migration failed, or an applied migration file was changed afterwards',
  TG_ERR_STORE: 'ClickHouse (server or embedded chDB) refused or failed a statement',
  TG_ERR_STORE_REJECTED: 'ClickHouse rejected inserted rows as malformed; the batch is set aside, not retried',
  TG_ERR_STORE_LOCKED: 'The embedded data directory is in use by another Tollgate process',
  TG_ERR_CA_CORRUPT: 'The local CA files exist but cannot be used (unreadable, key and certificate mismatched, half-written, expired); they are never silently replaced',
  TG_ERR_CA_IO: 'The local CA directory or its files could not be read or written',
  TG_ERR_CA_BAD_HOSTNAME: 'A leaf certificate was asked for a name that is neither a DNS name nor an IP address',
  TG_ERR_BUDGET_STATE: 'The budget state file (which thresholds already fired this period) could not be read or written',
  TG_ERR_BUDGET_WEBHOOK: 'A budget webhook could not be delivered after every retry',
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

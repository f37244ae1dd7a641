/**
 * Structured logs (pino). Credentials are removed twice over: callers log no
 * headers, and pino's redaction drops the known header paths should one slip in.
 */
import { pino, type Logger } from 'pino'
import { SECRET_HEADERS } from './redact.ts'

export type { Logger }

const redactPaths = [...SECRET_HEADERS].flatMap((h) => [`headers["${h}"]`, `req.headers["${h}"]`])

/**
 * @param options.toStderr log to stderr, for commands whose stdout is their answer (`tollgate ca path`).
 */
export function createLogger(options: { level?: string; name?: string; toStderr?: boolean } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'tollgate',
      level: options.level ?? 'info',
      redact: { paths: redactPaths, censor: '[redacted]' },
      base: undefined,
    },
    pino.destination(options.toStderr ? 2 : 1),
  )
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' })

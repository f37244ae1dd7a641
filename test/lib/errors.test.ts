import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, TollgateError, errorCode } from '../../lib/errors.ts'

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes in lib/errors.ts', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
    const documented = [...doc.matchAll(/^\| `(TG_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort()
    expect(documented).toEqual(Object.keys(ERROR_CODES).sort())
  })
  it('keeps code and cause', () => {
    const cause = new Error('inner')
    const err = new TollgateError('TG_ERR_UPSTREAM_RESET', 'outer', { cause })
    expect(errorCode(err)).toBe('TG_ERR_UPSTREAM_RESET')
    expect(err.cause).toBe(cause)
    expect(err.name).toBe('TollgateError')
    expect(errorCode(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('ECONNRESET')
    expect(errorCode('nope')).toBeUndefined()
  })
})

import { describe, expect, it } from 'vitest'
import { redactHeaders, redactText, redactUrl } from '../../lib/redact.ts'

describe('redact', () => {
  it('masks every credential header', () => {
    const out = redactHeaders({
      authorization: 'Bearer sk-abc',
      'x-api-key': 'sk-ant-abc',
      'api-key': 'azure',
      'x-goog-api-key': 'AIza',
      cookie: 'a=b',
      'Proxy-Authorization': 'Basic x',
      'content-type': 'application/json',
    })
    expect(out).toEqual({
      authorization: '[redacted]',
      'x-api-key': '[redacted]',
      'api-key': '[redacted]',
      'x-goog-api-key': '[redacted]',
      cookie: '[redacted]',
      'Proxy-Authorization': '[redacted]',
      'content-type': 'application/json',
    })
  })
  it('masks ?key= and friends in URLs, keeping the rest', () => {
    expect(redactUrl('/gemini/v1beta/models/x:generateContent?alt=sse&key=AIzaSECRET')).toBe(
      '/gemini/v1beta/models/x:generateContent?alt=sse&key=[redacted]',
    )
    expect(redactUrl('/a?api-key=1&b=2')).toBe('/a?api-key=[redacted]&b=2')
    expect(redactUrl('/a')).toBe('/a')
  })
  it('masks key-shaped strings in free text', () => {
    const text = redactText(
      'Incorrect API key provided: sk-proj-abcdefghijklmnop. Also Bearer abcdefghij and AIzaSyA1234567890123456789012345 and ?key=zzz',
    )
    expect(text).not.toMatch(/sk-proj-abc|abcdefghij|AIzaSy|zzz/)
    expect(text).toContain('?key=[redacted]')
  })
})

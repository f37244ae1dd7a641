import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'

describe('loadConfig', () => {
  const emptyDir = mkdtempSync(join(tmpdir(), 'tg-config-'))

  it('applies the DESIGN.md defaults', () => {
    const config = loadConfig({}, emptyDir)
    expect(config).toMatchObject({ host: '127.0.0.1', proxyPort: 8080, uiPort: 8081, dataDir: './.tollgate', captureBodies: 'off' })
    expect(Object.isFrozen(config)).toBe(true)
  })

  it('reads TOLLGATE_* env, upstream overrides included', () => {
    const config = loadConfig(
      { TOLLGATE_PROXY_PORT: '9000', TOLLGATE_UPSTREAM_OPENAI: 'http://127.0.0.1:9900', TOLLGATE_UPSTREAM_TIMEOUT_MS: '5000' },
      emptyDir,
    )
    expect(config.proxyPort).toBe(9000)
    expect(config.upstreams).toEqual({ openai: 'http://127.0.0.1:9900' })
    expect(config.upstreamTimeoutMs).toBe(5000)
  })

  it('merges tollgate.config.json under env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-config-'))
    writeFileSync(
      join(dir, 'tollgate.config.json'),
      JSON.stringify({ uiPort: 7001, proxyPort: 7000, priceOverrides: { 'my-model': { input_mtok: 1, output_mtok: 2 } } }),
    )
    const config = loadConfig({ TOLLGATE_PROXY_PORT: '7100' }, dir)
    expect(config.uiPort).toBe(7001)
    expect(config.proxyPort).toBe(7100)
    expect(config.priceOverrides['my-model']).toEqual({ input_mtok: 1, output_mtok: 2 })
  })

  it('lists every problem at once', () => {
    let err: unknown
    try {
      loadConfig({ TOLLGATE_PROXY_PORT: 'abc', TOLLGATE_CAPTURE_BODIES: 'some', TOLLGATE_UPSTREAM_OPENAI: 'not a url' }, emptyDir)
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'TG_ERR_CONFIG_INVALID' })
    const message = (err as Error).message
    expect(message).toContain('proxyPort')
    expect(message).toContain('captureBodies')
    expect(message).toContain('upstreams.openai')
  })
})

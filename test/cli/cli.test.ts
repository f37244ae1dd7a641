/**
 * The `tollgate` command as a user runs it: help, unknown commands, the CA
 * commands (which must work without opening the span store), bad config.
 */
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = new URL('../../', import.meta.url).pathname
const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

function tollgate(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, ['bin/tollgate.mjs', ...args], { cwd: root, env: { ...process.env, TOLLGATE_DATA_DIR: dataDir, ...env }, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  )
}

describe('tollgate CLI', () => {
  it('lists commands, and --help on each', async () => {
    const usage = await tollgate(['--help'])
    expect(usage.code).toBe(0)
    for (const cmd of ['start', 'proxy', 'collector', 'migrate', 'ca']) expect(usage.stdout).toContain(cmd)
    const help = await tollgate(['ca', '--help'])
    expect(help.stdout).toMatch(/ca path/)
    const unknown = await tollgate(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown command')
  })

  it('ca path / bundle / trust-help create and reuse the CA without opening storage', async () => {
    const path = await tollgate(['ca', 'path'])
    expect(path.code).toBe(0)
    const caPath = path.stdout.trim()
    expect(caPath).toBe(join(dataDir, 'ca', 'ca.pem'))
    const cert = new X509Certificate(readFileSync(caPath))
    expect(cert.ca).toBe(true)
    const keyFile = join(dataDir, 'ca', 'ca-key.pem')
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    expect(path.stdout + path.stderr).not.toContain('PRIVATE KEY')

    const again = await tollgate(['ca', 'path'])
    expect(new X509Certificate(readFileSync(again.stdout.trim())).fingerprint256).toBe(cert.fingerprint256)

    const bundle = await tollgate(['ca', 'bundle', join(dataDir, 'b.pem')])
    expect(bundle.code).toBe(0)
    const pem = readFileSync(join(dataDir, 'b.pem'), 'utf8')
    expect(pem).toContain(cert.toString().trim())
    expect(pem.match(/BEGIN CERTIFICATE/g)!.length).toBeGreaterThan(100)

    const help = await tollgate(['ca', 'trust-help'])
    expect(help.stdout).toContain('NODE_EXTRA_CA_CERTS')
    expect(help.stdout).toContain('SSL_CERT_FILE')
    expect(help.stdout).toContain('--cacert')
    expect(help.stdout).toContain('update-ca-certificates')
    // The storage directory was never opened by these commands.
    expect(() => statSync(join(dataDir, 'chdb'))).toThrow()
  })

  it('bad configuration stops with every problem listed', async () => {
    const bad = await tollgate(['start'], { TOLLGATE_PROXY_PORT: 'eighty', TOLLGATE_CAPTURE_BODIES: 'maybe' })
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('TG_ERR_CONFIG_INVALID')
    expect(bad.stderr).toContain('proxyPort')
    expect(bad.stderr).toContain('captureBodies')
  })
})

/**
 * The `tollgate` command as a user runs it: help, unknown commands, the CA
 * commands (which must work without opening the span store), bad config.
 */
import { execFile, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { getPriority, tmpdir } from 'node:os'
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

  it.runIf(existsSync('/proc/self/task'))('a standalone collector runs every thread, chDB\'s too, at TOLLGATE_COLLECTOR_NICE', async () => {
    const parent = getPriority()
    const nice = Math.min(19, parent + 7)
    const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_HOST: '127.0.0.1', TOLLGATE_UI_PORT: '0', TOLLGATE_DATA_DIR: join(dataDir, 'niced'), TOLLGATE_COLLECTOR_NICE: String(nice) }
    delete env.TOLLGATE_CLICKHOUSE_URL
    delete env.TOLLGATE_CONFIG
    const proc = spawn(process.execPath, ['bin/tollgate.mjs', 'collector'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    try {
      let out = ''
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`collector did not start:\n${out}`)), 30_000)
        proc.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString()
          if (out.includes('Tollgate collector:')) {
            clearTimeout(timer)
            resolve()
          }
        })
        proc.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
        proc.once('exit', (code) => reject(new Error(`collector exited (${code}):\n${out}`)))
      })
      // /proc/<pid>/task/<tid>/stat: the 19th field is the thread's nice value (comm has no spaces here).
      const threads = readdirSync(`/proc/${proc.pid}/task`).map((tid) => {
        const stat = readFileSync(`/proc/${proc.pid}/task/${tid}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        return { name: readFileSync(`/proc/${proc.pid}/task/${tid}/comm`, 'utf8').trim(), nice: Number(fields[16]) }
      })
      // chDB's own pools are there, not only Node's threads.
      expect(threads.some((t) => t.name !== 'node' && !t.name.startsWith('libuv'))).toBe(true)
      expect(threads.filter((t) => t.nice !== nice)).toEqual([])
      // The process that started it keeps its own priority.
      expect(getPriority()).toBe(parent)
    } finally {
      proc.kill('SIGTERM')
    }
  })
})

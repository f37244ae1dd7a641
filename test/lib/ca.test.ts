import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { openCertificateAuthority, trustHelp, writeCaBundle, type CertificateAuthority } from '../../lib/ca.ts'
import { errorCode } from '../../lib/errors.ts'
import { silentLogger } from '../../lib/log.ts'

const DAY_MS = 24 * 60 * 60 * 1000
const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1'
const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

const tempDirs: string[] = []
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-test-'))
  tempDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/** A pino logger whose output the test can read back. */
function capturingLogger(): { log: pino.Logger; text(): string } {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString('utf8')
      callback()
    },
  })
  return { log: pino({ level: 'debug' }, stream), text: () => text }
}

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(Error)
  expect(errorCode(err)).toBe(code)
  return err as Error
}

describe('openCertificateAuthority', () => {
  it('creates the CA once, key 0600 and cert 0644, and reuses it on reopen', async () => {
    const dir = join(freshDir(), 'ca')
    const logs = capturingLogger()
    const first = await openCertificateAuthority({ dir, log: logs.log })
    expect(first.created).toBe(true)
    expect(first.certPath).toBe(join(dir, 'ca.pem'))
    expect(readdirSync(dir).sort()).toEqual(['ca-key.pem', 'ca.pem']) // no temp files left behind
    if (process.platform !== 'win32') {
      expect(statSync(join(dir, 'ca-key.pem')).mode & 0o777).toBe(0o600)
      expect(statSync(join(dir, 'ca.pem')).mode & 0o777).toBe(0o644)
    }

    const cert = new X509Certificate(first.certPem)
    expect(cert.ca).toBe(true)
    expect(cert.subject).toMatch(/CN=Tollgate Local CA \(.+\)/)
    expect(cert.checkIssued(cert)).toBe(true)
    expect(cert.verify(cert.publicKey)).toBe(true)
    expect(cert.publicKey.asymmetricKeyType).toBe('ec')
    const now = Date.now()
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(now - 1 * DAY_MS)
    expect(Date.parse(cert.validTo)).toBeGreaterThanOrEqual(now + 9 * 365 * DAY_MS)
    expect(first.fingerprint256).toBe(cert.fingerprint256)
    expect(readFileSync(first.certPath, 'utf8')).toContain(first.certPem.trim())

    const second = await openCertificateAuthority({ dir, log: logs.log })
    expect(second.created).toBe(false)
    expect(second.fingerprint256).toBe(first.fingerprint256)
    // The key is never logged; the fingerprint is, so users can compare.
    expect(logs.text()).toContain(first.fingerprint256)
    expect(logs.text()).not.toContain('PRIVATE KEY')
  })

  describe('existing files that cannot be used fail with TG_ERR_CA_CORRUPT and are left as they are', () => {
    let dir: string
    beforeAll(async () => {
      dir = join(freshDir(), 'ca')
      await openCertificateAuthority({ dir, log: silentLogger })
    })
    async function copyOf(): Promise<string> {
      const caDir = join(freshDir(), 'ca')
      await openCertificateAuthority({ dir: caDir, log: silentLogger }) // creates the directory
      writeFileSync(join(caDir, 'ca.pem'), readFileSync(join(dir, 'ca.pem')))
      writeFileSync(join(caDir, 'ca-key.pem'), readFileSync(join(dir, 'ca-key.pem')))
      return caDir
    }

    it('a ca.pem that is not PEM', async () => {
      const caDir = await copyOf()
      writeFileSync(join(caDir, 'ca.pem'), 'not a certificate\n')
      const err = await expectCode(openCertificateAuthority({ dir: caDir, log: silentLogger }), 'TG_ERR_CA_CORRUPT')
      expect(err.message).toContain('ca.pem')
      expect(readFileSync(join(caDir, 'ca.pem'), 'utf8')).toBe('not a certificate\n')
    })

    it('a ca-key.pem that is not PEM', async () => {
      const caDir = await copyOf()
      writeFileSync(join(caDir, 'ca-key.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')
      const err = await expectCode(openCertificateAuthority({ dir: caDir, log: silentLogger }), 'TG_ERR_CA_CORRUPT')
      expect(err.message).toContain('ca-key.pem')
    })

    it('a key that does not match the certificate', async () => {
      const caDir = await copyOf()
      const otherDir = join(freshDir(), 'ca')
      await openCertificateAuthority({ dir: otherDir, log: silentLogger })
      writeFileSync(join(caDir, 'ca-key.pem'), readFileSync(join(otherDir, 'ca-key.pem')))
      const err = await expectCode(openCertificateAuthority({ dir: caDir, log: silentLogger }), 'TG_ERR_CA_CORRUPT')
      expect(err.message).toMatch(/does not match/)
    })

    it('a certificate without its key', async () => {
      const caDir = await copyOf()
      const certBefore = readFileSync(join(caDir, 'ca.pem'), 'utf8')
      unlinkSync(join(caDir, 'ca-key.pem'))
      await expectCode(openCertificateAuthority({ dir: caDir, log: silentLogger }), 'TG_ERR_CA_CORRUPT')
      expect(readFileSync(join(caDir, 'ca.pem'), 'utf8')).toBe(certBefore)
      expect(readdirSync(caDir)).toEqual(['ca.pem'])
    })

    it('a key whose certificate was never written (an interrupted creation)', async () => {
      const caDir = await copyOf()
      unlinkSync(join(caDir, 'ca.pem'))
      await expectCode(openCertificateAuthority({ dir: caDir, log: silentLogger }), 'TG_ERR_CA_CORRUPT')
      expect(readdirSync(caDir)).toEqual(['ca-key.pem'])
    })
  })

  it.skipIf(process.platform === 'win32')('tightens a key file that others can read back to 0600', async () => {
    const dir = join(freshDir(), 'ca')
    await openCertificateAuthority({ dir, log: silentLogger })
    chmodSync(join(dir, 'ca-key.pem'), 0o644)
    const logs = capturingLogger()
    await openCertificateAuthority({ dir, log: logs.log })
    expect(statSync(join(dir, 'ca-key.pem')).mode & 0o777).toBe(0o600)
    expect(logs.text()).toContain('reset to 0600')
  })

  it('two processes creating the CA at once end with one CA', async () => {
    const root = freshDir()
    const sharedDir = join(root, 'shared', 'ca')
    const caModule = new URL('../../lib/ca.ts', import.meta.url).href
    const logModule = new URL('../../lib/log.ts', import.meta.url).href
    // Each child first opens a CA of its own so the library is loaded, says
    // "ready", and waits for "go" on stdin: both then race to create the shared one.
    const script = `
      const { openCertificateAuthority } = await import(${JSON.stringify(caModule)})
      const { silentLogger } = await import(${JSON.stringify(logModule)})
      await openCertificateAuthority({ dir: process.env.WARM_DIR, log: silentLogger })
      process.stdout.write('ready\\n')
      await new Promise((resolve) => process.stdin.once('data', resolve))
      const ca = await openCertificateAuthority({ dir: process.env.CA_DIR, log: silentLogger })
      process.stdout.write(JSON.stringify({ created: ca.created, fingerprint256: ca.fingerprint256 }) + '\\n')
      process.stdin.destroy()
    `
    type ChildResult = { created: boolean; fingerprint256: string }
    const children = [1, 2].map((n) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: repoRoot,
        env: { ...process.env, WARM_DIR: join(root, `warm-${n}`, 'ca'), CA_DIR: sharedDir },
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      let markReady: () => void = () => undefined
      const ready = new Promise<void>((resolve) => (markReady = resolve))
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
        if (stdout.startsWith('ready\n')) markReady()
      })
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      const result = new Promise<ChildResult>((resolve, reject) => {
        child.on('error', reject)
        child.on('close', (code) => {
          if (code === 0) resolve(JSON.parse(stdout.slice('ready\n'.length)) as ChildResult)
          else reject(new Error(`child ${n} exited ${code}: ${stderr}`))
        })
      })
      return { child, ready: Promise.race([ready, result.then(() => undefined)]), result }
    })
    let results: ChildResult[]
    try {
      await Promise.all(children.map((c) => c.ready))
      for (const { child } of children) child.stdin.write('go\n')
      results = await Promise.all(children.map((c) => c.result))
    } finally {
      for (const { child } of children) if (child.exitCode === null) child.kill()
    }

    expect(results.filter((r) => r.created)).toHaveLength(1)
    expect(results[0]?.fingerprint256).toBe(results[1]?.fingerprint256)
    expect(new X509Certificate(readFileSync(join(sharedDir, 'ca.pem'))).fingerprint256).toBe(results[0]?.fingerprint256)
    expect(readdirSync(sharedDir).sort()).toEqual(['ca-key.pem', 'ca.pem'])
    const reopened = await openCertificateAuthority({ dir: sharedDir, log: silentLogger })
    expect(reopened.fingerprint256).toBe(results[0]?.fingerprint256)
  }, 20_000)
})

describe('leafFor', () => {
  let ca: CertificateAuthority
  let caCert: X509Certificate
  beforeAll(async () => {
    ca = await openCertificateAuthority({ dir: join(freshDir(), 'ca'), log: silentLogger })
    caCert = new X509Certificate(ca.certPem)
  })

  it('issues a leaf for the host that verifies against the CA', async () => {
    const { key, cert } = await ca.leafFor('api.openai.com')
    const [leafPem, chainCaPem] = pemBlocks(cert)
    expect(pemBlocks(cert)).toHaveLength(2)
    expect(new X509Certificate(chainCaPem ?? '').fingerprint256).toBe(ca.fingerprint256)
    expect(key).toContain('-----BEGIN PRIVATE KEY-----')

    const leaf = new X509Certificate(leafPem ?? '')
    expect(leaf.checkIssued(caCert)).toBe(true)
    expect(leaf.verify(caCert.publicKey)).toBe(true)
    expect(leaf.ca).toBe(false)
    expect(leaf.subjectAltName).toBe('DNS:api.openai.com')
    expect(leaf.checkHost('api.openai.com')).toBe('api.openai.com')
    expect(leaf.keyUsage).toContain(SERVER_AUTH_OID)
    expect(leaf.publicKey.asymmetricKeyType).toBe('ec')
    // Positive 16-byte serial: 32 hex digits, top bit clear.
    expect(leaf.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/)

    const validFrom = Date.parse(leaf.validFrom)
    const validTo = Date.parse(leaf.validTo)
    const now = Date.now()
    for (const at of [now - 1 * DAY_MS, now, now + 89 * DAY_MS]) {
      expect(validFrom).toBeLessThanOrEqual(at)
      expect(validTo).toBeGreaterThanOrEqual(at)
    }
    expect(validTo - validFrom).toBeLessThan(397 * DAY_MS)
  })

  it('puts an IP literal in an IP SAN', async () => {
    const leaf = new X509Certificate(pemBlocks((await ca.leafFor('127.0.0.1')).cert)[0] ?? '')
    expect(leaf.subjectAltName).toBe('IP Address:127.0.0.1')
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1')
    const v6 = new X509Certificate(pemBlocks((await ca.leafFor('[::1]')).cert)[0] ?? '')
    expect(v6.checkIP('::1')).toBe('::1')
  })

  it('refuses a name that is neither a DNS name nor an IP address', async () => {
    await expectCode(ca.leafFor('api.openai.com/evil'), 'TG_ERR_CA_BAD_HOSTNAME')
    await expectCode(ca.leafFor(''), 'TG_ERR_CA_BAD_HOSTNAME')
    await expectCode(ca.leafFor('a'.repeat(64) + '.com'), 'TG_ERR_CA_BAD_HOSTNAME')
  })

  it('shares one issue among concurrent calls: 50 calls for 5 hosts make 5 keys', async () => {
    const fresh = await openCertificateAuthority({ dir: join(freshDir(), 'ca'), log: silentLogger })
    const hosts = ['api.openai.com', 'api.anthropic.com', 'generativelanguage.googleapis.com', 'api.groq.com', 'api.mistral.ai']
    const leaves = await Promise.all(Array.from({ length: 50 }, (_, i) => fresh.leafFor(hosts[i % hosts.length] ?? '')))
    expect(new Set(leaves.map((l) => l.key)).size).toBe(5)
    expect(new Set(leaves.map((l) => l.cert)).size).toBe(5)
    // Case and a trailing dot name the same host.
    expect((await fresh.leafFor('API.OpenAI.com.')).key).toBe(leaves[0]?.key)
  })

  it('evicts the least recently used leaf beyond leafCacheSize', async () => {
    const small = await openCertificateAuthority({ dir: join(freshDir(), 'ca'), log: silentLogger, leafCacheSize: 2 })
    const a = await small.leafFor('a.example')
    await small.leafFor('b.example')
    await small.leafFor('c.example')
    expect((await small.leafFor('c.example')).key).not.toBe(a.key)
    expect((await small.leafFor('a.example')).key).not.toBe(a.key)
  })

  describe('renewal', () => {
    afterEach(() => {
      vi.useRealTimers()
    })
    it('reissues a cached leaf within 7 days of its notAfter', async () => {
      const leaf = await ca.leafFor('renew.example')
      vi.useFakeTimers({ toFake: ['Date'] })
      vi.setSystemTime(leaf.notAfter.getTime() - 8 * DAY_MS)
      expect((await ca.leafFor('renew.example')).key).toBe(leaf.key)
      vi.setSystemTime(leaf.notAfter.getTime() - 6 * DAY_MS)
      const renewed = await ca.leafFor('renew.example')
      expect(renewed.key).not.toBe(leaf.key)
      expect(renewed.notAfter.getTime()).toBeGreaterThan(leaf.notAfter.getTime())
    })
  })

  it('keeps the event loop turning while 20 leaves are issued', async () => {
    await ca.leafFor('warm-up.example')
    // Not a timing bound (those live in bench/): only that other work runs
    // between leaves. Issued in one synchronous burst, no timer could fire
    // until all 20 were done.
    let ticks = 0
    let ticksWhenFirstDone = -1
    const timer = setInterval(() => ticks++, 1)
    try {
      const leaves = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          ca.leafFor(`host-${i}.loop.example`).then((leaf) => {
            if (ticksWhenFirstDone < 0) ticksWhenFirstDone = ticks
            return leaf
          }),
        ),
      )
      expect(new Set(leaves.map((l) => l.key)).size).toBe(20)
    } finally {
      clearInterval(timer)
    }
    expect(ticks - ticksWhenFirstDone).toBeGreaterThanOrEqual(5)
  })
})

describe('secureContextFor', () => {
  let ca: CertificateAuthority
  let server: tls.Server
  let port: number
  beforeAll(async () => {
    ca = await openCertificateAuthority({ dir: join(freshDir(), 'ca'), log: silentLogger })
    server = tls.createServer(
      {
        SNICallback: (servername, callback) => {
          ca.secureContextFor(servername).then(
            (context) => callback(null, context),
            (err: Error) => callback(err),
          )
        },
      },
      (socket) => socket.end('hello from tollgate\n'),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  function connect(options: tls.ConnectionOptions): Promise<{ text: string; peerSan: string | undefined }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'api.openai.com', ...options })
      let text = ''
      let peerSan: string | undefined
      socket.on('secureConnect', () => {
        peerSan = socket.getPeerCertificate().subjectaltname
      })
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
      socket.on('error', reject)
      socket.on('end', () => resolve({ text, peerSan }))
    })
  }

  it('a client trusting the CA completes the handshake for api.openai.com', async () => {
    const { text, peerSan } = await connect({ ca: ca.certPem })
    expect(text).toBe('hello from tollgate\n')
    expect(peerSan).toBe('DNS:api.openai.com')
  })

  it('a client without the CA fails with a certificate error', async () => {
    const err = await connect({}).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(errorCode(err)).toMatch(/CERT|SIGNATURE|ISSUER/)
  })

  it('returns the cached context for the same host', async () => {
    expect(await ca.secureContextFor('api.openai.com')).toBe(await ca.secureContextFor('api.openai.com'))
  })
})

describe('writeCaBundle', () => {
  it('writes the Tollgate CA followed by at least 100 public roots', async () => {
    const ca = await openCertificateAuthority({ dir: join(freshDir(), 'ca'), log: silentLogger })
    const outPath = join(freshDir(), 'bundle', 'ca-bundle.pem')
    await writeCaBundle(ca, outPath)
    const blocks = pemBlocks(readFileSync(outPath, 'utf8'))
    expect(blocks.length).toBeGreaterThanOrEqual(101)
    expect(blocks.map((b) => new X509Certificate(b).fingerprint256)).toContain(ca.fingerprint256)
    expect(blocks.length).toBe(tls.rootCertificates.length + 1)
    if (process.platform !== 'win32') expect(statSync(outPath).mode & 0o777).toBe(0o644)
  })
})

describe('trustHelp', () => {
  it('gives the exact lines for curl, Node, Python and the OS stores', () => {
    const text = trustHelp(
      { certPath: '/data/ca/ca.pem', fingerprint256: 'AA:BB' },
      { proxyUrl: 'http://127.0.0.1:8080', bundlePath: '/data/ca/ca-bundle.pem' },
    )
    for (const line of [
      'export HTTPS_PROXY=http://127.0.0.1:8080',
      'curl --cacert /data/ca/ca-bundle.pem',
      'export CURL_CA_BUNDLE=/data/ca/ca-bundle.pem',
      'export NODE_EXTRA_CA_CERTS=/data/ca/ca.pem',
      'setGlobalDispatcher(new EnvHttpProxyAgent())',
      'export SSL_CERT_FILE=/data/ca/ca-bundle.pem',
      'export REQUESTS_CA_BUNDLE=/data/ca/ca-bundle.pem',
      'sudo cp /data/ca/ca.pem /usr/local/share/ca-certificates/tollgate.crt && sudo update-ca-certificates',
      'sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain /data/ca/ca.pem',
      'certutil -addstore -f Root /data/ca/ca.pem',
      'AA:BB',
    ]) {
      expect(text).toContain(line)
    }
  })

  it('quotes paths with spaces for the shell', () => {
    const text = trustHelp({ certPath: '/my data/ca.pem', fingerprint256: 'AA' }, { proxyUrl: 'http://127.0.0.1:8080', bundlePath: '/my data/b.pem' })
    expect(text).toContain("export NODE_EXTRA_CA_CERTS='/my data/ca.pem'")
    expect(text).toContain('certutil -addstore -f Root "/my data/ca.pem"')
  })
})

/**
 * The local certificate authority behind forward mode (HTTPS_PROXY). Tollgate
 * terminates TLS only for known LLM API hosts, with a per-host leaf signed by
 * this CA; every other host is tunnelled blind and never sees these certs.
 *
 * Files, in `<dataDir>/ca/`:
 *   ca.pem       the CA certificate (0644): what clients are told to trust
 *   ca-key.pem   its private key (0600 from the moment it exists; never logged)
 *
 * The CA is made once and then kept: a new one would silently break every
 * client that trusts the old, so unreadable files are an error, not a reason
 * to regenerate.
 */
import { X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto'
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { hostname as machineHostname } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { isIP } from 'node:net'
import { setImmediate as setImmediatePromise, setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import type * as X509 from '@peculiar/x509'
import { LRUCache } from 'lru-cache'
import { TollgateError, errorCode } from './errors.ts'
import type { Logger } from './log.ts'

const DAY_MS = 24 * 60 * 60 * 1000

/** Both CA and leaves start this far in the past, so a client whose clock runs up to 2 days slow still accepts them. */
const BACKDATE_MS = 2 * DAY_MS
/** The CA is trusted by hand, once: it should outlive the install. */
const CA_VALIDITY_MS = 10 * 365 * DAY_MS
/**
 * 90 days after issue (92 days counting the backdating). The CA/Browser Forum
 * Baseline Requirements §6.3.2 cap a TLS server certificate at 398 days (Apple
 * and Chrome enforce 397/398), and ballot SC-081 steps that down to 200 days
 * from 2026-03-15 and 100 days from 2027-03-15. A local CA is not bound by
 * them, but clients apply some of these checks to every chain, so staying under
 * the strictest near-term limit avoids surprises; leaves are cheap to reissue.
 */
const LEAF_VALIDITY_MS = 90 * DAY_MS
/** A cached leaf this close to its notAfter is reissued instead of served. */
const LEAF_RENEW_BEFORE_MS = 7 * DAY_MS
/**
 * How long to wait for ca.pem when ca-key.pem exists alone. A creating process
 * links the key and then the certificate, two syscalls apart; a key still
 * alone after this long was left by a creation that died in between.
 */
const CA_CREATION_WAIT_MS = 2000
const CA_CREATION_POLL_MS = 20

const CERT_FILE = 'ca.pem'
const KEY_FILE = 'ca-key.pem'

/** P-256 ECDSA: accepted by OpenSSL (curl, Python), Node, Go, Java, browsers and OS stores, with small fast keys. */
const EC_P256: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' }

export interface CertificateAuthorityOptions {
  /** Directory holding ca.pem and ca-key.pem: `<dataDir>/ca`. Created if missing. */
  dir: string
  /** Receives creation and reuse notices; never the key. */
  log: Logger
  /** Most leaf certificates kept in memory, least recently used evicted first. @default 1000 */
  leafCacheSize?: number
}

/** A leaf certificate for one host, ready for `tls.createSecureContext`. */
export interface LeafCertificate {
  /** The leaf's private key, PKCS#8 PEM. */
  readonly key: string
  /** The chain as PEM: the leaf, then the Tollgate CA. */
  readonly cert: string
  /** When the leaf stops being valid. */
  readonly notAfter: Date
}

export interface CertificateAuthority {
  /** Absolute path of ca.pem: what clients trust (`NODE_EXTRA_CA_CERTS`, `--cacert`, the OS store). */
  readonly certPath: string
  /** The CA certificate as PEM. */
  readonly certPem: string
  /** SHA-256 fingerprint of the CA certificate, colon-separated hex, for users to compare. */
  readonly fingerprint256: string
  /** True when this call created the CA files; false when it reused existing ones (or another process won the race to create them). */
  readonly created: boolean
  /**
   * A leaf for `hostname` (DNS name or IP literal), issued on first use and
   * cached; concurrent calls for one host share one issue.
   * @example const { key, cert } = await ca.leafFor('api.openai.com')
   */
  leafFor(hostname: string): Promise<LeafCertificate>
  /**
   * The leaf for `hostname` as a secure context, cached with it: what an
   * `SNICallback` hands back.
   * @example
   * tls.createServer({ SNICallback: (name, cb) => ca.secureContextFor(name).then((ctx) => cb(null, ctx), cb) })
   */
  secureContextFor(hostname: string): Promise<tls.SecureContext>
}

/**
 * Opens the CA in `dir`, creating it on first use. Safe when several processes
 * start at once on the same directory: exactly one CA results and all of them
 * use it.
 * @throws TollgateError `TG_ERR_CA_CORRUPT` when the files exist but cannot be
 *   used (unreadable, mismatched, expired); `TG_ERR_CA_IO` when the directory
 *   or files cannot be read or written.
 * @example const ca = await openCertificateAuthority({ dir: join(dataDir, 'ca'), log })
 */
export async function openCertificateAuthority(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  const { log } = options
  // Absolute, because certPath is handed to clients running from other directories (NODE_EXTRA_CA_CERTS).
  const dir = resolve(options.dir)
  const leafCacheSize = options.leafCacheSize ?? 1000
  const x509 = await loadX509()
  const certPath = join(dir, CERT_FILE)
  const keyPath = join(dir, KEY_FILE)

  // 0755: clients running as other users read ca.pem; the key protects itself with 0600.
  await io(`create ${dir}`, () => mkdir(dir, { recursive: true, mode: 0o755 }))

  let files = await readCaFiles(certPath, keyPath)
  let created = false
  if (files.certPem === undefined && files.keyPem === undefined) {
    created = await createCaFiles(x509, dir, certPath, keyPath)
    files = await readCaFiles(certPath, keyPath)
  }
  if (files.keyPem !== undefined && files.certPem === undefined) {
    files = await waitForCertificate(certPath, keyPath)
  }
  if (files.certPem === undefined || files.keyPem === undefined) {
    throw new TollgateError(
      'TG_ERR_CA_CORRUPT',
      `${certPath} exists but ${keyPath} does not. Restore the key, or delete ${dir} to create a new CA (every client must then trust the new one)`,
    )
  }
  await tightenKeyMode(keyPath, log)
  const loaded = await loadCa(x509, files.certPem, files.keyPem, certPath, keyPath, dir)

  if (created) log.info({ certPath, fingerprint256: loaded.nodeCert.fingerprint256 }, 'created Tollgate local CA')
  else log.debug({ certPath, fingerprint256: loaded.nodeCert.fingerprint256 }, 'using Tollgate local CA')
  const expiresInMs = Date.parse(loaded.nodeCert.validTo) - Date.now()
  if (expiresInMs < 90 * DAY_MS) {
    log.warn({ certPath, validTo: loaded.nodeCert.validTo }, 'Tollgate local CA expires within 90 days; delete the ca directory to create a new one and trust it again')
  }

  const issuer = createLeafIssuer(x509, loaded, leafCacheSize, log)
  return {
    certPath,
    certPem: loaded.certPem,
    fingerprint256: loaded.nodeCert.fingerprint256,
    created,
    leafFor: async function leafFor(hostname) {
      return (await issuer.issued(hostname)).leaf
    },
    secureContextFor: async function secureContextFor(hostname) {
      return (await issuer.issued(hostname)).secureContext
    },
  }
}

/**
 * Writes a PEM bundle of Node's bundled Mozilla roots plus the Tollgate CA, for
 * clients whose setting replaces the system roots instead of adding to them
 * (Python's `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, curl's `CURL_CA_BUNDLE`):
 * hosts that Tollgate tunnels blind still present public certificates.
 * Written to a temporary file and renamed, so a reader never sees half of it.
 * @example await writeCaBundle(ca, join(dataDir, 'ca', 'ca-bundle.pem'))
 */
export async function writeCaBundle(ca: Pick<CertificateAuthority, 'certPem'>, outPath: string): Promise<void> {
  const body = [
    '# Tollgate Local CA, followed by the public roots bundled with Node.js (Mozilla\'s list).',
    '# Made by `tollgate ca bundle`; regenerate it rather than editing it.',
    ca.certPem.trim(),
    ...tls.rootCertificates.map((pem) => pem.trim()),
    '',
  ].join('\n')
  await io(`create ${dirname(outPath)}`, () => mkdir(dirname(outPath), { recursive: true }))
  const tmpPath = tempPathFor(outPath)
  try {
    await writeNewFile(tmpPath, body, 0o644)
    await io(`rename ${tmpPath} to ${outPath}`, () => rename(tmpPath, outPath))
  } finally {
    await unlink(tmpPath).catch(() => undefined)
  }
}

export interface TrustHelpOptions {
  /** The proxy URL clients set as HTTPS_PROXY, e.g. `http://127.0.0.1:8080`. */
  proxyUrl: string
  /** Path of the bundle written by `writeCaBundle` (`tollgate ca bundle`). */
  bundlePath: string
}

/**
 * The exact commands that make each kind of client trust the Tollgate CA and
 * go through the proxy: curl, Node, Python, and the OS trust store.
 * @example process.stdout.write(trustHelp(ca, { proxyUrl: 'http://127.0.0.1:8080', bundlePath }))
 */
export function trustHelp(ca: Pick<CertificateAuthority, 'certPath' | 'fingerprint256'>, options: TrustHelpOptions): string {
  const certPath = resolve(ca.certPath)
  const bundlePath = resolve(options.bundlePath)
  const cert = shellQuote(certPath)
  const bundle = shellQuote(bundlePath)
  const proxy = shellQuote(options.proxyUrl)
  const winCert = windowsQuote(certPath)
  return `Tollgate local CA
  certificate: ${certPath}
  SHA-256:     ${ca.fingerprint256}
  bundle:      ${bundlePath}  (public roots + this CA; \`tollgate ca bundle\` writes it)

Forward mode reads calls to known LLM API hosts only; every other host is
tunnelled unread with its own certificate, which is why Python and curl get the
bundle rather than ca.pem alone.

curl
  export HTTPS_PROXY=${proxy}
  curl --cacert ${bundle} https://api.openai.com/v1/models
  # or, for every curl call:
  export CURL_CA_BUNDLE=${bundle}

Node.js (NODE_EXTRA_CA_CERTS adds to the bundled roots; it is read once at process start)
  export NODE_EXTRA_CA_CERTS=${cert}
  export HTTPS_PROXY=${proxy}
  # Node 20's fetch (and the OpenAI/Anthropic SDKs on it) ignores HTTPS_PROXY:
  # npm install undici, then once at startup:
  #   import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici'
  #   setGlobalDispatcher(new EnvHttpProxyAgent())
  # Node 24 and later: export NODE_USE_ENV_PROXY=1 instead of the two lines above.

Python (httpx, requests, and the OpenAI/Anthropic SDKs; these variables replace the default roots)
  export HTTPS_PROXY=${proxy}
  export SSL_CERT_FILE=${bundle}        # httpx, ssl
  export REQUESTS_CA_BUNDLE=${bundle}   # requests

Operating system trust store (for everything that uses it; needs admin rights)
  Debian/Ubuntu:
    sudo cp ${cert} /usr/local/share/ca-certificates/tollgate.crt && sudo update-ca-certificates
  Fedora/RHEL:
    sudo cp ${cert} /etc/pki/ca-trust/source/anchors/tollgate.pem && sudo update-ca-trust
  macOS:
    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${cert}
  Windows (elevated prompt; use -user instead for the current user only):
    certutil -addstore -f Root ${winCert}

Anyone holding ca-key.pem can impersonate any site to a machine that trusts this
CA: keep the data directory private, and remove the CA from trust stores when
you stop using Tollgate.
`
}

// ---------------------------------------------------------------------------
// Loading @peculiar/x509

type X509Module = typeof X509

let x509Module: Promise<X509Module> | undefined

/**
 * @peculiar/x509 v2 resolves its algorithms through tsyringe, which refuses to
 * load unless a Reflect metadata API exists (its README: "Reflect Polyfill
 * Required"). x509 defines no constructor parameters to inject, so the only
 * calls are tsyringe's own bookkeeping; a minimal WeakMap-backed API suffices.
 * It is installed only when no polyfill is present, and loading is deferred
 * until then because static imports would evaluate x509 first.
 */
function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    installReflectMetadata()
    const loaded = await import('@peculiar/x509')
    loaded.cryptoProvider.set(webcrypto)
    return loaded
  })()
  return x509Module
}

function installReflectMetadata(): void {
  const reflect = Reflect as unknown as Record<string, unknown>
  if (typeof reflect.getMetadata === 'function') return
  const store = new WeakMap<object, Map<unknown, unknown>>()
  const ownMap = (target: object, propertyKey: unknown): Map<unknown, unknown> | undefined =>
    store.get(target)?.get(propertyKey) as Map<unknown, unknown> | undefined
  const methods: Record<string, (...args: never[]) => unknown> = {
    defineMetadata(key: unknown, value: unknown, target: object, propertyKey?: unknown): void {
      let byProperty = store.get(target)
      if (byProperty === undefined) store.set(target, (byProperty = new Map()))
      let byKey = byProperty.get(propertyKey) as Map<unknown, unknown> | undefined
      if (byKey === undefined) byProperty.set(propertyKey, (byKey = new Map()))
      byKey.set(key, value)
    },
    getOwnMetadata(key: unknown, target: object, propertyKey?: unknown): unknown {
      return ownMap(target, propertyKey)?.get(key)
    },
    hasOwnMetadata(key: unknown, target: object, propertyKey?: unknown): boolean {
      return ownMap(target, propertyKey)?.has(key) ?? false
    },
    getMetadata(key: unknown, target: object, propertyKey?: unknown): unknown {
      for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
        const own = ownMap(t, propertyKey)
        if (own?.has(key)) return own.get(key)
      }
      return undefined
    },
    hasMetadata(key: unknown, target: object, propertyKey?: unknown): boolean {
      for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
        if (ownMap(t, propertyKey)?.has(key)) return true
      }
      return false
    },
  }
  // Writable and configurable, so a real polyfill loaded later simply replaces these.
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(Reflect, name, { value, writable: true, configurable: true, enumerable: false })
  }
}

// ---------------------------------------------------------------------------
// Creating and loading the CA files

interface CaFiles {
  certPem?: string
  keyPem?: string
}

interface LoadedCa {
  certPem: string
  nodeCert: NodeX509Certificate
  x509Cert: X509.X509Certificate
  signingKey: webcrypto.CryptoKey
  signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm
}

async function readCaFiles(certPath: string, keyPath: string): Promise<CaFiles> {
  const files: CaFiles = {}
  const certPem = await readIfExists(certPath)
  const keyPem = await readIfExists(keyPath)
  if (certPem !== undefined) files.certPem = certPem
  if (keyPem !== undefined) files.keyPem = keyPem
  return files
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined
    throw new TollgateError('TG_ERR_CA_IO', `Cannot read ${path}: ${String((err as Error).message)}`, { cause: err })
  }
}

/**
 * Makes a new CA and publishes it without a window in which another process
 * could see half of it or overwrite it: both files are written complete under
 * temporary names, then hard-linked into place — the key first, the
 * certificate last. `link` fails with EEXIST rather than replacing, so of two
 * racing processes exactly one publishes; the other reads the winner's files.
 * ca.pem appearing is the signal that creation has finished.
 * @returns true when this process published the CA.
 */
async function createCaFiles(x509: X509Module, dir: string, certPath: string, keyPath: string): Promise<boolean> {
  const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])
  const now = Date.now()
  const name: X509.JsonName = [{ O: ['Tollgate'] }, { CN: [`Tollgate Local CA (${machineHostname()})`] }]
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      // pathLen 0: this CA signs leaves only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  const keyPem = toPem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))

  const tmpKey = tempPathFor(keyPath)
  const tmpCert = tempPathFor(certPath)
  try {
    await writeNewFile(tmpKey, keyPem, 0o600)
    await writeNewFile(tmpCert, cert.toString('pem') + '\n', 0o644)
    try {
      await link(tmpKey, keyPath)
    } catch (err) {
      if (errorCode(err) === 'EEXIST') return false
      throw new TollgateError('TG_ERR_CA_IO', `Cannot write ${keyPath}: ${(err as Error).message}`, { cause: err })
    }
    try {
      await link(tmpCert, certPath)
    } catch (err) {
      // Our key is in place but a certificate appeared that no creator of ours
      // wrote (creators link the key first): take our key back and refuse.
      await unlink(keyPath).catch(() => undefined)
      if (errorCode(err) === 'EEXIST') {
        throw new TollgateError('TG_ERR_CA_CORRUPT', `${certPath} appeared without ${keyPath}; delete ${dir} to create a new CA`, { cause: err })
      }
      throw new TollgateError('TG_ERR_CA_IO', `Cannot write ${certPath}: ${(err as Error).message}`, { cause: err })
    }
    await syncDirectory(dir)
    return true
  } finally {
    await unlink(tmpKey).catch(() => undefined)
    await unlink(tmpCert).catch(() => undefined)
  }
}

/** ca-key.pem exists alone: another process is between its two links, or one died there. */
async function waitForCertificate(certPath: string, keyPath: string): Promise<CaFiles> {
  const deadline = Date.now() + CA_CREATION_WAIT_MS
  for (;;) {
    const files = await readCaFiles(certPath, keyPath)
    if (files.certPem !== undefined || files.keyPem === undefined) return files
    if (Date.now() >= deadline) {
      throw new TollgateError(
        'TG_ERR_CA_CORRUPT',
        `${keyPath} exists without ${certPath} (a CA creation was interrupted). No client can trust a CA whose certificate was never written: delete ${dirname(keyPath)} and start again`,
      )
    }
    await sleep(CA_CREATION_POLL_MS)
  }
}

/** Checks the pair is usable and prepares the key for signing. Never regenerates: see the file comment. */
async function loadCa(x509: X509Module, certPem: string, keyPem: string, certPath: string, keyPath: string, dir: string): Promise<LoadedCa> {
  const remedy = `Restore the original files, or delete ${dir} to create a new CA (every client must then trust the new one)`
  let nodeCert: NodeX509Certificate
  try {
    nodeCert = new NodeX509Certificate(certPem)
  } catch (err) {
    throw new TollgateError('TG_ERR_CA_CORRUPT', `${certPath} is not a PEM certificate. ${remedy}`, { cause: err })
  }
  let keyObject: KeyObject
  try {
    keyObject = createPrivateKey(keyPem)
  } catch (err) {
    // The cause is OpenSSL's decoder message, which names no key material.
    throw new TollgateError('TG_ERR_CA_CORRUPT', `${keyPath} is not a PEM private key. ${remedy}`, { cause: err })
  }
  if (!nodeCert.checkPrivateKey(keyObject)) {
    throw new TollgateError('TG_ERR_CA_CORRUPT', `${keyPath} does not match the certificate in ${certPath}. ${remedy}`)
  }
  if (!nodeCert.ca) {
    throw new TollgateError('TG_ERR_CA_CORRUPT', `${certPath} is not a CA certificate (basicConstraints CA:false). ${remedy}`)
  }
  if (Date.parse(nodeCert.validTo) <= Date.now()) {
    throw new TollgateError('TG_ERR_CA_CORRUPT', `${certPath} expired on ${nodeCert.validTo}. Delete ${dir} to create a new CA and trust it again`)
  }

  const { importAlgorithm, signingAlgorithm } = webCryptoAlgorithmFor(keyObject, keyPath)
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' })
  // Not extractable: once imported, the key cannot leave WebCrypto again.
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlgorithm, false, ['sign'])
  const x509Cert = new x509.X509Certificate(certPem)
  return { certPem: nodeCert.toString(), nodeCert, x509Cert, signingKey, signingAlgorithm }
}

/** Tollgate writes P-256 keys; P-384 and RSA are accepted too, for a CA that was supplied by hand. */
function webCryptoAlgorithmFor(key: KeyObject, keyPath: string): {
  importAlgorithm: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams
  signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm
} {
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') {
    return { importAlgorithm: { name: 'ECDSA', namedCurve: 'P-256' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } }
  }
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1') {
    return { importAlgorithm: { name: 'ECDSA', namedCurve: 'P-384' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } }
  }
  if (key.asymmetricKeyType === 'rsa') {
    return { importAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } }
  }
  throw new TollgateError('TG_ERR_CA_CORRUPT', `${keyPath} holds a ${key.asymmetricKeyType ?? 'unknown'} ${curve ?? ''} key; Tollgate signs with ECDSA P-256/P-384 or RSA`)
}

/** The key file must never be readable by others: if someone loosened it, tighten it back and say so. */
async function tightenKeyMode(keyPath: string, log: Logger): Promise<void> {
  if (process.platform === 'win32') return // POSIX modes do not apply; NTFS ACLs come from the directory.
  const { mode } = await io(`stat ${keyPath}`, () => stat(keyPath))
  if ((mode & 0o077) !== 0) {
    await io(`chmod ${keyPath}`, () => chmod(keyPath, 0o600))
    log.warn({ keyPath, mode: (mode & 0o777).toString(8) }, 'CA key file was readable by other users; reset to 0600')
  }
}

// ---------------------------------------------------------------------------
// Leaves

interface IssuedLeaf {
  leaf: LeafCertificate
  secureContext: tls.SecureContext
}

interface LeafSlot {
  promise: Promise<IssuedLeaf>
  /** When to stop serving this leaf (ms since epoch); Infinity while it is being issued. */
  renewAtMs: number
}

function createLeafIssuer(x509: X509Module, ca: LoadedCa, leafCacheSize: number, log: Logger): { issued(hostname: string): Promise<IssuedLeaf> } {
  const slots = new LRUCache<string, LeafSlot>({ max: leafCacheSize })
  const caKeyId = ca.x509Cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
  // The same for every leaf, so encoded once.
  const fixedExtensions = (async () => [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    caKeyId !== undefined ? new x509.AuthorityKeyIdentifierExtension(caKeyId) : await x509.AuthorityKeyIdentifierExtension.create(ca.x509Cert),
  ])()

  async function issueLeaf(host: ParsedHost): Promise<IssuedLeaf> {
    // WebCrypto runs key generation and signing on libuv's thread pool; only
    // the ASN.1 encoding and the secure context are built on this thread.
    const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])
    const now = Date.now()
    const notAfter = new Date(now + LEAF_VALIDITY_MS)
    // The SAN carries the name clients check (CA/B BR §7.1.2.7.12); the CN
    // repeats it for old tools, within its 64-character limit (RFC 5280 ub-common-name).
    const sanCritical = host.name.length > 64
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      ...(sanCritical ? {} : { subject: [{ CN: [host.name] }] }),
      issuer: ca.x509Cert.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: ca.signingAlgorithm,
      extensions: [
        ...(await fixedExtensions),
        // An empty subject requires a critical SAN (RFC 5280 §4.2.1.6).
        new x509.SubjectAlternativeNameExtension([{ type: host.ip ? 'ip' : 'dns', value: host.name }], sanCritical),
      ],
    })
    const key = toPem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
    const leaf: LeafCertificate = Object.freeze({ key, cert: `${cert.toString('pem')}\n${ca.certPem}`, notAfter })
    log.debug({ hostname: host.name, notAfter: notAfter.toISOString() }, 'issued leaf certificate')
    return { leaf, secureContext: tls.createSecureContext({ key: leaf.key, cert: leaf.cert }) }
  }

  /**
   * One leaf is built at a time. @peculiar/asn1-schema spends roughly 10 ms of
   * this thread per leaf (measured on the 2-core CI machine) between the
   * thread-pool steps; issued concurrently, those slices land back to back in
   * one turn of the event loop — 20 at once stalled it for 85-450 ms. Queued,
   * each stall stays a few milliseconds and other connections interleave. The
   * total time is the same, since this thread is the bottleneck either way.
   */
  let queueTail: Promise<unknown> = Promise.resolve()
  function enqueue(host: ParsedHost): Promise<IssuedLeaf> {
    const run = queueTail.then(async () => {
      await setImmediatePromise() // let pending I/O and timers run between leaves
      return issueLeaf(host)
    })
    queueTail = run.catch(() => undefined)
    return run
  }

  return {
    issued(hostname: string): Promise<IssuedLeaf> {
      let host: ParsedHost
      try {
        host = parseHost(hostname)
      } catch (err) {
        return Promise.reject(err)
      }
      const cached = slots.get(host.name)
      if (cached !== undefined && Date.now() < cached.renewAtMs) return cached.promise
      const slot: LeafSlot = { promise: enqueue(host), renewAtMs: Number.POSITIVE_INFINITY }
      slots.set(host.name, slot)
      slot.promise.then(
        (issued) => {
          slot.renewAtMs = issued.leaf.notAfter.getTime() - LEAF_RENEW_BEFORE_MS
        },
        () => {
          // A failed issue is not cached: the next call tries again.
          if (slots.peek(host.name) === slot) slots.delete(host.name)
        },
      )
      return slot.promise
    },
  }
}

interface ParsedHost {
  /** Lower-case DNS name without a trailing dot, or an IP literal without brackets: the cache key. */
  name: string
  ip: boolean
}

const DNS_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/

function parseHost(hostname: string): ParsedHost {
  let name = hostname.trim().toLowerCase()
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1)
  if (isIP(name) !== 0) return { name, ip: true }
  if (name.endsWith('.')) name = name.slice(0, -1)
  if (name.length === 0 || name.length > 253 || !name.split('.').every((label) => DNS_LABEL.test(label))) {
    throw new TollgateError('TG_ERR_CA_BAD_HOSTNAME', `Cannot issue a certificate for ${JSON.stringify(hostname.slice(0, 300))}: not a DNS name or IP address`)
  }
  return { name, ip: false }
}

// ---------------------------------------------------------------------------
// Small helpers

/**
 * 16 random bytes, positive and without a leading zero byte so the DER
 * INTEGER stays 16 bytes: 126 random bits, above the 64 the CA/B Baseline
 * Requirements §7.1 ask for, so no two leaves share a serial.
 */
function randomSerialHex(): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40
  return bytes.toString('hex')
}

function toPem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`
}

/** A hidden sibling of `path`: same directory, hence same filesystem, as `link` and `rename` need. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
}

/** Creates `path` (which must not exist) with `mode` from the start, writes and fsyncs it. */
async function writeNewFile(path: string, content: string, mode: number): Promise<void> {
  await io(`write ${path}`, async () => {
    const handle = await open(path, 'wx', mode)
    try {
      // The umask may have narrowed the mode at creation; set it exactly (never wider than asked).
      await handle.chmod(mode)
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
  })
}

/** Makes the new directory entries durable; best effort, since not every platform can open a directory. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // Windows and some filesystems refuse; the files themselves were fsynced.
  }
}

async function io<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action()
  } catch (err) {
    if (err instanceof TollgateError) throw err
    throw new TollgateError('TG_ERR_CA_IO', `Cannot ${what}: ${(err as Error).message}`, { cause: err })
  }
}

const SHELL_SAFE = /^[A-Za-z0-9_/.:@%+=,-]+$/

function shellQuote(value: string): string {
  return SHELL_SAFE.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

function windowsQuote(value: string): string {
  return /^[^\s"&|<>^]+$/.test(value) ? value : `"${value.replace(/"/g, '')}"`
}

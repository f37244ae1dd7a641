/**
 * Forward mode through real clients and real TLS: curl, Python httpx, Node
 * (undici ProxyAgent) and the openai SDK set to use Tollgate as their HTTPS
 * proxy, trusting its CA the way the README says. The "real" LLM host is the
 * mock upstream over HTTPS with a test CA of its own, reached through
 * TOLLGATE_UPSTREAM_OPENAI; a host not on the list is tunnelled blind.
 */
import { execFile, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { promisify } from 'node:util'
import OpenAI from 'openai'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { ProxyAgent, fetch as undiciFetch } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Span } from '../../collector/schema.ts'
import { openCertificateAuthority, writeCaBundle, type CertificateAuthority } from '../../lib/ca.ts'
import { expectedUsage, mockText, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const run = promisify(execFile)

let work: string
let upstreamCa: CertificateAuthority
let upstream: MockUpstream
let other: https.Server
let otherPort: number
let tg: TestTollgate
let tollgateCaPath: string
let bundlePath: string
const logLines: string[] = []

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tollgate-forward-'))
  // The upstream's own CA: Tollgate trusts it for its upstream leg only.
  upstreamCa = await openCertificateAuthority({ dir: join(work, 'upstream-ca'), log: pino({ level: 'silent' }) })
  const upstreamLeaf = await upstreamCa.leafFor('127.0.0.1')
  upstream = await startMockUpstream({ tls: { key: upstreamLeaf.key, cert: upstreamLeaf.cert } })
  // A non-LLM HTTPS host: must be tunnelled, never intercepted.
  other = https.createServer({ key: upstreamLeaf.key, cert: upstreamLeaf.cert }, (_req, res) => res.end('hello from elsewhere'))
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()))
  otherPort = (other.address() as net.AddressInfo).port

  const sink = new Writable({ write: (c: Buffer, _e, done) => (logLines.push(c.toString()), done()) })
  tg = await startTestTollgate(
    { upstreams: { openai: upstream.url, anthropic: upstream.url }, connectPorts: [443, otherPort] },
    { upstreamCa: upstreamCa.certPem, log: pino({ level: 'info' }, sink) },
  )
  tollgateCaPath = join(tg.dataDir, 'ca', 'ca.pem')
  bundlePath = join(work, 'bundle.pem')
  const ca = await openCertificateAuthority({ dir: join(tg.dataDir, 'ca'), log: pino({ level: 'silent' }) })
  await writeCaBundle(ca, bundlePath)
})
afterAll(async () => {
  await tg.close()
  await upstream.close()
  await new Promise<void>((r) => other.close(() => r()))
  rmSync(work, { recursive: true, force: true })
})

const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
const streamBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } })

async function newSpans(n: number, call: () => Promise<unknown>): Promise<Span[]> {
  const before = (await tg.spans()).length
  await call()
  return (await tg.waitForSpans(before + n)).slice(0, n)
}

/** The fields that must not depend on how the call reached Tollgate. */
function comparable(span: Span) {
  const { span_id: _i, started_at: _s, ended_at: _e, duration_ms: _d, ttft_ms: _t, mode: _m, client_addr: _c, request_bytes: _rq, response_bytes: _rs, ...rest } = span
  return rest
}

describe('curl with HTTPS_PROXY and --cacert', () => {
  it('intercepts api.openai.com: same answer, span equal to reverse mode', async () => {
    const [forward] = await newSpans(1, async () => {
      const { stdout } = await run('curl', ['-sS', '--fail-with-body', '--proxy', tg.proxyUrl, '--cacert', tollgateCaPath, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '-H', 'authorization: Bearer sk-fwd-secret-123456789', '-d', chatBody])
      expect(JSON.parse(stdout).choices[0].message.content).toBe(mockText())
    })
    const [reverse] = await newSpans(1, () => run('curl', ['-sS', `${tg.proxyUrl}/openai/v1/chat/completions`, '-H', 'authorization: Bearer sk-fwd-secret-123456789', '-d', chatBody]))
    expect(forward!.mode).toBe('forward')
    expect(reverse!.mode).toBe('reverse')
    expect(comparable(forward!)).toEqual(comparable(reverse!))
    expect(forward).toMatchObject({ provider: 'openai', endpoint: 'chat', input_tokens: 120, cost_status: 'priced' })
    expect(upstream.requests.at(-2)!.headers.authorization).toBe('Bearer sk-fwd-secret-123456789')
    expect(JSON.stringify(forward)).not.toContain('sk-fwd-secret')
  })

  it('streams through the interception chunk by chunk', async () => {
    const [span] = await newSpans(1, async () => {
      const { stdout } = await run('curl', ['-sSN', '--proxy', tg.proxyUrl, '--cacert', tollgateCaPath, 'https://api.openai.com/v1/chat/completions', '-H', 'x-mock-chunks: 4', '-H', 'x-mock-chunk-interval-ms: 20', '-d', streamBody])
      expect(stdout).toContain('data: [DONE]')
    })
    expect(span).toMatchObject({ mode: 'forward', stream: true, input_tokens: expectedUsage('chat').input_tokens, output_tokens: expectedUsage('chat').output_tokens })
    expect(span!.ttft_ms).not.toBeNull()
    expect(span!.duration_ms).toBeGreaterThan(span!.ttft_ms! + 40)
  })

  it('tunnels a host not on the list blind: its own certificate, no span', async () => {
    const before = (await tg.spans()).length
    const { stdout } = await run('curl', ['-sS', '--proxy', tg.proxyUrl, '--cacert', join(work, 'upstream-ca', 'ca.pem'), `https://127.0.0.1:${otherPort}/`])
    expect(stdout).toContain('hello from elsewhere')
    // The certificate the client saw was the server's own (issued by the upstream test CA), not one of Tollgate's.
    const seen = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const socket = net.connect(Number(new URL(tg.proxyUrl).port), '127.0.0.1', () => socket.write(`CONNECT 127.0.0.1:${otherPort} HTTP/1.1\r\nHost: 127.0.0.1:${otherPort}\r\n\r\n`))
      socket.once('data', (d) => {
        expect(d.toString()).toMatch(/^HTTP\/1\.1 200/)
        const t = tls.connect({ socket, ca: upstreamCa.certPem, host: '127.0.0.1' }, () => {
          resolve(t.getPeerCertificate())
          t.destroy()
        })
        t.on('error', reject)
      })
      socket.on('error', reject)
    })
    expect(seen.fingerprint256).toBe(new X509Certificate((await upstreamCa.leafFor('127.0.0.1')).cert.split(/(?<=-----END CERTIFICATE-----)/)[0]!).fingerprint256)
    await tg.tollgate.collector.batcher.forceFlush()
    expect((await tg.spans()).length).toBe(before)
  })

  it('a client that does not trust the CA fails cleanly; the proxy logs a hint and keeps serving', async () => {
    const result = await run('curl', ['-sS', '--proxy', tg.proxyUrl, 'https://api.anthropic.com/v1/messages', '-d', '{}'], { env: { ...process.env, CURL_CA_BUNDLE: join(work, 'upstream-ca', 'ca.pem') } }).then(
      () => ({ code: 0 }),
      (err: { code: number }) => ({ code: err.code }),
    )
    expect(result.code).toBe(60) // curl: peer certificate cannot be authenticated
    const deadline = Date.now() + 3000
    while (!logLines.some((l) => l.includes('api.anthropic.com') && l.includes('trust-help')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(logLines.some((l) => l.includes('api.anthropic.com') && l.includes('trust-help'))).toBe(true)
    const { stdout } = await run('curl', ['-sS', '--proxy', tg.proxyUrl, '--cacert', tollgateCaPath, 'https://api.openai.com/v1/chat/completions', '-d', chatBody])
    expect(JSON.parse(stdout).usage.prompt_tokens).toBe(120)
  })
})

describe('Python httpx trusting `tollgate ca bundle`', () => {
  it('captures a call made with HTTPS_PROXY and SSL_CERT_FILE', async () => {
    const script = join(work, 'client.py')
    writeFileSync(
      script,
      [
        'import httpx, json',
        'r = httpx.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-4o", "messages": []}, timeout=20)',
        'print(json.dumps({"status": r.status_code, "tokens": r.json()["usage"]["prompt_tokens"]}))',
      ].join('\n'),
    )
    const [span] = await newSpans(1, async () => {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn('/usr/bin/python3', [script], {
          env: { PATH: process.env.PATH, HTTPS_PROXY: tg.proxyUrl, SSL_CERT_FILE: bundlePath },
        })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d) => (stdout += d))
        child.stderr.on('data', (d) => (stderr += d))
        child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`python exited ${code}: ${stderr}`))))
      })
      expect(JSON.parse(out)).toEqual({ status: 200, tokens: 120 })
    })
    expect(span).toMatchObject({ mode: 'forward', provider: 'openai', request_model: 'gpt-4o', cost_status: 'priced' })
  })
})

describe('Node: undici ProxyAgent and the openai SDK', () => {
  it('fetch through ProxyAgent, and the SDK with that agent', async () => {
    const dispatcher = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: readFileSync(tollgateCaPath, 'utf8') } })
    const spans = await newSpans(2, async () => {
      const res = await undiciFetch('https://api.anthropic.com/v1/messages', {
        method: 'POST',
        dispatcher,
        body: JSON.stringify({ model: 'claude-sonnet-4-20250514', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      })
      expect(res.status).toBe(200)
      await res.json()
      const client = new OpenAI({ apiKey: 'sk-test', maxRetries: 0, fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher } as unknown as NonNullable<ConstructorParameters<typeof OpenAI>[0]>["fetchOptions"] })
      const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } })
      let text = ''
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
      expect(text).toBe(mockText())
    })
    const anthropic = spans.find((s) => s.provider === 'anthropic')!
    const openai = spans.find((s) => s.provider === 'openai')!
    expect(anthropic).toMatchObject({ mode: 'forward', endpoint: 'messages', input_tokens: expectedUsage('messages').input_tokens, cache_write_tokens: expectedUsage('messages').cache_write_tokens })
    expect(openai).toMatchObject({ mode: 'forward', stream: true, output_tokens: expectedUsage('chat').output_tokens })
    await dispatcher.close()
  })
})

describe('forward-mode guards', () => {
  async function connectReply(line: string, headers = ''): Promise<string> {
    return new Promise((resolve) => {
      const socket = net.connect(Number(new URL(tg.proxyUrl).port), '127.0.0.1', () => socket.write(`${line}\r\n${headers}\r\n`))
      let data = ''
      socket.on('data', (d) => (data += d.toString()))
      socket.on('close', () => resolve(data))
      socket.on('error', () => resolve(data))
      setTimeout(() => socket.destroy(), 3000)
    })
  }

  it('malformed targets, disallowed ports and loops are refused; the proxy keeps serving', async () => {
    expect(await connectReply('CONNECT not-a-target HTTP/1.1')).toMatch(/^HTTP\/1\.1 400/)
    expect(await connectReply('CONNECT example.com:25 HTTP/1.1')).toMatch(/^HTTP\/1\.1 403[\s\S]*port 25 is not allowed/)
    const ownPort = new URL(tg.proxyUrl).port
    expect(await connectReply(`CONNECT 127.0.0.1:${ownPort} HTTP/1.1`)).toMatch(/^HTTP\/1\.1 403/)
    const res = await fetch(`${tg.proxyUrl}/healthz`)
    expect(res.status).toBe(200)
  })

  it('plain-HTTP absolute-URI requests to an LLM host are captured too', async () => {
    const [span] = await newSpans(1, async () => {
      const { stdout } = await run('curl', ['-sS', '--proxy', tg.proxyUrl, 'http://api.openai.com/v1/chat/completions', '-d', chatBody])
      expect(JSON.parse(stdout).usage.prompt_tokens).toBe(120)
    })
    expect(span).toMatchObject({ mode: 'forward', provider: 'openai' })
  })
})

describe('proxy authentication', () => {
  it('requires Proxy-Authorization when configured', async () => {
    const locked = await startTestTollgate({ upstreams: { openai: upstream.url }, proxyAuth: 'team:s3cret' }, { upstreamCa: upstreamCa.certPem })
    try {
      const caPath = join(locked.dataDir, 'ca', 'ca.pem')
      const denied = await run('curl', ['-sS', '--proxy', locked.proxyUrl, '--cacert', caPath, 'https://api.openai.com/v1/chat/completions', '-d', chatBody]).then(
        () => 0,
        (e: { code: number }) => e.code,
      )
      expect(denied).not.toBe(0)
      const { stdout } = await run('curl', ['-sS', '--proxy', locked.proxyUrl, '--proxy-user', 'team:s3cret', '--cacert', caPath, 'https://api.openai.com/v1/chat/completions', '-d', chatBody])
      expect(JSON.parse(stdout).usage.prompt_tokens).toBe(120)
    } finally {
      await locked.close()
    }
  })
})

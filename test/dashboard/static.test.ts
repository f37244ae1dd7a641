/** collector/static.ts: the built dashboard as the collector serves it. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStaticSite } from '../../collector/static.ts'

let dir: string
let server: http.Server
let base: string
let root: string

/** A server like the collector's: the site first, then a JSON 404 for what it declines. */
function serveSite(siteRoot: string): http.Server {
  const site = createStaticSite({ root: siteRoot })
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    site.serve(req, res, url.pathname).then((served) => {
      if (!served) {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end('{"error":{"code":"TG_ERR_NOT_FOUND"}}')
      }
    }, (err: unknown) => {
      res.writeHead(500)
      res.end(String(err))
    })
  })
}

async function listen(s: http.Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

/** A raw request, so paths like `/../x` reach the server unnormalised. */
function rawGet(url: string, path: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/`, { method, path }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-static-'))
  root = join(dir, 'dist')
  mkdirSync(join(root, 'assets'), { recursive: true })
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>app</title>')
  writeFileSync(join(root, 'assets', 'index-BxVzITap.js'), 'console.log(1)')
  writeFileSync(join(root, 'assets', 'style-CKthexa_.css'), 'body{}')
  writeFileSync(join(root, 'robots.txt'), 'User-agent: *')
  writeFileSync(join(dir, 'secret.txt'), 'outside the root')
  server = serveSite(root)
  base = await listen(server)
})
afterAll(async () => {
  await new Promise((r) => server.close(r))
  rmSync(dir, { recursive: true, force: true })
})

describe('files', () => {
  it('serves index.html for / with no-cache', async () => {
    const res = await fetch(`${base}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(await res.text()).toContain('<title>app</title>')
  })
  it('serves hashed assets as immutable with their content types', async () => {
    const js = await fetch(`${base}/assets/index-BxVzITap.js`)
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(await js.text()).toBe('console.log(1)')
    const css = await fetch(`${base}/assets/style-CKthexa_.css`)
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
  })
  it('revalidates files without a hash in their name', async () => {
    const res = await fetch(`${base}/robots.txt`)
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
  })
  it('answers HEAD without a body', async () => {
    const res = await rawGet(base, '/assets/index-BxVzITap.js', 'HEAD')
    expect(res.status).toBe(200)
    expect(res.headers['content-length']).toBe('14')
    expect(res.body).toBe('')
  })
})

describe('routing', () => {
  it('falls back to index.html for unknown page paths (the app routes itself)', async () => {
    const res = await fetch(`${base}/models/gpt-4o`)
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('<title>app</title>')
  })
  it('404s a missing asset instead of sending HTML as a script', async () => {
    const res = await fetch(`${base}/assets/index-OLDHASH1.js`)
    expect(res.status).toBe(404)
  })
  it('leaves API, ingest and metrics paths to the collector', async () => {
    for (const path of ['/api/recommendations', '/api', '/v1/spans', '/metrics', '/healthz']) {
      const res = await fetch(`${base}${path}`)
      expect(res.status, path).toBe(404)
      expect(res.headers.get('content-type'), path).toBe('application/json')
    }
  })
  it('declines other methods', async () => {
    const res = await fetch(`${base}/`, { method: 'POST' })
    expect(res.status).toBe(404)
  })
})

describe('path traversal', () => {
  it('never serves a file outside the root', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/a%00.js']) {
      const res = await rawGet(base, path)
      expect(res.body, path).not.toContain('outside the root')
      expect(res.body, path).not.toContain('root:')
    }
  })
})

describe('dashboard not built', () => {
  it('serves a page that says how to build it', async () => {
    const empty = serveSite(join(dir, 'missing-dist'))
    const url = await listen(empty)
    try {
      for (const path of ['/', '/models']) {
        const res = await fetch(`${url}${path}`)
        expect(res.status).toBe(503)
        expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
        expect(await res.text()).toContain('dashboard not built: run <code>npm run build:dashboard</code>')
      }
    } finally {
      await new Promise((r) => empty.close(r))
    }
  })
})

/**
 * Serves the built dashboard (dashboard/dist) from the collector's port:
 * hashed assets cached for good, index.html revalidated every time, no path
 * outside the folder, and index.html for unknown page paths so the app's own
 * routes survive a reload. Without a build it serves a page saying how to
 * make one instead of failing.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** dashboard/dist next to this file's folder. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/dist/', import.meta.url))

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
}

/** Paths owned by the collector's API; never answered with the app. */
const RESERVED = /^\/(?:api|v1)(?:\/|$)|^\/(?:metrics|healthz)$/

/** Vite names built assets `<name>-<hash>.<ext>`; their content never changes under that name. */
const HASHED_ASSET = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/

const IMMUTABLE = 'public, max-age=31536000, immutable'
const REVALIDATE = 'no-cache'

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate: dashboard not built</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}code{background:#8882;padding:.1em .3em;border-radius:3px}</style>
</head><body>
<h1>Tollgate</h1>
<p>dashboard not built: run <code>npm run build:dashboard</code> (it runs on <code>npm install</code> too), then reload this page.</p>
<p>The collector API works without it: <a href="/api/summary?group_by=model">/api/summary</a>, <a href="/api/spans?limit=20">/api/spans</a>, <a href="/api/health">/api/health</a>.</p>
</body></html>
`

export interface StaticSiteOptions {
  /** The built dashboard. @default DEFAULT_DASHBOARD_DIR */
  root?: string
}

export interface StaticSite {
  /**
   * Answers a GET or HEAD for the dashboard; false when the path is not the
   * dashboard's (an API path, another method), so the caller answers it.
   */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean>
}

/**
 * @example
 * const site = createStaticSite()
 * if (await site.serve(req, res, url.pathname)) return
 */
export function createStaticSite(options: StaticSiteOptions = {}): StaticSite {
  const root = resolve(options.root ?? DEFAULT_DASHBOARD_DIR)
  const indexPath = resolve(root, 'index.html')

  /** The file a URL path names, or null when it would leave the root. */
  function fileFor(pathname: string): string | null {
    let decoded: string
    try {
      decoded = decodeURIComponent(pathname)
    } catch {
      return null
    }
    if (decoded.includes('\0')) return null
    const file = resolve(root, `.${decoded}`)
    return file === root || file.startsWith(root + sep) ? file : null
  }

  async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, size: number, cacheControl: string): Promise<void> {
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': cacheControl,
      'x-content-type-options': 'nosniff',
    })
    if (req.method === 'HEAD') return void res.end()
    await new Promise<void>((done, fail) => {
      const stream = createReadStream(file)
      stream.once('error', fail)
      res.once('close', () => {
        stream.destroy()
        done()
      })
      stream.pipe(res)
    })
  }

  async function sendIndex(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Read per request: the build can happen while the collector runs.
    const html = await readFile(indexPath).catch(() => null)
    if (html === null) {
      res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(NOT_BUILT_PAGE) })
      return void res.end(req.method === 'HEAD' ? undefined : NOT_BUILT_PAGE)
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES['.html']!,
      'content-length': html.length,
      'cache-control': REVALIDATE,
      'x-content-type-options': 'nosniff',
    })
    res.end(req.method === 'HEAD' ? undefined : html)
  }

  return {
    async serve(req, res, pathname) {
      if ((req.method !== 'GET' && req.method !== 'HEAD') || RESERVED.test(pathname)) return false
      if (pathname === '/' || pathname === '/index.html') {
        await sendIndex(req, res)
        return true
      }
      const file = fileFor(pathname)
      if (file === null) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
        res.end('bad path')
        return true
      }
      const info = await stat(file).catch(() => null)
      if (info?.isFile()) {
        await sendFile(req, res, file, info.size, HASHED_ASSET.test(pathname) ? IMMUTABLE : REVALIDATE)
        return true
      }
      // A missing asset is a 404, not the app: a browser would try to run HTML as a script.
      if (pathname.startsWith('/assets/')) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
        res.end('not found')
        return true
      }
      await sendIndex(req, res)
      return true
    },
  }
}

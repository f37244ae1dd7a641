/**
 * The only file that touches http-proxy (through `http-proxy-3`, the
 * maintained API-compatible rewrite). It owns the transport edge cases the
 * original package got wrong: the upstream request is cancelled when the
 * client goes away (no leaked socket), a reset mid-stream is passed on to the
 * client instead of leaving it hanging, and silence from the upstream is cut by
 * an idle timeout rather than left open forever.
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import { performance } from 'node:perf_hooks'
import { createProxyServer, type ServerOptions } from 'http-proxy-3'
import { TollgateError, errorCode } from '../lib/errors.ts'
import { sendError } from '../lib/http.ts'
import { memoizeBounded } from '../lib/memo.ts'
import { redactText } from '../lib/redact.ts'
import type { CallOutcome } from './span.ts'
import type { ResponseTap } from './tap.ts'

export interface ForwardTarget {
  /** Upstream base URL, e.g. `https://api.openai.com` or `http://127.0.0.1:9900/prefix`. */
  base: string
  /** Path and query appended to the base. */
  path: string
}

/** Per-call hooks; each is called at most once. */
export interface ForwardHooks {
  /**
   * Response headers arrived. The tap returned, if any, is handed each chunk
   * right after the chunk's write to the client, then the end or the error.
   */
  onResponse(proxyRes: IncomingMessage): ResponseTap | null
  /** The exchange is over, however it ended. `statusCode` is 0 when no response arrived. */
  onFinish(outcome: CallOutcome, statusCode: number): void
}

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, hooks: ForwardHooks): void
  /** Plain proxying with no capture, for forward-mode HTTP to hosts that are not LLM APIs. */
  passThrough(req: IncomingMessage, res: ServerResponse, target: ForwardTarget): void
  close(): void
}

export interface ForwarderOptions {
  /** Longest silence from the upstream in ms before the call is cut as `timeout`. */
  upstreamTimeoutMs: number
  /** Extra CA certificates trusted for HTTPS upstreams (tests, private gateways). */
  upstreamCa?: string | undefined
}

interface CallState {
  hooks: ForwardHooks
  outcome: CallOutcome | null
  statusCode: number
  finished: boolean
  /** performance.now() of the upstream's last sign of life: the call's start, the response head, each body chunk. */
  lastHeardAt: number
}

/**
 * A call's state rides on its request under a symbol, not in a WeakMap keyed
 * by the request: V8's young-generation GC does not free WeakMap entries, so
 * every call's objects (~8.5 KB, key and value) were copied and promoted to
 * the old generation, and scavenges took ~30 µs of CPU per call (measured
 * with --trace-gc-nvp: 9.3 KB survived per call with the WeakMap, 1.3 KB without).
 */
const kCall = Symbol('tollgate.call')
const MAX_UPSTREAM_BASES = 256
type TrackedRequest = IncomingMessage & { [kCall]?: CallState }
const callOf = (req: IncomingMessage): CallState | undefined => (req as TrackedRequest)[kCall]

export function createForwarder(options: ForwarderOptions): Forwarder {
  // http-proxy defaults to no agent (a new connection, `Connection: close`, per
  // call); LLM clients make many calls to few hosts, so keep sockets warm.
  const httpAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo' })
  const httpsAgent = new https.Agent({ keepAlive: true, scheduling: 'lifo', ca: options.upstreamCa })
  // selfHandleResponse: http-proxy makes the upstream request and watches it,
  // and relayResponse writes the response (the same headers its outgoing
  // passes would set), so a chunk reaches the tap right after its write,
  // without a second 'data' listener, a pipe, or a header-by-header setHeader.
  const proxy = createProxyServer({ changeOrigin: true, xfwd: false, selfHandleResponse: true })
  // Per upstream base: the request options, built once rather than per call.
  // Bounded, since an Azure resource or a forward-mode host comes from the request.
  const optionsFor = memoizeBounded(MAX_UPSTREAM_BASES, (href: string): ProxyCallOptions => {
    const base = new URL(href)
    return proxyCallOptions(base, base.protocol === 'https:' ? httpsAgent : httpAgent)
  })

  const timeoutMs = options.upstreamTimeoutMs
  proxy.on('proxyReq', (proxyReq, req) => {
    const call = callOf(req)
    if (!call) return
    proxyReq.setTimeout(timeoutMs, () => judgeSilence(call, proxyReq))
  })

  /**
   * The socket's idle timer fired. Timers run before the poll phase reads the
   * sockets, so after a stall of the event loop (a starved process) bytes that
   * arrived in time may still be unread: the verdict waits until the poll
   * phase has had them, and if the upstream was heard meanwhile, a plain timer
   * watches the rest of the call (Node fires a request's timeout only once).
   */
  function judgeSilence(call: CallState, proxyReq: ClientRequest): void {
    setImmediate(function judgeAfterPoll() {
      if (call.finished || proxyReq.destroyed) return
      const silentFor = performance.now() - call.lastHeardAt
      if (silentFor < timeoutMs) {
        setTimeout(judgeSilence, Math.max(1, timeoutMs - silentFor), call, proxyReq).unref()
        return
      }
      settle(call, { kind: 'timeout' })
      proxyReq.destroy(new TollgateError('TG_ERR_UPSTREAM_TIMEOUT', `no data from the upstream for ${timeoutMs} ms`))
    })
  }

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const call = callOf(req)
    // passThrough: no capture, the response is relayed as is.
    if (!call) return relayResponse(proxyRes, req, res, null, null)
    call.statusCode = proxyRes.statusCode ?? 0
    call.lastHeardAt = performance.now()
    // Without this listener a reset mid-body is an unhandled 'error'.
    proxyRes.on('error', () => {})
    proxyRes.on('close', () => {
      if (proxyRes.complete) return
      // The upstream went away mid-body: http-proxy's pipe would leave the
      // client waiting forever; end it so the client sees the cut.
      settle(call, { kind: 'upstream_reset' })
      res.destroy()
    })
    relayResponse(proxyRes, req, res, call.hooks.onResponse(proxyRes), call)
  })

  // The client's socket died while the upstream request was being written.
  proxy.on('econnreset', (_err, req) => {
    const call = callOf(req)
    if (call) settle(call, { kind: 'client_aborted' })
  })

  function settle(call: CallState, outcome: CallOutcome): void {
    call.outcome ??= outcome
  }

  function finish(call: CallState): void {
    if (call.finished) return
    call.finished = true
    call.hooks.onFinish(call.outcome ?? { kind: 'completed' }, call.statusCode)
  }

  function onProxyError(err: Error, req: IncomingMessage, res: ServerResponse | import('node:net').Socket): void {
    const call = callOf(req)
    if (!call) return
    const code = errorCode(err)
    if (call.outcome === null) {
      if (req.socket.destroyed) settle(call, { kind: 'client_aborted' })
      else if (call.statusCode !== 0 || code === 'ECONNRESET' || code === 'EPIPE') settle(call, { kind: 'upstream_reset' })
      else settle(call, { kind: 'proxy_error' })
    }
    if (!('writeHead' in res)) return
    applyPendingHead(res)
    if (res.headersSent || res.destroyed) {
      res.destroy()
      return
    }
    const outcome = call.outcome ?? { kind: 'proxy_error' }
    const tollgateCode =
      outcome.kind === 'timeout'
        ? 'TG_ERR_UPSTREAM_TIMEOUT'
        : outcome.kind === 'upstream_reset'
          ? 'TG_ERR_UPSTREAM_RESET'
          : 'TG_ERR_UPSTREAM_UNREACHABLE'
    const body = JSON.stringify({
      error: {
        type: 'tollgate_proxy_error',
        code: tollgateCode,
        message: `Tollgate could not complete the call to the upstream: ${redactText(err.message)}${code ? ` (${code})` : ''}`,
      },
    })
    res.writeHead(outcome.kind === 'timeout' ? 504 : 502, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-tollgate-error': tollgateCode,
    })
    res.end(body)
  }

  return {
    forward(req, res, target, hooks) {
      const call: CallState = { hooks, outcome: null, statusCode: 0, finished: false, lastHeardAt: performance.now() }
      ;(req as TrackedRequest)[kCall] = call
      // Registered before http-proxy's own 'close' listener, so a client that
      // leaves is classified before the upstream request is torn down.
      res.on('close', () => {
        if (!res.writableFinished) settle(call, { kind: 'client_aborted' })
        finish(call)
      })
      req.url = target.path
      proxy.web(req, res, optionsFor(target.base), onProxyError)
    },
    passThrough(req, res, target) {
      req.url = target.path
      const options = optionsFor(target.base)
      proxy.web(req, res, options, (err) => {
        applyPendingHead(res)
        if (res.headersSent) return void res.destroy()
        sendError(res, 502, 'TG_ERR_UPSTREAM_UNREACHABLE', `could not reach ${options.target.host}: ${redactText(err.message)}`)
      })
    },
    close() {
      proxy.close()
      httpAgent.destroy()
      httpsAgent.destroy()
    },
  }
}

type ProxyCallOptions = ServerOptions & { target: { protocol: string; host: string; hostname: string; port: number; pathname: string; search: string; href: string } }

/**
 * http-proxy's per-call options for one upstream base. The target is a plain
 * copy of the URL's fields, so http-proxy's setupOutgoing reads properties
 * instead of calling URL getters. For a base without a path or query
 * (`https://api.openai.com`) prependPath is off: http-proxy would otherwise
 * parse the base's "/" into a URL on every call only to join "/" before the
 * request path, which leaves it as it is.
 */
function proxyCallOptions(base: URL, agent: http.Agent): ProxyCallOptions {
  const { protocol, host, hostname, pathname, search, href } = base
  // A default port is '' on a URL; http-proxy turns either into 0 and Node then uses the scheme's port.
  const port = Number(base.port)
  // toProxy: the path goes out as the client sent it (our routes always give
  // origin-form), where http-proxy would otherwise parse it into a URL per
  // call and re-serialise it, percent-encoding bytes the client sent raw.
  return { target: { protocol, host, hostname, port, pathname, search, href }, agent, prependPath: !(pathname === '/' && search === ''), toProxy: true }
}

/** The relay of a response whose head is not written yet (see applyPendingHead). */
const kPendingHead = Symbol('tollgate.pendingHead')
type RelayedResponse = ServerResponse & { [kPendingHead]?: ResponseRelay | undefined }

/**
 * What http-proxy's outgoing passes and its pipe would do with a response, in
 * one writeHead and one 'data' listener: transfer-encoding dropped (Node
 * re-frames the body), `connection` set when the upstream sent none, status
 * line and headers copied (lower-case names, as the upstream's parser gives
 * them), then each chunk written as it arrives with the pipe's backpressure.
 * The head is written with the first chunk (or the end), as the passes'
 * setHeader calls were: until then `res.headersSent` stays false.
 */
function relayResponse(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse, tap: ResponseTap | null, call: CallState | null): void {
  const headers = proxyRes.headers
  delete headers['transfer-encoding']
  if (req.httpVersion === '1.0') headers.connection = req.headers.connection || 'close'
  else if (!headers.connection) headers.connection = req.headers.connection || 'keep-alive'
  if (res.writableEnded) return
  new ResponseRelay(proxyRes, res, tap, !res.headersSent, call)
}

/**
 * Before an error answer on a response whose relay has not written its head
 * yet: sets the upstream's status and headers one by one, as http-proxy's
 * passes did, so the error answer (writeHead with its own headers) comes out
 * as it did with them: the upstream's headers, overridden where the error
 * sets the same name.
 */
function applyPendingHead(res: ServerResponse): void {
  const relay = (res as RelayedResponse)[kPendingHead]
  relay?.applyHeadAsHeaders()
}

/** One response's relay, as an object with bound handlers rather than a closure nest per call. */
class ResponseRelay {
  constructor(
    private readonly proxyRes: IncomingMessage,
    private readonly res: ServerResponse,
    private tap: ResponseTap | null,
    private headPending: boolean,
    private readonly call: CallState | null,
  ) {
    if (headPending) (res as RelayedResponse)[kPendingHead] = this
    proxyRes.on('data', this.onData)
    proxyRes.on('end', this.onEnd)
    if (tap) proxyRes.on('error', this.onError)
  }

  private writeHead(): void {
    this.headPending = false
    ;(this.res as RelayedResponse)[kPendingHead] = undefined
    const { statusCode, statusMessage, headers } = this.proxyRes
    if (statusMessage) this.res.writeHead(statusCode ?? 502, statusMessage, headers)
    else this.res.writeHead(statusCode ?? 502, headers)
  }

  applyHeadAsHeaders(): void {
    if (!this.headPending) return
    this.headPending = false
    ;(this.res as RelayedResponse)[kPendingHead] = undefined
    const res = this.res
    res.statusCode = this.proxyRes.statusCode ?? 502
    if (this.proxyRes.statusMessage) res.statusMessage = this.proxyRes.statusMessage
    for (const [name, value] of Object.entries(this.proxyRes.headers)) if (value !== undefined) res.setHeader(name, value)
  }

  private readonly onData = (chunk: Buffer): void => {
    const arrivedAt = this.tap || this.call ? performance.now() : 0
    if (this.call) this.call.lastHeardAt = arrivedAt
    if (this.headPending && !this.res.destroyed) this.writeHead()
    // Written before the tap reads it: the parse never delays a byte.
    if (!this.res.destroyed && !this.res.write(chunk)) {
      this.proxyRes.pause()
      this.res.once('drain', this.onDrain)
    }
    if (this.tap) {
      try {
        this.tap.onResponseData?.(chunk, arrivedAt)
      } catch (err) {
        // A capture bug must never reach the client: the tap stops, the bytes keep flowing.
        this.tap.onResponseError?.(err instanceof Error ? err : new Error(String(err)))
        this.tap = null
      }
    }
  }

  private readonly onDrain = (): void => {
    this.proxyRes.resume()
  }

  private readonly onEnd = (): void => {
    this.tap?.onResponseEnd?.()
    if (this.headPending && !this.res.destroyed) this.writeHead()
    this.res.end()
  }

  private readonly onError = (err: Error): void => {
    this.tap?.onResponseError?.(err)
  }
}

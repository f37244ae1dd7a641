/** Small HTTP helpers shared by the proxy and the collector servers. */
import type { ServerResponse } from 'node:http'

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** `{ error: { code, message } }`, the one error shape of both servers. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, extra: object = {}): void {
  sendJson(res, status, { error: { code, message, ...extra } })
}

/** `http://host:port` for a bound address, bracketing IPv6. */
export function formatHostPort(address: string, port: number): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`
}

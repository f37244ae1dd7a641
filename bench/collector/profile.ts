/**
 * Reads a V8 .cpuprofile (node --cpu-prof, the collector's main thread) and
 * says where the time went: self time by function, inclusive time of the
 * ingest path's stages, and a coarse split by stage. chDB's own threads and
 * libuv's fsync threads are not in a main-thread profile; the ingest bench
 * reports their CPU from /proc per thread.
 *
 * `node bin/run-ts.mjs bench/collector/profile.ts <file.cpuprofile>`
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface ProfileSummary {
  file: string
  totalMs: number
  idleMs: number
  /** Busy main-thread ms by stage (first matching frame from the leaf up). */
  stages: { stage: string; ms: number; share: number }[]
  /** Top functions by self time. */
  self: { fn: string; ms: number; share: number }[]
}

/** Stages of the ingest path, matched on a frame's url and function name (innermost match wins). */
const STAGES: { stage: string; test: (f: CallFrame) => boolean }[] = [
  { stage: 'validate (zod)', test: (f) => f.url.includes('/zod/') || f.url.endsWith('collector/validate.ts') },
  { stage: 'JSON.parse of the body', test: (f) => f.functionName === 'parse' && f.url === '' },
  { stage: 'spanToRow (JSON.stringify)', test: (f) => f.functionName === 'spanToRow' || (f.functionName === 'stringify' && f.url === '') },
  { stage: 'dedup (LRU, pending map)', test: (f) => f.url.includes('/lru-cache/') },
  { stage: 'spool (write, fsync, checkpoint)', test: (f) => f.url.endsWith('collector/spool.ts') },
  { stage: 'batcher', test: (f) => f.url.endsWith('collector/batcher.ts') },
  { stage: 'insert (@clickhouse/client, chdb binding)', test: (f) => f.url.includes('/@clickhouse/') || f.url.includes('/chdb/') || f.url.endsWith('collector/store.ts') },
  { stage: 'accept / routing (server.ts)', test: (f) => f.url.endsWith('collector/server.ts') },
  { stage: 'HTTP (node:http, net, streams)', test: (f) => /^node:(_http|http|net|stream|internal\/streams|_stream|internal\/http)/.test(f.url) || f.url.startsWith('node:internal/streams') },
  { stage: 'metrics (prom-client)', test: (f) => f.url.includes('/prom-client/') },
  { stage: 'GC', test: (f) => f.functionName === '(garbage collector)' },
]

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const selfUs = new Map<number, number>()
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)))

  let total = 0
  let idle = 0
  const stageUs = new Map<string, number>()
  const fnUs = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (!node) continue
    total += us
    const name = node.callFrame.functionName
    if (name === '(idle)') {
      idle += us
      continue
    }
    const key = `${name || '(anonymous)'} ${shortUrl(node.callFrame.url)}`.trim()
    fnUs.set(key, (fnUs.get(key) ?? 0) + us)
    let stage = 'other'
    for (let cur: number | undefined = id, depth = 0; cur !== undefined && depth < 400; cur = parent.get(cur), depth++) {
      const frame = byId.get(cur)?.callFrame
      if (!frame) break
      const hit = STAGES.find((s) => s.test(frame))
      if (hit) {
        stage = hit.stage
        break
      }
    }
    if (stage === 'other' && name === '(program)') stage = '(program: V8/native, unattributed)'
    stageUs.set(stage, (stageUs.get(stage) ?? 0) + us)
  }
  const busy = total - idle
  const share = (us: number): number => Math.round((us / Math.max(busy, 1)) * 1000) / 10
  return {
    file,
    totalMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    stages: [...stageUs.entries()].sort((a, b) => b[1] - a[1]).map(([stage, us]) => ({ stage, ms: Math.round(us / 1000), share: share(us) })),
    self: [...fnUs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: Math.round(us / 1000), share: share(us) })),
  }
}

function shortUrl(url: string): string {
  if (!url) return ''
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 13).replace(/^(@[^/]+\/[^/]+|[^/]+)\/.*\/([^/]+)$/, '$1…/$2')
  const m = /\/(collector|lib|cli|proxy)\/(.+)$/.exec(url)
  return m ? `${m[1]}/${m[2]}` : url.replace(/^file:\/\//, '')
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [`main-thread profile ${s.file}: ${s.totalMs} ms sampled, ${s.idleMs} ms idle, ${s.totalMs - s.idleMs} ms busy`, '  busy time by stage (innermost matching frame):']
  for (const st of s.stages) lines.push(`    ${String(st.share).padStart(5)} %  ${String(st.ms).padStart(6)} ms  ${st.stage}`)
  lines.push('  top functions by self time:')
  for (const f of s.self) lines.push(`    ${String(f.share).padStart(5)} %  ${String(f.ms).padStart(6)} ms  ${f.fn}`)
  return lines.join('\n')
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (!file) {
    console.error('usage: profile.ts <file.cpuprofile>')
    process.exit(2)
  }
  console.log(formatProfile(summarizeProfile(file, 25)))
}

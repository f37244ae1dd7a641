/**
 * Forward mode's cost over reverse mode, same run, same machine, loopback only
 * (`npm run bench:forward`). One Tollgate process (all-in-one) and one mock
 * upstream process; the load generator is this process, one thread.
 *
 * - handshake: a new client connection per request (CONNECT + TLS with a
 *   cached leaf) against reverse mode's new plain connection per request;
 * - added latency: 1 keep-alive connection, sequential requests, forward
 *   (through the TLS tunnel) minus reverse, p50 and p99;
 * - throughput: 32 keep-alive connections, closed loop, for a fixed time.
 * Median of 3 rounds. Target: added p50 ≤ 0.5 ms after the first connection.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, freemem, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Agent, ProxyAgent, request } from 'undici'

const ROOT = new URL('../', import.meta.url).pathname
const QUICK = process.env.BENCH_QUICK === '1'
const ROUNDS = QUICK ? 1 : 3
const SEQUENTIAL = QUICK ? 300 : 2000
const HANDSHAKES = QUICK ? 50 : 300
const THROUGHPUT_MS = QUICK ? 2000 : 5000
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })

const children: ChildProcess[] = []
const cleanup = (): void => {
  for (const c of children) c.kill('SIGKILL')
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ proc: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(proc)
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start: ${out}`)), 60_000)
    proc.stdout.on('data', (d: Buffer) => {
      out += d
      const m = ready.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ proc, line: m[0] })
      }
    })
    proc.stderr.on('data', (d: Buffer) => (out += d))
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)))
  })
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

async function timed(n: number, dispatcher: Agent | ProxyAgent, url: string): Promise<{ p50: number; p99: number }> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const res = await request(url, { method: 'POST', body: BODY, dispatcher, headers: { 'content-type': 'application/json' } })
    await res.body.text()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return { p50: percentile(times, 50), p99: percentile(times, 99) }
}

async function throughput(makeDispatcher: () => Agent | ProxyAgent, url: string): Promise<number> {
  const dispatcher = makeDispatcher()
  const deadline = performance.now() + THROUGHPUT_MS
  let done = 0
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < deadline) {
        const res = await request(url, { method: 'POST', body: BODY, dispatcher, headers: { 'content-type': 'application/json' } })
        await res.body.text()
        done++
      }
    }),
  )
  await dispatcher.close()
  return done / (THROUGHPUT_MS / 1000)
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-forward-'))
  try {
    const mock = await start(['bin/run-ts.mjs', 'test/helpers/mock-upstream-main.ts'], { MOCK_PORT: '0' }, /listening (http:\/\/\S+)/)
    const mockUrl = /listening (\S+)/.exec(mock.line)![1]!
    writeFileSync(join(dataDir, 'tollgate.config.json'), '{}')
    const tg = await start(
      ['bin/tollgate.mjs', 'start'],
      { TOLLGATE_PROXY_PORT: '0', TOLLGATE_UI_PORT: '0', TOLLGATE_DATA_DIR: dataDir, TOLLGATE_LOG_LEVEL: 'warn', TOLLGATE_UPSTREAM_OPENAI: mockUrl, TOLLGATE_CONFIG: join(dataDir, 'tollgate.config.json') },
      /Tollgate proxy:\s+(http:\/\/\S+)/,
    )
    const proxyUrl = /(http:\/\/\S+)/.exec(tg.line)![1]!
    const ca = readFileSync(join(dataDir, 'ca', 'ca.pem'), 'utf8')
    const reverseUrl = `${proxyUrl}/openai/v1/chat/completions`
    const forwardUrl = 'https://api.openai.com/v1/chat/completions'
    const keepAliveReverse = () => new Agent({ connections: 64 })
    const keepAliveForward = () => new ProxyAgent({ uri: proxyUrl, requestTls: { ca }, connections: 64 })
    // Fresh connection per request: pipelining 0 and a keep-alive timeout of 1 ms close each one after use.
    const fresh = { keepAliveTimeout: 1, keepAliveMaxTimeout: 1, pipelining: 0 }

    // Warm-up: JIT, the leaf certificate, the pools.
    for (const [make, url] of [[keepAliveReverse, reverseUrl], [keepAliveForward, forwardUrl]] as const) {
      const d = make()
      await timed(300, d, url)
      await d.close()
    }

    const rounds: { seqReverse: { p50: number; p99: number }; seqForward: { p50: number; p99: number }; hsReverse: { p50: number; p99: number }; hsForward: { p50: number; p99: number }; rpsReverse: number; rpsForward: number }[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const rev = keepAliveReverse()
      const fwd = keepAliveForward()
      await timed(50, rev, reverseUrl)
      await timed(50, fwd, forwardUrl)
      const seqReverse = await timed(SEQUENTIAL, rev, reverseUrl)
      const seqForward = await timed(SEQUENTIAL, fwd, forwardUrl)
      await rev.close()
      await fwd.close()
      const hsRevAgent = new Agent(fresh)
      const hsFwdAgent = new ProxyAgent({ uri: proxyUrl, requestTls: { ca }, ...fresh })
      const hsReverse = await timed(HANDSHAKES, hsRevAgent, reverseUrl)
      const hsForward = await timed(HANDSHAKES, hsFwdAgent, forwardUrl)
      await hsRevAgent.close()
      await hsFwdAgent.close()
      const rpsReverse = await throughput(keepAliveReverse, reverseUrl)
      const rpsForward = await throughput(keepAliveForward, forwardUrl)
      rounds.push({ seqReverse, seqForward, hsReverse, hsForward, rpsReverse, rpsForward })
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`)
    }

    const m = (pick: (x: (typeof rounds)[number]) => number): number => Math.round(median(rounds.map(pick)) * 1000) / 1000
    const result = {
      date: new Date().toISOString(),
      machine: { nproc: cpus().length, totalMemoryBytes: totalmem(), freeMemoryBytes: freemem(), node: process.version, loadavg: readFileSync('/proc/loadavg', 'utf8').trim() },
      aggregation: `median of ${ROUNDS} rounds; added = forward − reverse of the same round`,
      sequential_keepalive_ms: {
        reverse: { p50: m((x) => x.seqReverse.p50), p99: m((x) => x.seqReverse.p99) },
        forward: { p50: m((x) => x.seqForward.p50), p99: m((x) => x.seqForward.p99) },
        added: { p50: m((x) => x.seqForward.p50 - x.seqReverse.p50), p99: m((x) => x.seqForward.p99 - x.seqReverse.p99) },
      },
      new_connection_per_request_ms: {
        reverse: { p50: m((x) => x.hsReverse.p50), p99: m((x) => x.hsReverse.p99) },
        forward_connect_tls_cached_leaf: { p50: m((x) => x.hsForward.p50), p99: m((x) => x.hsForward.p99) },
        handshake_cost: { p50: m((x) => x.hsForward.p50 - x.hsReverse.p50), p99: m((x) => x.hsForward.p99 - x.hsReverse.p99) },
      },
      throughput_32_keepalive_rps: { reverse: m((x) => x.rpsReverse), forward: m((x) => x.rpsForward), ratio: m((x) => x.rpsForward / x.rpsReverse) },
    }
    const target = result.sequential_keepalive_ms.added.p50 <= 0.5
    console.log(JSON.stringify(result, null, 2))
    console.log(`target: forward-mode added p50 over reverse ≤ 0.5 ms after the first connection: ${result.sequential_keepalive_ms.added.p50} ms → ${target ? 'PASS' : 'FAIL'}`)
    writeFileSync(join(ROOT, 'bench', 'results', 'forward.json'), JSON.stringify({ ...result, target_pass: target }, null, 2))
  } finally {
    cleanup()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)

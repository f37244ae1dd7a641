/**
 * `npm run bench:collector`: the collector's ingest and query benchmarks
 * (bench/README.md, "Collector"). Tables to stdout, progress to stderr, every
 * number (per round) and the machine to bench/results/collector.json.
 *
 * BENCH_QUICK=1            smoke run: 200k spans, short windows, few repetitions
 * BENCH_FRESH=1            reload the cached query data set
 * BENCH_SKIP_INGEST=1 / BENCH_SKIP_QUERY=1   one half only
 * BENCH_INGEST_CASES='1000×8|100×8'   only these ingest cases (names as printed)
 * BENCH_CPU_PROF=<dir>     always profile one ingest case (otherwise only when the target is missed)
 * BENCH_PROTOTYPES=1      also measure the prototype fixes in bench/collector/prototypes/*.patch (prototypes.ts;
 *                          the earlier ones, a fast validation path and chDB's raw insert, are now in the product)
 * BENCH_COLLECTOR_PROTO=<dir>[,<dir>…]  also measure the collector of other patched copies of the repo
 *                          (same run, same client config as the headline case 1000×8)
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QUICK, ROOT, installTeardown, log, machineInfo, median, round, stopAll, table, uptimeLine, type MachineInfo } from './common.ts'
import { newestProfile, runIngestCase, runSinkCeiling, type IngestCase, type IngestResult, type SinkResult, type Timing } from './ingest.ts'
import { defaultDatasetDir, ensureDataset, type DatasetMeta } from './load-10m.ts'
import { formatProfile, summarizeProfile, type ProfileSummary } from './profile.ts'
import { buildPrototypes } from './prototypes.ts'
import { TARGET_P95_MS, runQueries, type QueryRun } from './query.ts'

const INGEST_TARGET = 50_000
/** loadOverview's requests: two summaries, spend by model, the seven ungrouped series. */
const OVERVIEW_CALLS = 4

interface CaseSummary {
  name: string
  rounds: number
  ackedPerS: number
  storedPerS: number
  postP50: number
  postP99: number
  rssIdleMiB: number
  rssPeakMiB: number
  rssAfterMiB: number
  collectorCores: number
  cpuUsPerSpan: number
  mainThreadUsPerSpan: number
  failures: number
  storedMatches: boolean
}

function summarizeCase(name: string, rounds: IngestResult[]): CaseSummary {
  const m = (f: (r: IngestResult) => number): number => median(rounds.map(f))
  const main = (r: IngestResult): number => ((r.threads['main (JS event loop)'] ?? Number.NaN) * 1e6) / Math.max(1, r.ackedPerS * windowS(r))
  return {
    name,
    rounds: rounds.length,
    ackedPerS: m((r) => r.ackedPerS),
    storedPerS: m((r) => r.storedPerS),
    postP50: m((r) => r.postP50),
    postP99: m((r) => r.postP99),
    rssIdleMiB: m((r) => r.rssIdleMiB),
    rssPeakMiB: m((r) => r.rssPeakMiB),
    rssAfterMiB: m((r) => r.rssAfterMiB),
    collectorCores: m((r) => r.collectorCores),
    cpuUsPerSpan: m((r) => r.cpuMsPer1kSpans),
    mainThreadUsPerSpan: m(main),
    failures: rounds.reduce((s, r) => s + r.failures, 0),
    storedMatches: rounds.every((r) => r.storedMatches),
  }
}

let timing: Timing = { warmupS: 5, measureS: 20 }
function windowS(_r: IngestResult): number {
  return timing.measureS
}

async function main(): Promise<void> {
  installTeardown(QUICK ? 25 * 60_000 : 150 * 60_000)
  const machine: MachineInfo = machineInfo()
  const loads: { phase: string; uptime: string }[] = [{ phase: 'start', uptime: uptimeLine() }]
  log(`machine: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memTotalGiB} GiB, node ${machine.node}, chDB ${machine.chdb}; ${machine.uptime}`)
  timing = QUICK ? { warmupS: 2, measureS: 5 } : { warmupS: 5, measureS: 20 }
  const sinkTiming: Timing = QUICK ? { warmupS: 1, measureS: 3 } : { warmupS: 2, measureS: 5 }
  const rounds = QUICK ? 1 : 2

  // ------------------------------------------------------------ ingest
  const sinks: SinkResult[] = []
  const ingest: Record<string, IngestResult[]> = {}
  const cases: IngestCase[] = QUICK
    ? [
        { name: '1000×8', postBatch: 1000, concurrency: 8, launcher: 'cli' },
        { name: '1000×8, maxBatchRows 50k', postBatch: 1000, concurrency: 8, launcher: 'bench', maxBatchRows: 50_000 },
      ]
    : [
        { name: '1000×2', postBatch: 1000, concurrency: 2, launcher: 'cli' },
        { name: '1000×8', postBatch: 1000, concurrency: 8, launcher: 'cli' },
        { name: '1000×32', postBatch: 1000, concurrency: 32, launcher: 'cli' },
        { name: '100×8', postBatch: 100, concurrency: 8, launcher: 'cli' },
        { name: '5000×8', postBatch: 5000, concurrency: 8, launcher: 'cli' },
        { name: '1000×8, maxBatchRows 10k (bench launcher)', postBatch: 1000, concurrency: 8, launcher: 'bench', maxBatchRows: 10_000 },
        { name: '1000×8, maxBatchRows 50k', postBatch: 1000, concurrency: 8, launcher: 'bench', maxBatchRows: 50_000 },
        { name: '1000×8, maxBatchRows 100k, flush 2 s', postBatch: 1000, concurrency: 8, launcher: 'bench', maxBatchRows: 100_000, flushIntervalMs: 2000 },
      ]
  const only = (process.env.BENCH_INGEST_CASES ?? '').split('|').filter(Boolean)
  if (only.length) cases.splice(0, cases.length, ...cases.filter((c) => only.includes(c.name)))
  for (const proto of (process.env.BENCH_COLLECTOR_PROTO ?? '').split(',').filter(Boolean)) {
    cases.push({ name: `1000×8, prototype ${proto}`, postBatch: 1000, concurrency: 8, launcher: 'cli', root: proto })
  }
  if (process.env.BENCH_PROTOTYPES === '1' && process.env.BENCH_SKIP_INGEST !== '1') {
    for (const p of buildPrototypes()) cases.push({ name: `1000×8, prototype ${p.name}`, postBatch: 1000, concurrency: 8, launcher: 'cli', root: p.root })
  }
  let profile: ProfileSummary | null = null
  if (process.env.BENCH_SKIP_INGEST !== '1') {
    const clientConfigs = [...new Map(cases.map((c) => [`${c.postBatch}×${c.concurrency}`, c])).values()]
    for (const c of clientConfigs) {
      log(`generator ceiling: ${c.postBatch}×${c.concurrency} against the trivial sink`)
      sinks.push(await runSinkCeiling(c.postBatch, c.concurrency, sinkTiming))
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? cases : [...cases].reverse()
      for (const c of order) {
        log(`ingest round ${r + 1}/${rounds}: ${c.name} (${timing.warmupS} s warm-up + ${timing.measureS} s)`)
        const res = await runIngestCase(c, timing)
        ;(ingest[c.name] ??= []).push(res)
        log(`  acked ${Math.round(res.ackedPerS)}/s, stored ${Math.round(res.storedPerS)}/s, p99 ${Math.round(res.postP99)} ms, RSS peak ${Math.round(res.rssPeakMiB)} MiB, ${round(res.cpuMsPer1kSpans, 1)} µs CPU/span; ${uptimeLine()}`)
      }
    }
    loads.push({ phase: 'after ingest', uptime: uptimeLine() })
    const best = Object.entries(ingest)
      .map(([name, rs]) => summarizeCase(name, rs))
      .sort((a, b) => b.storedPerS - a.storedPerS)[0]
    const profDir = process.env.BENCH_CPU_PROF
    if (profDir || (best && best.storedPerS < INGEST_TARGET)) {
      const dir = profDir ?? mkdtempSync(join(tmpdir(), 'tollgate-bench-prof-'))
      mkdirSync(dir, { recursive: true })
      log(`profiling the collector (--cpu-prof into ${dir}) under 1000×8`)
      const res = await runIngestCase({ name: '1000×8 (profiled)', postBatch: 1000, concurrency: 8, launcher: 'cli' }, timing, { cpuProfDir: dir })
      const file = newestProfile(dir)
      if (file) {
        profile = summarizeProfile(file, 20)
        res.profile = file
      }
      ingest['1000×8 (profiled, --cpu-prof)'] = [res]
    }
  }

  // ------------------------------------------------------------ queries
  const count = Number(process.env.BENCH_SPANS ?? (QUICK ? 200_000 : 10_000_000))
  let dataset: { meta: DatasetMeta; reused: boolean } | null = null
  const queryRuns: QueryRun[] = []
  if (process.env.BENCH_SKIP_QUERY !== '1') {
    const dir = process.env.BENCH_DATA_DIR ?? defaultDatasetDir(count)
    dataset = await ensureDataset({ dir, count, method: process.env.BENCH_LOAD_VIA === 'http' ? 'http' : 'direct', fresh: process.env.BENCH_FRESH === '1' })
    loads.push({ phase: 'after data set', uptime: uptimeLine() })
    for (const threads of [1, 2]) {
      queryRuns.push(
        await runQueries({
          dataDir: dir,
          meta: dataset.meta,
          threads,
          reps: QUICK ? 5 : 30,
          warmup: QUICK ? 1 : 2,
          budgetPerCallS: QUICK ? 10 : 60,
        }),
      )
      loads.push({ phase: `after queries (${threads} thread${threads > 1 ? 's' : ''})`, uptime: uptimeLine() })
    }
  }

  // ------------------------------------------------------------ report
  const out: string[] = []
  out.push(`Tollgate collector benchmark — ${machine.date}${QUICK ? ' (BENCH_QUICK: smoke run, numbers not meaningful)' : ''}`)
  out.push(`machine: ${machine.nproc} cores ${machine.cpuModel}, ${machine.memTotalGiB} GiB, node ${machine.node}, chDB ${machine.chdb}, kernel ${machine.kernel}`)
  for (const l of loads) out.push(`  uptime ${l.phase.padEnd(24)} ${l.uptime}`)
  out.push('')
  const summaries = Object.entries(ingest).map(([name, rs]) => summarizeCase(name, rs))
  if (sinks.length > 0) {
    out.push(`Load generator ceiling (this process, one thread; against a trivial Node sink that reads each body and answers 200; ${sinkTiming.measureS} s after ${sinkTiming.warmupS} s):`)
    out.push(table(['batch×senders', 'spans/s', 'POST p50 ms', 'POST p99 ms', 'generator cores'], sinks.map((s) => [`${s.postBatch}×${s.concurrency}`, s.ackedPerS, s.p50, s.p99, s.generatorCores])))
    out.push('')
    out.push(`Ingest: POST /v1/spans → spool (fsync) → batcher → chDB; ${timing.measureS} s after ${timing.warmupS} s warm-up, median of ${rounds} round${rounds > 1 ? 's' : ''}:`)
    out.push(
      table(
        ['case (batch×senders)', 'acked/s', 'stored/s', 'vs ceiling', 'p50 ms', 'p99 ms', 'RSS idle', 'RSS peak', 'RSS after', 'cores', 'CPU µs/span', 'main µs/span', 'ok'],
        summaries.map((s) => {
          const [b, c] = s.name.split(/[×,( ]/).filter(Boolean)
          const ceiling = sinks.find((k) => `${k.postBatch}` === b && `${k.concurrency}` === c)?.ackedPerS ?? Number.NaN
          return [s.name, s.ackedPerS, s.storedPerS, round(s.ackedPerS / ceiling, 2), s.postP50, s.postP99, s.rssIdleMiB, s.rssPeakMiB, s.rssAfterMiB, s.collectorCores, s.cpuUsPerSpan, s.mainThreadUsPerSpan, s.storedMatches && s.failures === 0 ? 'yes' : `fail ${s.failures}`]
        }),
      ),
    )
    out.push('  acked/s: spans in 200 answers inside the window. stored/s: ClickHouse count (GET /api/summary) growth from the window start until every')
    out.push('  acknowledged span was counted. RSS in MiB (VmRSS). cores: collector CPU (all threads) ÷ window. CPU µs/span: all collector threads;')
    out.push('  main µs/span: the JS thread alone — 1e6 ÷ that is the most one collector can take if that thread had a core to itself.')
    const best = [...summaries].sort((a, b) => b.storedPerS - a.storedPerS)[0]
    if (best) {
      const firstRound = ingest[best.name]?.[0]
      if (firstRound) out.push(`  CPU seconds by collector thread in "${best.name}" (round 1): ${JSON.stringify(firstRound.threads)}`)
    }
    out.push('')
    if (profile) {
      out.push(formatProfile(profile))
      out.push('')
    }
  }
  if (dataset) {
    const m = dataset.meta
    out.push(`Query data set: ${m.count.toLocaleString('en-US')} spans over 30 days, loaded via ${m.method} in ${m.loadSeconds} s (${m.rowsPerS.toLocaleString('en-US')}/s)${dataset.reused ? ' (cached from an earlier run)' : ''}, ${m.loadedAt}`)
    out.push(`  ${m.tables.map((t) => `${t.table}: ${t.rows.toLocaleString('en-US')} rows, ${t.parts} parts, ${round(t.bytesOnDisk / 2 ** 20, 0)} MiB`).join('; ')}`)
    const one = queryRuns.find((q) => q.threads === 1)
    const two = queryRuns.find((q) => q.threads === 2)
    if (one) {
      out.push(`Queries, one at a time, ${one.calls[0]?.n ?? 0} timed runs each after ${QUICK ? 1 : 2} warm-up (fewer for calls over the time budget); ms; target p95 ≤ ${TARGET_P95_MS} ms:`)
      out.push(
        table(
          ['window', 'call', 'n', 'p50', 'p95', 'max', 'p95 ≤ 300', 'p50 (2 thr)', 'p95 (2 thr)', 'KiB'],
          one.calls.map((c) => {
            const t2 = two?.calls.find((x) => x.name === c.name && x.window === c.window)
            return [c.window, `${c.name}${c.target === 'info' ? '' : c.target === 'overview' ? ' [overview]' : ' [issue]'}`, String(c.n), c.p50, c.p95, c.max, c.pass ? 'PASS' : 'FAIL', t2?.p50 ?? Number.NaN, t2?.p95 ?? Number.NaN, round(c.bytes / 1024, 1)]
          }),
        ),
      )
      out.push('  [issue]: named in the issue\'s query target; [overview]: one of the dashboard Overview\'s calls. "2 thr": max_threads=2 through the bench launcher')
      out.push('  (the product caps embedded chDB at max_threads=1 and has no setting for it).')
      out.push(`Overview page (its ${OVERVIEW_CALLS} calls at once, as dashboard/src/lib/loaders.ts sends them; the embedded store answers them one by one), until the last answer:`)
      out.push(
        table(
          ['window', 'threads', 'n', 'p50', 'p95', 'max', 'p95 ≤ 300'],
          queryRuns.flatMap((q) => q.overview.map((o) => [o.window, String(q.threads), String(o.n), o.p50, o.p95, o.max, o.pass ? 'PASS' : 'FAIL'])),
        ),
      )
      out.push(
        `Collector on the data set: ${queryRuns.map((q) => `${q.threads} thread${q.threads > 1 ? 's' : ''}: start ${q.startupS} s, RSS after start ${round(q.rssAfterStartMiB, 0)} MiB, peak ${round(q.rssPeakMiB, 0)} MiB, end ${round(q.rssEndMiB, 0)} MiB, CPU ${q.collectorCpuS} s over ${q.wallS} s`).join('; ')}`,
      )
    }
    out.push('')
  }
  // Targets
  out.push('Targets:')
  const byStored = (a: CaseSummary, b: CaseSummary): number => b.storedPerS - a.storedPerS
  const bestIngest = summaries.filter((s) => !s.name.includes('profiled') && !s.name.includes('prototype')).sort(byStored)[0]
  if (bestIngest) out.push(`  ingest ≥ ${INGEST_TARGET.toLocaleString('en-US')} spans/s stored (the product): ${bestIngest.storedPerS >= INGEST_TARGET ? 'PASS' : 'FAIL'} (best: ${Math.round(bestIngest.storedPerS).toLocaleString('en-US')}/s stored, ${Math.round(bestIngest.ackedPerS).toLocaleString('en-US')}/s acked, "${bestIngest.name}")`)
  const bestProto = summaries.filter((s) => s.name.includes('prototype')).sort(byStored)[0]
  if (bestProto) out.push(`  (best prototype: ${Math.round(bestProto.storedPerS).toLocaleString('en-US')}/s stored, ${Math.round(bestProto.ackedPerS).toLocaleString('en-US')}/s acked, "${bestProto.name}")`)
  const one = queryRuns.find((q) => q.threads === 1)
  if (one) {
    const perUser = (c: { name: string }) => c.name.includes('group_by=user') || c.name.includes('by user')
    const issue30 = one.calls.filter((c) => c.window === '30d' && c.target === 'issue')
    const failing = issue30.filter((c) => !c.pass)
    out.push(`  /api/summary and /api/timeseries, 30 days, p95 ≤ ${TARGET_P95_MS} ms (product default max_threads=1): ${failing.length === 0 ? 'PASS' : `FAIL (${failing.map((c) => `${c.name} ${Math.round(c.p95)} ms`).join(', ')})`}`)
    const others = issue30.filter((c) => !perUser(c))
    out.push(`  the same without the per-user calls: ${others.every((c) => c.pass) ? 'PASS' : 'FAIL'}`)
    const users = one.calls.filter(perUser)
    out.push(`  per-user calls: ${users.map((c) => `${c.name} ${c.window} p95 ${Math.round(c.p95)} ms ${c.pass ? 'PASS' : 'FAIL'}`).join('; ')}`)
    const ov = one.calls.filter((c) => c.window === '30d' && c.target === 'overview')
    out.push(`  the Overview's calls, 30 days, each alone p95 ≤ ${TARGET_P95_MS} ms: ${ov.every((c) => c.pass) ? 'PASS' : `FAIL (${ov.filter((c) => !c.pass).map((c) => c.name).join(', ')})`}; all four at once, until the last answer, p95 ${Math.round(one.overview.find((o) => o.window === '30d')?.p95 ?? Number.NaN)} ms`)
  }
  const text = out.join('\n')
  console.log(text)

  const resultsDir = join(ROOT, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  const file = join(resultsDir, QUICK ? 'collector-quick.json' : 'collector.json')
  const json = `${JSON.stringify({ machine, loads, quick: QUICK, timing, sinks, ingest: { summaries, rounds: ingest }, profile, dataset: dataset?.meta ?? null, queries: queryRuns, report: text }, null, 1)}\n`
  writeFileSync(file, json)
  // Earlier runs stay beside it, so two runs can be compared.
  if (!QUICK) writeFileSync(join(resultsDir, `collector-${machine.date.replace(/[:.]/g, '-')}.json`), json)
  log(`wrote ${file}`)
}

main()
  .then(async () => {
    await stopAll()
    process.exit(0)
  })
  .catch(async (err: unknown) => {
    console.error(err)
    await stopAll()
    process.exit(1)
  })

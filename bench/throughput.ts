/**
 * Saturated throughput: autocannon, closed loop (each connection sends its
 * next request as soon as the previous response ends), in this process — so
 * the load generator is one thread — after a warm-up run on the same
 * connections count. CPU time of the target (and the mock) is read from
 * /proc around the measured run to show where the cycles go.
 */
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { cpuSeconds, machineBusySeconds } from './processes.ts'
import { CHAT_BODY, JSON_HEADERS, type Endpoint } from './latency.ts'

export interface ThroughputOptions {
  connections: number
  warmupSeconds: number
  durationSeconds: number
}

export interface ThroughputResult {
  connections: number
  /** 2xx responses per second over the measured run. */
  rps: number
  requests: number
  /** Non-2xx responses, errors and timeouts together. */
  failures: number
  /** autocannon's latency percentiles under saturation, ms (queueing included; not the proxy's own cost). */
  latencyP50: number
  latencyP99: number
  /** CPU milliseconds per request of each process measured (by name), over the measured run. */
  cpuMsPerRequest: Record<string, number>
  /**
   * CPU use of each process as a share of one core (1 = one core busy).
   * `unattributed` is the machine's busy time not charged to any of these
   * processes: other tenants of the machine, and kernel softirq work.
   */
  cpuCores: Record<string, number>
}

function run(endpoint: Endpoint, connections: number, seconds: number): PromiseLike<autocannon.Result> {
  return autocannon({
    url: `http://${endpoint.host}:${endpoint.port}${endpoint.chatPath}`,
    method: 'POST',
    headers: { ...JSON_HEADERS },
    body: CHAT_BODY,
    connections,
    duration: seconds,
    pipelining: 1,
    timeout: 10,
  })
}

/**
 * `watch`: pids whose CPU time is sampled around the measured run, by display
 * name. Pass every process the bench started, so that only CPU use by
 * strangers counts as `unattributed`.
 */
export async function measureThroughput(
  endpoint: Endpoint,
  options: ThroughputOptions,
  watch: Record<string, number>,
): Promise<ThroughputResult> {
  if (options.warmupSeconds > 0) await run(endpoint, options.connections, options.warmupSeconds)
  const before = Object.fromEntries(Object.entries(watch).map(([name, pid]) => [name, cpuSeconds(pid)]))
  const selfBefore = process.cpuUsage()
  const machineBefore = machineBusySeconds()
  const wallBefore = performance.now()
  const result = await run(endpoint, options.connections, options.durationSeconds)
  const wallSeconds = (performance.now() - wallBefore) / 1000
  const machineUsed = machineBusySeconds() - machineBefore
  const self = process.cpuUsage(selfBefore)
  const requests = result['2xx']
  const seconds = result.duration > 0 ? result.duration : options.durationSeconds
  const cpuMsPerRequest: Record<string, number> = {}
  const cpuCores: Record<string, number> = {}
  let charged = 0
  const charge = (name: string, used: number): void => {
    cpuMsPerRequest[name] = requests > 0 ? (used * 1000) / requests : Number.NaN
    cpuCores[name] = used / wallSeconds
    charged += used
  }
  for (const [name, pid] of Object.entries(watch)) charge(name, cpuSeconds(pid) - (before[name] ?? Number.NaN))
  charge('load generator', (self.user + self.system) / 1e6)
  cpuCores.unattributed = Math.max(0, machineUsed - charged) / wallSeconds
  return {
    connections: options.connections,
    rps: requests / seconds,
    requests,
    failures: result.non2xx + result.errors + result.timeouts,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
    cpuMsPerRequest,
    cpuCores,
  }
}

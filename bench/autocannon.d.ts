/**
 * The part of autocannon 9's API the benchmark uses (the package ships no
 * types). autocannon is CommonJS: `module.exports = run`.
 */
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string
      method?: string
      headers?: Record<string, string>
      body?: string | Buffer
      connections?: number
      /** Seconds. */
      duration?: number
      pipelining?: number
      /** Seconds before a request counts as timed out. */
      timeout?: number
      workers?: number
    }

    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p90: number
      p99: number
    }

    interface Result {
      /** Seconds, two decimals. */
      duration: number
      errors: number
      timeouts: number
      non2xx: number
      resets: number
      '2xx': number
      /** Requests per second, sampled once a second. */
      requests: Histogram & { sent: number }
      /** Milliseconds. */
      latency: Histogram
      /** Bytes per second. */
      throughput: Histogram
      start: Date
      finish: Date
    }

    interface Instance extends PromiseLike<Result> {
      stop(): void
    }
  }

  function autocannon(options: autocannon.Options): autocannon.Instance
  export = autocannon
}

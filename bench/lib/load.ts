/**
 * The benchmarks' one load runner: autocannon against one route for a fixed
 * time, every response's own time kept (autocannon's histogram rounds to
 * whole milliseconds). Run it in a forked client (../forked-client.ts), so
 * the load never shares the server's event loop or its RSS.
 */
import autocannon from 'autocannon'

/** One route's load. */
export interface LoadRun {
  url: string
  path: string
  connections: number
  seconds: number
  /**
   * POST bodies (JSON text), cycled through; none (or empty) = GET. Static
   * requests are rendered once by autocannon; a setupRequest callback would
   * re-render every request and make the client, not the server, the bottleneck.
   */
  bodies?: readonly string[]
}

/** What autocannon counted, and each response's time. */
export interface LoadOutcome {
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  /** The run's length as autocannon measured it. */
  seconds: number
  /** 2xx responses per second. */
  reqPerS: number
  statusCodes: Record<string, number>
  /** Every response's time (ms) in arrival order: for latencySummary (./latency.ts), once no other load runs in this process. */
  times: number[]
}

/**
 * Runs `run` to its end. `onResponse` sees each response's time as it
 * arrives (e.g. to bucket them per minute).
 */
export async function runLoad (run: LoadRun, onResponse?: (ms: number) => void): Promise<LoadOutcome> {
  const times: number[] = []
  let instance!: autocannon.Instance
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({
      url: run.url,
      connections: run.connections,
      duration: run.seconds,
      requests: run.bodies?.length
        ? run.bodies.map((body) => ({ method: 'POST' as const, path: run.path, headers: { 'content-type': 'application/json' }, body }))
        : [{ method: 'GET' as const, path: run.path }]
    }, (err, result) => err ? reject(err) : resolve(result))
  })
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
    times.push(responseTime)
    onResponse?.(responseTime)
  })
  const result = await finished
  const ok = result['2xx']
  return {
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    reqPerS: ok / result.duration,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, (stats as { count: number }).count])),
    times
  }
}

/**
 * One route's load as the forked clients run it (inference, door-state):
 * the job names its bodies, the client builds them from the recordings
 * (./bodies.ts), runs the load (./load.ts) and answers the counts with the
 * latency summary.
 */
import { bodiesFor, type BodySpec } from './bodies.js'
import { latencySummary, type LatencySummary } from './latency.js'
import { runLoad, type LoadOutcome } from './load.js'

/** A load run the client process performs. */
export interface RouteLoadJob {
  url: string
  path: string
  body: BodySpec
  connections: number
  seconds: number
}

/** What the client reports back: autocannon's counts and the responses' latency summary. */
export type RouteLoadResult = Omit<LoadOutcome, 'times'> & LatencySummary

/** Runs `job` (in the forked client: serveJobs's `perform`). */
export async function performRouteLoad (job: RouteLoadJob): Promise<RouteLoadResult> {
  const { times, ...counts } = await runLoad({ url: job.url, path: job.path, connections: job.connections, seconds: job.seconds, bodies: bodiesFor(job.body) })
  return { ...counts, ...latencySummary(times) }
}

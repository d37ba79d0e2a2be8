/**
 * The request bodies the load benchmarks send, built from the recordings as
 * text: the frames are JSON arrays as text already, so they are spliced in
 * as recorded, not re-encoded.
 */
import { rawPiLines, stringifiedPayloads } from './recordings.js'

/** POST /ml/post/inference bodies: `count` of session A's rows, spread evenly over the session, as the original Pis post them. */
export function inferenceBodies (count: number, device: (index: number) => number): string[] {
  const payloads = stringifiedPayloads()
  return Array.from({ length: count }, (_, i) => JSON.stringify({ payload: payloads[Math.floor(i * payloads.length / count)], ID: device(i) }))
}

/** `count` JSON arrays (as text) of `perBatch` consecutive `frames`, each starting where the one before ended (wrapping round). */
export function frameBatches (frames: readonly string[], perBatch: number, count: number): string[] {
  return Array.from({ length: count }, (_, b) => {
    const start = (b * perBatch) % frames.length
    return `[${Array.from({ length: perBatch }, (_, i) => frames[(start + i) % frames.length]).join(',')}]`
  })
}

/** A frames body (POST /server/post/frames, /ml/post/batch) of `device` around one of {@link frameBatches}. */
export function framesBody (device: number, batch: string): string {
  return `{"ID":${device},"frames":${batch}}`
}

/** A keep-alive body (POST /server/post/keep_alive) as a Pi named after its ID sends it. */
export function keepAliveBody (device: number, name = `pi-${device}`): string {
  return JSON.stringify({ NAME: name, ID: device })
}

/** Which bodies a load job sends: the forked client builds them from the recordings. */
export type BodySpec =
  | { kind: 'none' }
  | { kind: 'inference-string', device: number }
  | { kind: 'raw-pi', device: number, frames: number }
  | { kind: 'features', device: number, frames: number }

/** Distinct request bodies a run cycles through. */
export const DISTINCT_BODIES = 64

/** The DISTINCT_BODIES bodies of `spec` (none for GET). */
export function bodiesFor (spec: BodySpec): string[] {
  if (spec.kind === 'none') return []
  if (spec.kind === 'inference-string') return inferenceBodies(DISTINCT_BODIES, () => spec.device)
  const frames = spec.kind === 'raw-pi' ? rawPiLines() : stringifiedPayloads()
  return frameBatches(frames, spec.frames, DISTINCT_BODIES).map((batch) => framesBody(spec.device, batch))
}

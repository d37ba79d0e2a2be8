/**
 * The recordings the benchmarks load, read one way: session A (labelled
 * angles) and the raw Pi frames (another recording, unlabelled), from
 * test/fixtures/csi/ (RECORDINGS_DIR).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RECORDINGS_DIR } from '../../core/project.js'
import { parseFrame } from '../../domain/frames.js'
import { readSessionCsv, type SessionRow } from '../../domain/session-csv.js'
import type { DoorTrainingInput } from '../../ml/door/model-types.js'

export const SESSION_A = join(RECORDINGS_DIR, 'door-angles-session-a.csv')
export const RPI_RAW = join(RECORDINGS_DIR, 'rpi-raw-frames.txt')

/** Session A's rows in file order; throws on a line it cannot read (a bench on part of the session would mislead). */
export function readSessionA (): SessionRow[] {
  const { rows, problems } = readSessionCsv(readFileSync(SESSION_A, 'utf8'))
  if (problems.length) throw new Error(`session A: ${problems[0].reason} (line ${problems[0].line})`)
  return rows
}

/** Session A as training input, in file order. */
export function loadSessionA (): DoorTrainingInput {
  const rows = readSessionA()
  return { frames: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }
}

/** Session A's data lines as the original Pis post them: the stringified list of 106 numbers (its CSV text, unchanged). */
export function stringifiedPayloads (): string[] {
  const lines = readFileSync(SESSION_A, 'utf8').split(/\r?\n/).slice(1).filter((line) => line.trim() !== '')
  return lines.map((line) => `[${line.split(',').slice(1).join(', ')}]`)
}

/** The raw Pi frames of the recording, each the JSON text of its 108-integer array. */
export function rawPiLines (): string[] {
  return readFileSync(RPI_RAW, 'utf8').split('\n').filter((line) => line.trim() !== '')
}

/** The raw Pi frames decoded (one contiguous unlabelled recording). */
export function loadRpiFrames (): Float32Array[] {
  return rawPiLines().map((line) => parseFrame(line))
}

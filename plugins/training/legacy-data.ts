/**
 * The original train request's `DATA`, checked and turned into labelled rows.
 * CSI: `DATA[DATA_TYPE][DOOR_ANGLE][SUB_CARRIER][POINTS]`, DATA_TYPE 0 =
 * phase, 1 = amplitude, 53 subcarriers (CH6 … CH58), angle index i = i × 15°;
 * point p of angle i is one frame. RSSI: `DATA[DOOR_ANGLE][POINTS]`.
 * Every error names the position of the bad value.
 */
import { BadRequestError } from '../../core/errors.js'
import { SUBCARRIERS, FEATURES } from '../../domain/frames.js'
import { legacyAngle, MAX_ANGLE, LEGACY_ANGLE_STEP } from '../../domain/labels.js'

/** One frame (or RSSI reading) and the angle it was recorded at. */
export interface LegacyRow {
  angle: number
  features: Float32Array
}

/** Most angle indices DATA may hold: 0° … 90° in 15° steps. */
export const MAX_LEGACY_ANGLES = MAX_ANGLE / LEGACY_ANGLE_STEP + 1

const CSI_LAYOUT = 'DATA[DATA_TYPE][DOOR_ANGLE][SUB_CARRIER][POINTS]'
const RSSI_LAYOUT = 'DATA[DOOR_ANGLE][POINTS]'

/**
 * Rows of a legacy CSI `DATA`.
 * @throws BadRequestError naming the position that breaks the layout
 */
export function legacyCsiRows (data: unknown): LegacyRow[] {
  const types = listAt(data, 'DATA', CSI_LAYOUT)
  if (types.length !== 2) throw new BadRequestError(`DATA must hold 2 data types (0 = phase, 1 = amplitude) as ${CSI_LAYOUT}, got ${types.length}`)
  const phases = listAt(types[0], 'DATA[0]', CSI_LAYOUT)
  const amplitudes = listAt(types[1], 'DATA[1]', CSI_LAYOUT)
  if (phases.length !== amplitudes.length) {
    throw new BadRequestError(`DATA[0] (phase) holds ${phases.length} door angles but DATA[1] (amplitude) holds ${amplitudes.length}`)
  }
  checkAngleCount(phases.length, 'DATA[0]')
  const rows: LegacyRow[] = []
  for (let a = 0; a < phases.length; a++) {
    const phase = subcarriersAt(phases[a], `DATA[0][${a}]`)
    const amplitude = subcarriersAt(amplitudes[a], `DATA[1][${a}]`)
    const points = phase[0].length
    for (const [type, lists] of [[0, phase], [1, amplitude]] as const) {
      for (let k = 0; k < SUBCARRIERS; k++) {
        if (lists[k].length !== points) {
          throw new BadRequestError(`DATA[${type}][${a}][${k}] holds ${lists[k].length} points but DATA[0][${a}][0] holds ${points}: ` +
            'every subcarrier of an angle needs the same number of points')
        }
      }
    }
    const angle = legacyAngle(a)
    for (let p = 0; p < points; p++) {
      const features = new Float32Array(FEATURES)
      for (let k = 0; k < SUBCARRIERS; k++) {
        features[k] = finiteAt(amplitude[k][p], `DATA[1][${a}][${k}][${p}]`)
        features[SUBCARRIERS + k] = finiteAt(phase[k][p], `DATA[0][${a}][${k}][${p}]`)
      }
      rows.push({ angle, features })
    }
  }
  return rows
}

/**
 * Rows of a legacy RSSI `DATA` (one value each).
 * @throws BadRequestError naming the position that breaks the layout
 */
export function legacyRssiRows (data: unknown): LegacyRow[] {
  const angles = listAt(data, 'DATA', RSSI_LAYOUT)
  checkAngleCount(angles.length, 'DATA')
  const rows: LegacyRow[] = []
  for (let a = 0; a < angles.length; a++) {
    const points = listAt(angles[a], `DATA[${a}]`, RSSI_LAYOUT)
    for (let p = 0; p < points.length; p++) {
      rows.push({ angle: legacyAngle(a), features: Float32Array.of(finiteAt(points[p], `DATA[${a}][${p}]`)) })
    }
  }
  return rows
}

function checkAngleCount (count: number, where: string): void {
  if (count === 0) throw new BadRequestError(`${where} holds no door angles`)
  if (count > MAX_LEGACY_ANGLES) {
    throw new BadRequestError(`${where} holds ${count} door angles; ` +
      `index i means i × ${LEGACY_ANGLE_STEP}°, so at most ${MAX_LEGACY_ANGLES} (0° … ${MAX_ANGLE}°)`)
  }
}

/** The 53 subcarrier lists of one angle. */
function subcarriersAt (value: unknown, where: string): unknown[][] {
  const lists = listAt(value, where, CSI_LAYOUT)
  if (lists.length !== SUBCARRIERS) throw new BadRequestError(`${where} must hold ${SUBCARRIERS} subcarriers (CH6 … CH58), got ${lists.length}`)
  return lists.map((list, k) => listAt(list, `${where}[${k}]`, CSI_LAYOUT))
}

function listAt (value: unknown, where: string, layout: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new BadRequestError(`${where} must be a list (layout ${layout}), got ${value === null ? 'null' : typeof value}: wrong nesting?`)
  }
  return value
}

/** A finite number; numeric strings pass too, as the legacy clients send them at times. */
function finiteAt (value: unknown, where: string): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
  if (typeof number !== 'number' || !Number.isFinite(number)) {
    const got = Array.isArray(value) ? 'a list (wrong nesting?)' : JSON.stringify(value) ?? String(value)
    throw new BadRequestError(`${where} must be a finite number, got ${got}`)
  }
  return number
}

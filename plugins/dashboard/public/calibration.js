// @ts-check
/**
 * A door's calibration in words, shared by its tile and its wizard: the
 * protocol (closed, ajar, fully open), the figures of the last result
 * (balanced accuracy, the ajar self-check) and the reasons it gave.
 */
import { html } from './html.js'
import { percent } from './format.js'

/** @typedef {import('./types').DoorCalibration} DoorCalibration */
/** @typedef {import('./types').CalibrationResult} CalibrationResult */
/** @typedef {import('./types').AjarCheck} AjarCheck */

/** The closed door. */
export const CLOSED_ANGLE = 0

/**
 * The ajar angles offered: every 5° up to the widest the server takes as
 * the ajar position. @param {DoorCalibration['protocol']} protocol
 */
export function ajarAngles (protocol) {
  const angles = []
  for (let angle = 5; angle <= protocol.maxAjarAngle; angle += 5) angles.push(angle)
  return angles
}

/** @param {DoorCalibration} calibration @param {number} angle */
export function capturedAt (calibration, angle) {
  return calibration.captured[String(angle)] ?? 0
}

/** The open angles recorded so far, smallest first. @param {DoorCalibration} calibration */
export function openAngles (calibration) {
  return Object.keys(calibration.captured).map(Number).filter((angle) => angle > CLOSED_ANGLE).sort((a, b) => a - b)
}

/**
 * The calibration was refused because the door cannot tell ajar from closed, and it was not asked to accept that yet.
 * @param {CalibrationResult | null} result
 */
export function refusedBySelfCheck (result) {
  return result !== null && !result.activated && result.selfCheck?.passed === false && !result.gate?.acceptAjarAsClosed
}

/** The figure the floor was applied to (closed-or-ajar against open when ajar was accepted as closed). @param {CalibrationResult} result */
export function gateScore (result) {
  return result.gate?.balancedAccuracy ?? result.doorState.openClosed.balancedAccuracy
}

/** One angle of the self-check in words. @param {AjarCheck} check @param {number} limit */
export function checkWords (check, limit) {
  const how = check.model === 'held-out'
    ? `of its ${check.frames} held-out frames (the end of its recording, through a model trained on the rest)`
    : `of ${check.frames} frames through a model calibrated without it`
  return `${check.angle}° read closed on ${percent(check.closedShare)} ${how}; at most ${percent(limit)} may.`
}

/** A short line of the result's figures, for the tile. @param {CalibrationResult} result */
function figuresLine (result) {
  const accepted = (result.gate?.closedOrAjar.length ?? 0) > 0 && result.gate?.acceptAjarAsClosed
  const score = `Balanced accuracy ${percent(gateScore(result))}${accepted ? ' (closed or ajar against open)' : ''}, needs ${percent(result.floor)}.`
  const selfCheck = result.selfCheck
  if (!selfCheck) return score
  const failed = selfCheck.checks.filter((check) => !check.passed)
  if (failed.length === 0) {
    const readings = selfCheck.checks.map((check) => `${check.angle}° read closed ${percent(check.closedShare)}`).join(', ')
    return `${score} Ajar self-check passed (${readings}).`
  }
  const failures = failed.map((check) => `${check.angle}° read closed on ${percent(check.closedShare)} of its frames`).join(', ')
  return `${score} Ajar self-check failed: ${failures} (at most ${percent(selfCheck.limit)}).`
}

/** What the tile says of the calibration in one line. @param {DoorCalibration} calibration */
function calibrationLine (calibration) {
  const { status, capture, captured, result } = calibration
  if (status === 'capturing' && capture) {
    const wanted = capture.framesWanted === null ? '' : ` of ${capture.framesWanted}`
    return `Calibrating: recording ${capture.angle}°, ${capture.framesStored}${wanted} frames`
  }
  if (status === 'training') return 'Calibrating: training its own model…'
  if (status === 'failed') return result ? 'Last calibration was not activated:' : 'Last calibration could not start:'
  if (status === 'ready') {
    return result?.gate?.acceptAjarAsClosed && result.gate.closedOrAjar.length > 0 ? 'Calibrated, accepted as “closed or ajar”:' : 'Calibrated'
  }
  const angles = Object.keys(captured).length
  return angles > 0 ? `Calibration started (${angles} angle${angles === 1 ? '' : 's'} recorded)` : 'No calibration recorded yet'
}

/**
 * Reasons: the first in full, the rest behind a disclosure; notes on a
 * calibration in use (the door's own reason says the gist) all behind it.
 * @param {{ reasons: string[], notes?: boolean }} props
 */
function ReasonsInBrief ({ reasons, notes = false }) {
  if (notes && reasons.length > 0) {
    return html`
      <details class="more-reasons">
        <summary>${reasons.length === 1 ? 'Note' : `${reasons.length} notes`}</summary>
        <ul>${reasons.map((reason) => html`<li>${reason}</li>`)}</ul>
      </details>`
  }
  const [first, ...rest] = reasons
  if (first === undefined) return null
  return html`
    <p class="calibration-reason">${first}</p>
    ${rest.length > 0 && html`
      <details class="more-reasons">
        <summary>${rest.length} more reason${rest.length === 1 ? '' : 's'}</summary>
        <ul>${rest.map((reason) => html`<li>${reason}</li>`)}</ul>
      </details>`}`
}

/** The door tile's calibration part: where it stands, the last result's reasons and figures. @param {{ calibration: DoorCalibration }} props */
export function CalibrationSummary ({ calibration }) {
  const { status, reasons, result } = calibration
  return html`
    <div class="calibration">
      <p class="calibration-line">${calibrationLine(calibration)}</p>
      ${status !== 'training' && html`<${ReasonsInBrief} reasons=${reasons} notes=${result?.activated === true} />`}
      ${result && (status === 'failed' || status === 'ready') && html`<p class="calibration-figures">${figuresLine(result)}</p>`}
    </div>`
}

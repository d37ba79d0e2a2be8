// @ts-check
/**
 * The calibration wizard of one door (admin): record the door closed, ajar
 * (the smallest opening that must count as open) and fully open, optionally
 * at more angles, then finish: the door's own model trains, the ajar
 * self-check asks whether it can tell ajar from closed, and the result says
 * in words whether it is good enough to be used, and why not.
 * Everything it shows comes from the door's live events (capture counts,
 * time left, training, result); it only starts and stops things.
 */
import { useEffect, useRef, useState } from '../vendor/hooks.js'
import { admin, useAdminAction } from './admin.js'
import { api, HttpError, must } from './api.js'
import {
  ajarAngles, capturedAt, checkWords, CLOSED_ANGLE, gateScore, openAngles, refusedBySelfCheck
} from './calibration.js'
import { html } from './html.js'
import { degreeList, doorName, duration, percent } from './format.js'
import { ConfusionHeatmap } from './heatmap.js'
import { doorsStore, progressStore } from './streams.js'
import { announce, clock, useStore } from './store.js'

/** @typedef {import('./types').Door} Door */
/** @typedef {import('./types').DoorCalibration} DoorCalibration */
/** @typedef {import('./types').CalibrationResult} CalibrationResult */
/** @typedef {'closed' | 'ajar' | 'open' | 'more' | 'training' | 'result'} Step */

/** Optional angles between ajar and fully open. */
const EXTRA_ANGLES = [20, 30, 45, 60, 75]
const STEPS = /** @type {const} */ ([
  ['closed', 'Closed'], ['ajar', 'Ajar'], ['open', 'Open'], ['more', 'Finish'], ['training', 'Training'], ['result', 'Result']
])
/** The width of a common interior door, to say how far an angle opens it. */
const DOOR_WIDTH_CM = 80
/** What step 4 is for. */
const MORE_ANGLES_WORDS = 'Optional: record angles between ajar and fully open, so that it reads the angle in between too. ' +
  'Finishing trains the door\'s model and checks that ajar does not read closed.'
/** What using a calibration that cannot tell ajar from closed means. */
const ACCEPT_ANYWAY_WORDS = 'If the boards cannot be moved, this calibration can still be used: ' +
  'where it would say closed it then says “closed or ajar”, and open stays open. Its tile keeps saying so until the door is calibrated again.'

/** The ajar angle a wizard proposes: the smallest recorded opening the protocol takes as ajar, else its default. @param {DoorCalibration} calibration */
function ajarAngleOf (calibration) {
  const { maxAjarAngle, defaultAjarAngle } = calibration.protocol
  const recorded = openAngles(calibration).find((angle) => angle <= maxAjarAngle)
  const capturing = calibration.capture?.angle
  if (recorded !== undefined) return recorded
  if (capturing !== undefined && capturing > CLOSED_ANGLE && capturing <= maxAjarAngle) return capturing
  return defaultAjarAngle
}

/** Where a wizard opens: at the running capture or training, at the last result, or at the start. @param {Door} door @returns {Step} */
function firstStep (door) {
  const calibration = door.calibration
  const { status, capture } = calibration
  if (status === 'training') return 'training'
  if (capture) {
    if (capture.angle === CLOSED_ANGLE) return 'closed'
    if (capture.angle === calibration.protocol.openAngle) return 'open'
    return capture.angle === ajarAngleOf(calibration) ? 'ajar' : 'more'
  }
  // a refused calibration, or the one in use: its result and reasons first
  if (status === 'failed' || status === 'ready') return 'result'
  return 'closed'
}

/**
 * Of the held-out frames of each true state, the share reported right, and
 * the share reported "unknown", from counts[actual][reported].
 * @param {CalibrationResult} result
 */
function shares (result) {
  const { actual, reported, counts } = result.confusion
  /** @param {string} state @param {string} said */
  const share = (state, said) => {
    const row = counts[actual.indexOf(state)] ?? []
    const total = row.reduce((sum, n) => sum + n, 0)
    const i = reported.indexOf(said)
    return total > 0 && i >= 0 ? (row[i] ?? 0) / total : Number.NaN
  }
  return { closed: share('closed', 'closed'), open: share('open', 'open'), unknown: { closed: share('closed', 'unknown'), open: share('open', 'unknown') } }
}

/** @param {number} share */
const shown = (share) => Number.isNaN(share) ? '–' : percent(share)

/** @param {number} frames @param {number} need */
const missingWords = (frames, need) => frames >= need
  ? ''
  : ` Record ${need - frames} more: each position needs at least ${need} frames (about ${Math.ceil(need / 20)} s at 20 frames/s).`

/** @param {{ device: number, onClose: () => void }} props */
export function CalibrationWizard ({ device, onClose }) {
  const { doors } = useStore(doorsStore)
  const door = doors.get(device)
  const { progress } = useStore(progressStore)
  const now = useStore(clock)
  const dialog = useRef(/** @type {HTMLDialogElement | null} */ (null))
  const [step, setStep] = useState(/** @type {Step} */ (door ? firstStep(door) : 'closed'))
  const { busy, problem, setProblem, act } = useAdminAction()
  // 300 frames, 60 s: comfortably over the 200 a position needs at 20 frames/s
  const [frames, setFrames] = useState(300)
  const [seconds, setSeconds] = useState(60)
  const [ajarAngle, setAjarAngle] = useState(door ? ajarAngleOf(door.calibration) : 15)
  const [extraAngle, setExtraAngle] = useState(45)
  // only wider than ajar: a smaller one would become the ajar position
  const extraAngles = EXTRA_ANGLES.filter((angle) => angle > ajarAngle)
  const chosenExtra = extraAngles.includes(extraAngle) ? extraAngle : extraAngles[0] ?? door?.calibration.protocol.openAngle ?? 90
  const [status, setStatus] = useState('')
  const [confirmForget, setConfirmForget] = useState(false)
  const finishVersion = useRef(/** @type {string | null} */ (null))
  const sawTraining = useRef(false)
  // secondsLeft as last reported, and when it arrived: counted down here, whatever the two clocks say
  const reported = useRef({ secondsLeft: 0, at: 0 })

  useEffect(() => {
    const element = dialog.current
    element?.showModal()
    // opened at a long result, the focus on its first button scrolls it: its headline comes first
    if (element) element.scrollTop = 0
    return () => element?.close()
  }, [])

  const calibration = door?.calibration
  const capture = calibration?.capture ?? null
  if (capture && capture.secondsLeft !== reported.current.secondsLeft) reported.current = { secondsLeft: capture.secondsLeft, at: Date.now() }
  const secondsLeft = capture ? Math.max(0, reported.current.secondsLeft - (now - reported.current.at) / 1000) : 0

  /** @param {string} text */
  const say = (text) => { setStatus(text); announce(text) }

  // the training ends when the door's calibration leaves `training` (or shows this run's result)
  useEffect(() => {
    if (step !== 'training' || !calibration) return
    if (calibration.status === 'training') sawTraining.current = true
    const ours = finishVersion.current !== null && calibration.result?.version === finishVersion.current
    if ((sawTraining.current || ours) && (calibration.status === 'ready' || calibration.status === 'failed')) {
      setStep('result')
      const result = calibration.result
      const closedOrAjarWords = (result?.gate?.closedOrAjar.length ?? 0) > 0 ? ', and it reads “closed or ajar” where it cannot tell the two apart' : ''
      say(result?.activated
        ? `Calibration finished: the door's own model is now active${closedOrAjarWords}.`
        : result?.selfCheck?.passed === false
          ? 'Calibration refused: this door cannot tell ajar from closed. The reasons are listed.'
          : 'Calibration finished, but the model was not activated. The reasons are listed.')
    }
  }, [step, calibration?.status, calibration?.result?.version])

  // a capture that ends says how many frames it kept
  const wasCapturing = useRef(/** @type {number | null} */ (null))
  useEffect(() => {
    if (capture) wasCapturing.current = capture.angle
    else if (wasCapturing.current !== null && calibration) {
      const angle = wasCapturing.current
      wasCapturing.current = null
      const have = capturedAt(calibration, angle)
      say(`Recording at ${angle}° ended: ${have} frames kept for that angle.${missingWords(have, calibration.protocol.framesPerPosition)}`)
    }
  }, [capture === null])

  /** @param {number} angle */
  const record = (angle) => act(async () => {
    const body = { angle, frames, seconds }
    await must(admin.run((headers) => api.POST('/doors/{id}/calibration/capture', { params: { path: { id: device } }, body, headers })))
    say(`Recording at ${angle}°: keep the door still.`)
  })
  const stop = () => act(async () => {
    await must(admin.run((headers) => api.DELETE('/doors/{id}/calibration/capture', { params: { path: { id: device } }, headers })))
  })
  /** @param {boolean} acceptAjarAsClosed activate even though the door cannot tell ajar from closed */
  const finish = (acceptAjarAsClosed) => act(async () => {
    try {
      const body = acceptAjarAsClosed ? { acceptAjarAsClosed: true } : {}
      const accepted = await must(admin.run((headers) => api.POST('/doors/{id}/calibration/finish', { params: { path: { id: device } }, body, headers })))
      finishVersion.current = accepted.version
      sawTraining.current = false
      setStep('training')
      say(acceptAjarAsClosed ? 'Training this door\'s model again, to be used with ajar read as “closed or ajar”…' : 'Training this door\'s model…')
    } catch (err) {
      if (err instanceof HttpError && err.status === 409) {
        const retry = err.retryAfterSeconds ? `; try again in ${duration(err.retryAfterSeconds)}` : ''
        throw new HttpError(409, `This door is training already${retry}.`)
      }
      throw err
    }
  })
  const forget = () => act(async () => {
    await must(admin.run((headers) => api.DELETE('/doors/{id}/calibration', { params: { path: { id: device } }, headers })))
    setConfirmForget(false)
    setStep('closed')
    say('This door\'s calibration and model are forgotten; it uses the shared model again.')
  })
  /** Back to step 1, keeping what was recorded. */
  const again = () => {
    setStep('closed')
    setProblem(null)
    setConfirmForget(false)
  }
  const cancel = async () => {
    if (capture) await act(stop)
    announce(step === 'training' ? 'The training goes on; the door\'s tile shows how it ends.' : 'Calibration closed. Frames recorded so far are kept.')
    onClose()
  }

  const onDialogCancel = (/** @type {Event} */ event) => {
    // Escape: the same as Cancel
    event.preventDefault()
    cancel()
  }

  if (!door || !calibration) {
    return html`<dialog ref=${dialog} class="wizard" aria-labelledby="wizard-title" onCancel=${onDialogCancel}>
      <h2 id="wizard-title">Calibrate door ${device}</h2>
      <p class="problem">This door is gone.</p>
      <div class="actions"><button type="button" onClick=${onClose}>Close</button></div>
    </dialog>`
  }

  // the protocol the server checks at finish: frames per position, the ajar range, fully open
  const { framesPerPosition: need, openAngle, defaultAjarAngle } = calibration.protocol
  const enough = (/** @type {number} */ angle) => capturedAt(calibration, angle) >= need

  /**
   * One recording step: what to do, then the live count or the Record button.
   * @param {number} angle @param {string} title @param {string} what @param {unknown} [options] shown before the controls
   */
  const recordStep = (angle, title, what, options = null) => {
    const recording = capture !== null && capture.angle === angle
    const have = capturedAt(calibration, angle)
    // " of 300" when the recording also stops at a number of frames
    const wantedWords = capture === null || capture.framesWanted === null ? '' : ` of ${capture.framesWanted}`
    const haveWords = have > 0
      ? `${have} frames recorded at ${angle}°.${missingWords(have, need)}`
      : `Nothing recorded at ${angle}° yet: it needs at least ${need} frames.`
    return html`
      <h3>${title}</h3>
      <p>${what}</p>
      ${options}
      ${recording && capture
        ? html`
          <p class="capture-status">
            Recording at ${angle}°: <strong class="frames-stored">${capture.framesStored}</strong>
            ${wantedWords} frames, <span class="seconds-left">${duration(secondsLeft)}</span> left.
          </p>
          <progress max=${capture.framesWanted ?? 1} value=${capture.framesWanted === null ? undefined : capture.framesStored}
            aria-label="Frames recorded"></progress>
          <div class="actions"><button type="button" disabled=${busy} onClick=${stop}>Stop recording</button></div>`
        : html`
          <p class=${`captured${have > 0 && have < need ? ' short' : ''}`}>${haveWords}</p>
          <div class="actions">
            <button type="button" class=${have >= need ? '' : 'primary'} disabled=${busy || capture !== null}
              onClick=${() => record(angle)}>${have > 0 ? 'Record more' : 'Record'}</button>
            ${capture !== null && html`<span class="muted">A recording at ${capture.angle}° is still running.</span>`}
          </div>`}`
  }

  /** "Next" once the position has its frames. @param {number} angle @param {Step} back @param {Step} next @param {string} label */
  const stepActions = (angle, back, next, label) => html`
    <div class="actions">
      ${back !== step && html`<button type="button" onClick=${() => setStep(back)} disabled=${capture !== null}>Back</button>`}
      <button type="button" class="primary" disabled=${!enough(angle) || capture !== null} onClick=${() => setStep(next)}>${label}</button>
    </div>`

  /** One line of the list of what was recorded. @param {number} angle @param {string} name */
  const recordedItem = (angle, name) => html`
    <li class=${enough(angle) ? 'ok' : 'short'}>${name} (${angle}°): ${capturedAt(calibration, angle)} frames${enough(angle) ? '' : ` — needs ${need}`}</li>`

  const result = calibration.result
  const smallerOpen = openAngles(calibration).filter((angle) => angle < ajarAngle)
  // how far the edge of the door stands from its frame at the ajar angle
  const ajarGapCm = Math.round(DOOR_WIDTH_CM * Math.sin(ajarAngle * Math.PI / 180))
  const required = [
    { angle: CLOSED_ANGLE, name: 'closed' },
    { angle: ajarAngle, name: 'ajar' },
    { angle: openAngle, name: 'fully open' }
  ]
  const shortExtras = openAngles(calibration).filter((angle) => angle !== ajarAngle && angle !== openAngle && !enough(angle))
  // the server's rule (domain/labels.ts angleCoverage, with ml/door/calibration.ts's ajar and wider positions), restated: this page imports no server code
  const ready = required.every(({ angle }) => enough(angle))
  const activated = calibration.status === 'ready' && result?.activated === true
  const stepIndex = STEPS.findIndex(([name]) => name === step)
  return html`
    <dialog ref=${dialog} class="wizard" aria-labelledby="wizard-title" onCancel=${onDialogCancel}>
      <h2 id="wizard-title">Calibrate ${doorName(door)} <span class="device-id">ID ${device}</span></h2>
      <ol class="steps">
        ${STEPS.map(([name, label], i) => html`
          <li class=${i < stepIndex ? 'done' : i === stepIndex ? 'current' : ''} aria-current=${i === stepIndex ? 'step' : undefined}>${label}</li>`)}
      </ol>
      <div class="step-body">
        ${step === 'closed' && html`
          ${recordStep(CLOSED_ANGLE, 'Step 1: Close the door, then Record',
            `Shut the door fully and keep out of its way while it records (at least ${need} frames, about ${Math.ceil(need / 20)} s). ` +
            'The Pi beside it must be sending frames.')}
          <details class="options">
            <summary>Recording options</summary>
            <div class="fields">
              <div class="field">
                <label for="wizard-frames">Frames per recording</label>
                <input id="wizard-frames" type="number" min="20" max="100000" value=${frames}
                  onInput=${(/** @type {InputEvent} */ e) => setFrames(Number(/** @type {HTMLInputElement} */ (e.currentTarget).value))} />
              </div>
              <div class="field">
                <label for="wizard-seconds">At most (seconds)</label>
                <input id="wizard-seconds" type="number" min="5" max="3600" value=${seconds}
                  onInput=${(/** @type {InputEvent} */ e) => setSeconds(Number(/** @type {HTMLInputElement} */ (e.currentTarget).value))} />
              </div>
            </div>
            <p class="hint">Each position needs at least ${need} frames in all; a shorter recording can be topped up with Record more.</p>
          </details>
          ${stepActions(CLOSED_ANGLE, 'closed', 'ajar', 'Next: open it a little')}`}
        ${step === 'ajar' && html`
          ${recordStep(ajarAngle, `Step 2: Open it a little (${ajarAngle}°), then Record`,
            'Open the door to the smallest opening that must already count as open and hold it there while it records. ' +
            `At ${ajarAngle}° the edge of an ${DOOR_WIDTH_CM} cm door stands about ${ajarGapCm} cm from the frame. ` +
            'This is how the door learns that ajar is not closed.',
            html`
              <div class="inline-form">
                <label for="wizard-ajar">Ajar angle</label>
                <select id="wizard-ajar" value=${ajarAngle} disabled=${capture !== null}
                  onChange=${(/** @type {Event} */ e) => setAjarAngle(Number(/** @type {HTMLSelectElement} */ (e.currentTarget).value))}>
                  ${ajarAngles(calibration.protocol).map((angle) => html`
                    <option value=${angle}>${angle}°${angle === defaultAjarAngle ? ' (usual)' : ''}</option>`)}
                </select>
              </div>
              ${smallerOpen.length > 0 && html`
                <p class="muted">Also recorded: ${degreeList(smallerOpen)}. The smallest recorded opening is the one checked as ajar.</p>`}`)}
          ${stepActions(ajarAngle, 'closed', 'open', 'Next: open it fully')}`}
        ${step === 'open' && html`
          ${recordStep(openAngle, 'Step 3: Open it fully, then Record', 'Open the door as far as it goes (90°) and leave it there while it records.')}
          ${stepActions(openAngle, 'ajar', 'more', 'Next')}`}
        ${step === 'more' && html`
          <h3>Step 4: More angles (optional), then Finish</h3>
          <ul class="recorded">
            ${required.map(({ angle, name }) => recordedItem(angle, name))}
            ${openAngles(calibration).filter((angle) => angle !== ajarAngle && angle !== openAngle)
              .map((angle) => recordedItem(angle, angle < ajarAngle ? 'ajar, smaller' : 'also'))}
          </ul>
          ${!ready && html`<p class="problem">Record each of closed, ajar and fully open for at least ${need} frames before finishing.</p>`}
          ${shortExtras.length > 0 && html`
            <p class="problem">${degreeList(shortExtras)}: record up to ${need} frames, or the server refuses the calibration.</p>`}
          <p>${MORE_ANGLES_WORDS}</p>
          ${capture
            ? recordStep(capture.angle, `Recording at ${capture.angle}°`, 'Hold the door at that angle.')
            : extraAngles.length > 0 && html`<div class="inline-form">
                <label for="wizard-angle">Angle</label>
                <select id="wizard-angle" value=${chosenExtra}
                  onChange=${(/** @type {Event} */ e) => setExtraAngle(Number(/** @type {HTMLSelectElement} */ (e.currentTarget).value))}>
                  ${extraAngles.map((angle) => html`<option value=${angle}>${angle}°</option>`)}
                </select>
                <button type="button" disabled=${busy} onClick=${() => record(chosenExtra)}>Record at ${chosenExtra}°</button>
              </div>`}
          <div class="actions">
            <button type="button" onClick=${() => setStep('open')} disabled=${capture !== null}>Back</button>
            <button type="button" class="primary finish" disabled=${busy || capture !== null || !ready} onClick=${() => finish(false)}>Finish and train</button>
          </div>`}
        ${step === 'training' && html`
          <h3>Training this door's model</h3>
          ${progress && progress.version === finishVersion.current && progress.epochs > 0
            ? html`
              <p>Epoch ${progress.epoch} of ${progress.epochs}${progress.etaSeconds === undefined ? '' : `, about ${duration(progress.etaSeconds)} left`}.</p>
              <progress max=${progress.epochs} value=${progress.epoch} aria-label="Training progress"></progress>`
            : html`
              <p>It trains, then checks itself on the end of each recording. This takes a few seconds to a minute.</p>
              <progress aria-label="Training"></progress>`}`}
        ${step === 'result' && html`<${ResultView} calibration=${calibration} busy=${busy} onAcceptAnyway=${() => finish(true)} />`}
      </div>
      ${problem && html`<p class="problem" role="alert">${problem}</p>`}
      <p class="wizard-status" role="status">${status}</p>
      <div class="actions wizard-actions">
        ${step === 'result' && activated && html`<button type="button" class="primary" onClick=${onClose}>Done</button>`}
        ${step === 'result' && html`
          <button type="button" class=${activated ? '' : 'primary'} onClick=${again}>${activated ? 'Calibrate again' : 'Retry'}</button>`}
        ${(step === 'result' || (step === 'closed' && Object.keys(calibration.captured).length > 0 && !capture)) && (confirmForget
          ? html`<span>Forget every recorded frame and this door's model?</span>
              <button type="button" class="danger" disabled=${busy} onClick=${forget}>Yes, forget</button>
              <button type="button" onClick=${() => setConfirmForget(false)}>No</button>`
          : html`<button type="button" onClick=${() => setConfirmForget(true)}>Start over…</button>`)}
        ${step !== 'result' && html`<button type="button" class="cancel" onClick=${cancel}>Cancel</button>`}
        ${step === 'result' && html`<button type="button" onClick=${onClose}>Close</button>`}
      </div>
    </dialog>`
}

/**
 * The result in words: the verdict, why (the reasons), the ajar self-check
 * per angle, and what each calibrated angle was read as.
 * @param {{ calibration: DoorCalibration, busy: boolean, onAcceptAnyway: () => void }} props
 */
function ResultView ({ calibration, busy, onAcceptAnyway }) {
  const { result, reasons, status } = calibration
  const activated = status === 'ready' && result?.activated === true
  const reasonList = reasons.length > 0 && html`
    <div class="reasons">
      <p>${activated ? 'Notes:' : result ? 'Why it was not activated:' : 'What to record before it can train:'}</p>
      <ul>${reasons.map((reason) => html`<li>${reason}</li>`)}</ul>
    </div>`
  if (!result) {
    return activated || status === 'ready'
      ? html`<h3>Active: this door uses its own model</h3><p>No figures were kept for this calibration.</p>${reasonList}`
      : html`<h3>The calibration was refused</h3>${reasonList || html`<p>No reason was given.</p>`}`
  }
  const balanced = result.doorState.openClosed.balancedAccuracy
  const { closed, open, unknown } = shares(result)
  const undecided = Math.max(Number.isNaN(unknown.closed) ? 0 : unknown.closed, Number.isNaN(unknown.open) ? 0 : unknown.open)
  // the open angles read as "closed or ajar": only once that was accepted (before, they are simply wrong)
  const closedOrAjar = result.gate?.acceptAjarAsClosed ? result.gate.closedOrAjar : []
  const selfCheck = result.selfCheck
  const headline = activated
    ? closedOrAjar.length > 0 ? 'Active, as “closed or ajar”: this door now uses its own model' : 'Active: this door now uses its own model'
    : selfCheck?.passed === false ? 'Not activated: this door cannot tell ajar from closed' : 'Not activated'
  // with ajar accepted as closed, the score the gate judged too
  const gateWords = closedOrAjar.length > 0 && result.gate?.balancedAccuracy !== null
    ? html`; counting ${degreeList(closedOrAjar)} as “closed or ajar”, <strong class="gate-score">${percent(gateScore(result))}</strong>`
    : ''
  const recognisedWords = 'On frames it had not seen (the end of each recording), ' +
    `it recognised the closed door ${shown(closed)} of the time and the open door ${shown(open)} of the time` +
    (undecided > 0 ? `; the rest of the time it said “unknown” (up to ${percent(undecided)}) or the other state` : '') +
    `. 50% would be guessing; a model is used only from ${percent(result.floor)} up.`
  return html`
    <h3>${headline}</h3>
    ${reasonList}
    ${refusedBySelfCheck(result) && html`
      <div class="accept-anyway">
        <p id="accept-anyway-what">${ACCEPT_ANYWAY_WORDS}</p>
        <button type="button" class="accept" aria-describedby="accept-anyway-what" disabled=${busy}
          onClick=${onAcceptAnyway}>Use it anyway: closed will read “closed or ajar”</button>
      </div>`}
    <p class="verdict">It tells open from closed right <strong class="balanced">${percent(balanced)}</strong> of the time (balanced accuracy)${gateWords}.</p>
    <p>${recognisedWords}</p>
    ${selfCheck && html`
      <div class="self-check">
        <h4>Ajar self-check: ${selfCheck.passed ? 'passed' : 'failed'}</h4>
        <p>${`Can it tell the door at ${selfCheck.ajarAngle}° (ajar) from closed? ` +
          `At most ${percent(selfCheck.limit)} of an open angle's frames may read closed.`}</p>
        <ul>
          ${selfCheck.checks.map((check) => html`
            <li class=${check.passed ? 'passed' : 'failed'} data-angle=${check.angle}>
              <strong>${check.passed ? 'Passed' : 'Failed'}:</strong> ${checkWords(check, selfCheck.limit)}
              ${check.unknownShare > 0 ? ` ${percent(check.unknownShare)} read unknown.` : ''}
            </li>`)}
        </ul>
      </div>`}
    ${result.perAngle.length > 0
      ? html`<div class="table-scroll"><${ConfusionHeatmap}
          rows=${result.perAngle.map((readings) => `${readings.angle}°`)}
          columns=${['closed', 'open', 'unknown']}
          counts=${result.perAngle.map((readings) => [readings.closed, readings.open, readings.unknown])}
          isRight=${(/** @type {number} */ row, /** @type {number} */ column) => {
            const angle = result.perAngle[row]?.angle ?? 0
            return column === (angle === CLOSED_ANGLE || closedOrAjar.includes(angle) ? 0 : 1)
          }}
          caption="Each calibrated angle's held-out frames (rows) by what the model said (columns). Outlined cells are right." /></div>`
      : html`<${ConfusionHeatmap} rows=${result.confusion.actual} columns=${result.confusion.reported} counts=${result.confusion.counts}
          caption="Rows: what the door was. Columns: what the model said. Matching names are right." />`}`
}

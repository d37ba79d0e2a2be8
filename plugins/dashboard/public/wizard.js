// @ts-check
/**
 * The calibration wizard of one door (admin): record the door closed, then
 * open, optionally at more angles, then finish: the door's own model trains,
 * and the result says in words whether it is good enough to be used.
 * Everything it shows comes from the door's live events (capture counts,
 * time left, training, result); it only starts and stops things.
 */
import { useEffect, useRef, useState } from '../vendor/hooks.js'
import { admin, CancelledError } from './admin.js'
import { api, errorMessage, HttpError, must } from './api.js'
import { html } from './html.js'
import { doorName, duration, percent } from './format.js'
import { ConfusionHeatmap } from './heatmap.js'
import { doorsStore, progressStore } from './streams.js'
import { announce, clock, useStore } from './store.js'

/** @typedef {import('./types').Door} Door */
/** @typedef {import('./types').CalibrationResult} CalibrationResult */
/** @typedef {'closed' | 'open' | 'more' | 'training' | 'result'} Step */

const OPEN_ANGLE = 90
const EXTRA_ANGLES = [15, 30, 45, 60, 75]
const STEPS = /** @type {const} */ ([['closed', 'Closed'], ['open', 'Open'], ['more', 'Finish'], ['training', 'Training'], ['result', 'Result']])

/** @param {Door} door @returns {Step} */
function firstStep (door) {
  const { status, capture } = door.calibration
  if (status === 'training') return 'training'
  if (capture) return capture.angle === 0 ? 'closed' : capture.angle === OPEN_ANGLE ? 'open' : 'more'
  return 'closed'
}

/** @param {Door} door @param {number} angle */
function capturedAt (door, angle) {
  return door.calibration.captured[String(angle)] ?? 0
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

/** @param {{ device: number, onClose: () => void }} props */
export function CalibrationWizard ({ device, onClose }) {
  const { doors } = useStore(doorsStore)
  const door = doors.get(device)
  const { progress } = useStore(progressStore)
  const now = useStore(clock)
  const dialog = useRef(/** @type {HTMLDialogElement | null} */ (null))
  const [step, setStep] = useState(/** @type {Step} */ (door ? firstStep(door) : 'closed'))
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState(/** @type {string | null} */ (null))
  const [frames, setFrames] = useState(300)
  const [seconds, setSeconds] = useState(60)
  const [extraAngle, setExtraAngle] = useState(45)
  const [status, setStatus] = useState('')
  const [confirmForget, setConfirmForget] = useState(false)
  const finishVersion = useRef(/** @type {string | null} */ (null))
  const sawTraining = useRef(false)
  // secondsLeft as last reported, and when it arrived: counted down here, whatever the two clocks say
  const reported = useRef({ secondsLeft: 0, at: 0 })

  useEffect(() => {
    dialog.current?.showModal()
    return () => dialog.current?.close()
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
      say(calibration.result?.activated ? 'Calibration finished: the door\'s own model is now active.' : 'Calibration finished, but the model was not activated.')
    }
  }, [step, calibration?.status, calibration?.result?.version])

  // a capture that ends says how many frames it kept
  const wasCapturing = useRef(/** @type {number | null} */ (null))
  useEffect(() => {
    if (capture) wasCapturing.current = capture.angle
    else if (wasCapturing.current !== null && door) {
      const angle = wasCapturing.current
      wasCapturing.current = null
      say(`Recording at ${angle}° ended: ${capturedAt(door, angle)} frames kept for that angle.`)
    }
  }, [capture === null])

  /** @template T @param {() => Promise<T>} action */
  const act = async (action) => {
    setBusy(true)
    setProblem(null)
    try {
      return await action()
    } catch (err) {
      if (!(err instanceof CancelledError)) setProblem(errorMessage(err))
      return undefined
    } finally {
      setBusy(false)
    }
  }

  /** @param {number} angle */
  const record = (angle) => act(async () => {
    const body = { angle, frames, seconds }
    await must(admin.run((headers) => api.POST('/doors/{id}/calibration/capture', { params: { path: { id: device } }, body, headers })))
    say(`Recording at ${angle}°: keep the door still.`)
  })
  const stop = () => act(async () => {
    await must(admin.run((headers) => api.DELETE('/doors/{id}/calibration/capture', { params: { path: { id: device } }, headers })))
  })
  const finish = () => act(async () => {
    try {
      const accepted = await must(admin.run((headers) => api.POST('/doors/{id}/calibration/finish', { params: { path: { id: device } }, headers })))
      finishVersion.current = accepted.version
      sawTraining.current = false
      setStep('training')
      say('Training this door\'s model…')
    } catch (err) {
      if (err instanceof HttpError && err.status === 409) throw new HttpError(409, `This door is training already${err.retryAfterSeconds ? `; try again in ${duration(err.retryAfterSeconds)}` : ''}.`)
      throw err
    }
  })
  const forget = () => act(async () => {
    await must(admin.run((headers) => api.DELETE('/doors/{id}/calibration', { params: { path: { id: device } }, headers })))
    setConfirmForget(false)
    setStep('closed')
    say('This door\'s calibration and model are forgotten; it uses the shared model again.')
  })
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

  /** One recording step. @param {number} angle @param {string} title @param {string} what */
  const recordStep = (angle, title, what) => {
    const recording = capture !== null && capture.angle === angle
    const have = capturedAt(door, angle)
    return html`
      <h3>${title}</h3>
      <p>${what}</p>
      ${recording && capture
        ? html`
          <p class="capture-status">Recording at ${angle}°: <strong class="frames-stored">${capture.framesStored}</strong>${capture.framesWanted === null ? '' : ` of ${capture.framesWanted}`} frames, <span class="seconds-left">${duration(secondsLeft)}</span> left.</p>
          <progress max=${capture.framesWanted ?? 1} value=${capture.framesWanted === null ? undefined : capture.framesStored} aria-label="Frames recorded"></progress>
          <div class="actions"><button type="button" disabled=${busy} onClick=${stop}>Stop recording</button></div>`
        : html`
          <p class="captured">${have > 0 ? `${have} frames recorded at ${angle}°.` : `Nothing recorded at ${angle}° yet.`}</p>
          <div class="actions">
            <button type="button" class=${have > 0 ? '' : 'primary'} disabled=${busy || capture !== null} onClick=${() => record(angle)}>${have > 0 ? 'Record more' : 'Record'}</button>
            ${capture !== null && html`<span class="muted">A recording at ${capture.angle}° is still running.</span>`}
          </div>`}`
  }

  const result = calibration.result
  const stepIndex = STEPS.findIndex(([name]) => name === step)
  return html`
    <dialog ref=${dialog} class="wizard" aria-labelledby="wizard-title" onCancel=${onDialogCancel}>
      <h2 id="wizard-title">Calibrate ${doorName(door)} <span class="device-id">ID ${device}</span></h2>
      <ol class="steps">
        ${STEPS.map(([name, label], i) => html`<li class=${i < stepIndex ? 'done' : i === stepIndex ? 'current' : ''} aria-current=${i === stepIndex ? 'step' : undefined}>${label}</li>`)}
      </ol>
      <div class="step-body">
        ${step === 'closed' && html`
          ${recordStep(0, 'Step 1: Close the door, then Record', 'Shut the door fully and keep out of its way while it records. The Pi beside it must be sending frames.')}
          <details class="options">
            <summary>Recording options</summary>
            <label for="wizard-frames">Frames per recording</label>
            <input id="wizard-frames" type="number" min="20" max="100000" value=${frames} onInput=${(/** @type {InputEvent} */ e) => setFrames(Number(/** @type {HTMLInputElement} */ (e.currentTarget).value))} />
            <label for="wizard-seconds">At most (seconds)</label>
            <input id="wizard-seconds" type="number" min="5" max="3600" value=${seconds} onInput=${(/** @type {InputEvent} */ e) => setSeconds(Number(/** @type {HTMLInputElement} */ (e.currentTarget).value))} />
          </details>
          <div class="actions"><button type="button" class="primary" disabled=${capturedAt(door, 0) === 0 || capture !== null} onClick=${() => setStep('open')}>Next: open the door</button></div>`}
        ${step === 'open' && html`
          ${recordStep(OPEN_ANGLE, 'Step 2: Open it fully, then Record', 'Open the door as far as it goes (90°) and leave it there while it records.')}
          <div class="actions">
            <button type="button" onClick=${() => setStep('closed')} disabled=${capture !== null}>Back</button>
            <button type="button" class="primary" disabled=${capturedAt(door, OPEN_ANGLE) === 0 || capture !== null} onClick=${() => setStep('more')}>Next</button>
          </div>`}
        ${step === 'more' && html`
          <h3>Step 3: Finish</h3>
          <p>Recorded: ${Object.entries(calibration.captured).sort(([a], [b]) => Number(a) - Number(b)).map(([angle, n]) => `${angle}° ${n} frames`).join(', ') || 'nothing'}.</p>
          <p>Optional: record the door half-open too, so it is recognised in between.</p>
          ${capture
            ? recordStep(capture.angle, `Recording at ${capture.angle}°`, 'Hold the door at that angle.')
            : html`<div class="inline-form">
                <label for="wizard-angle">Angle</label>
                <select id="wizard-angle" value=${extraAngle} onChange=${(/** @type {Event} */ e) => setExtraAngle(Number(/** @type {HTMLSelectElement} */ (e.currentTarget).value))}>
                  ${EXTRA_ANGLES.map((angle) => html`<option value=${angle}>${angle}°</option>`)}
                </select>
                <button type="button" disabled=${busy} onClick=${() => record(extraAngle)}>Record at ${extraAngle}°</button>
              </div>`}
          <div class="actions">
            <button type="button" onClick=${() => setStep('open')} disabled=${capture !== null}>Back</button>
            <button type="button" class="primary finish" disabled=${busy || capture !== null} onClick=${finish}>Finish and train</button>
          </div>`}
        ${step === 'training' && html`
          <h3>Training this door's model</h3>
          ${progress && progress.version === finishVersion.current && progress.epochs > 0
            ? html`<p>Epoch ${progress.epoch} of ${progress.epochs}${progress.etaSeconds === undefined ? '' : `, about ${duration(progress.etaSeconds)} left`}.</p>
              <progress max=${progress.epochs} value=${progress.epoch} aria-label="Training progress"></progress>`
            : html`<p>This takes a few seconds to a minute.</p><progress aria-label="Training"></progress>`}`}
        ${step === 'result' && html`<${ResultView} result=${result} reasons=${calibration.reasons} status=${calibration.status} />`}
      </div>
      ${problem && html`<p class="problem" role="alert">${problem}</p>`}
      <p class="wizard-status" role="status">${status}</p>
      <div class="actions wizard-actions">
        ${step === 'result' && calibration.status === 'ready' && result?.activated && html`<button type="button" class="primary" onClick=${onClose}>Done</button>`}
        ${step === 'result' && !(calibration.status === 'ready' && result?.activated) && html`<button type="button" class="primary" onClick=${() => { setStep('closed'); setProblem(null) }}>Retry</button>`}
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

/** The result in words. @param {{ result: CalibrationResult | null, reasons: string[], status: string }} props */
function ResultView ({ result, reasons, status }) {
  const reasonList = reasons.length > 0 && html`
    <div class="reasons">
      <p>${result?.activated ? 'Notes:' : 'Why it was not activated:'}</p>
      <ul>${reasons.map((reason) => html`<li>${reason}</li>`)}</ul>
    </div>`
  if (!result) return html`<h3>The calibration failed</h3>${reasonList || html`<p>No reason was given.</p>`}`
  const balanced = result.doorState.openClosed.balancedAccuracy
  const { closed, open, unknown } = shares(result)
  const undecided = Math.max(Number.isNaN(unknown.closed) ? 0 : unknown.closed, Number.isNaN(unknown.open) ? 0 : unknown.open)
  const activated = status === 'ready' && result.activated
  return html`
    <h3>${activated ? 'Active: this door now uses its own model' : 'Not activated'}</h3>
    <p class="verdict">It tells open from closed right <strong class="balanced">${percent(balanced)}</strong> of the time (balanced accuracy).</p>
    <p>On frames it had not seen (the end of each recording), it recognised the closed door ${shown(closed)} of the time and the open door ${shown(open)} of the time${undecided > 0 ? html`; the rest of the time it said “unknown” (up to ${percent(undecided)}) or the other state` : ''}. 50% would be guessing; a model is used only from ${percent(result.floor)} up.</p>
    <${ConfusionHeatmap} rows=${result.confusion.actual} columns=${result.confusion.reported} counts=${result.confusion.counts} caption="Rows: what the door was. Columns: what the model said. Matching names are right." />
    ${reasonList}`
}

// @ts-check
/** The Model section: the live training curve, the versions (global and per door) with their evaluation, activate / roll back. */
import { useEffect, useState } from '../vendor/hooks.js'
import { admin, useAdminAction } from './admin.js'
import { api, errorMessage, must } from './api.js'
import { TrainingChart } from './chart.js'
import { html } from './html.js'
import { clockTime, duration, percent } from './format.js'
import { ConfusionHeatmap } from './heatmap.js'
import { warningIcon } from './icons.js'
import { progressStore } from './streams.js'
import { announce, useStore } from './store.js'

/** @typedef {import('./types').ModelVersion} ModelVersion */
/** @typedef {import('./types').EvaluationAnswer} EvaluationAnswer */
/** @typedef {import('./types').TrainingProgress} TrainingProgress */

/** @param {TrainingProgress | null} progress */
function progressWords (progress) {
  if (!progress) return 'Waiting for the training status…'
  switch (progress.state) {
    case 'MODEL_DOESNT_EXIST': return 'No model has been trained yet.'
    case 'START_TRAINING': return `Starting to train ${progress.version ?? ''}…`
    case 'TRAINING_IN_PROGRESS': {
      const eta = progress.etaSeconds === undefined ? '' : `, about ${duration(progress.etaSeconds)} left`
      const accuracy = progress.accuracy === undefined ? '' : `, accuracy ${percent(progress.accuracy, 1)}`
      const figures = progress.loss === undefined ? '' : `: loss ${progress.loss.toFixed(3)}${accuracy}`
      return `Training ${progress.version ?? ''}: epoch ${progress.epoch} of ${progress.epochs}${figures}${eta}.`
    }
    case 'FINISHED_TRAINING':
      return progress.version ? `The last training (${progress.version}) finished in ${duration(progress.elapsedSeconds)}.` : 'A model is ready.'
    case 'TRAINING_FAILED': return `The last training${progress.version ? ` (${progress.version})` : ''} failed.`
  }
}

/** @param {ModelVersion} version */
function scopeWords (version) {
  // scope and device are new fields: a version from before them is a global one
  const { scope, device } = /** @type {{ scope?: 'global' | 'door', device?: number | null }} */ (version)
  return scope === 'door' ? `door ${device ?? '?'}` : 'global'
}

/** @param {{ version: string }} props */
function Evaluation ({ version }) {
  const [answer, setAnswer] = useState(/** @type {EvaluationAnswer | null} */ (null))
  const [problem, setProblem] = useState(/** @type {string | null} */ (null))
  useEffect(() => {
    must(api.GET('/training/get/evaluation', { params: { query: { version } } }))
      .then(setAnswer, (err) => setProblem(errorMessage(err)))
  }, [version])
  if (problem) return html`<p class="problem">No evaluation: ${problem}</p>`
  if (!answer) return html`<p class="muted">Reading the evaluation…</p>`
  const { evaluation } = answer
  const openOrClosed = percent(evaluation.openClosed.accuracy)
  const closedF1 = evaluation.openClosed.f1.toFixed(2)
  return html`
    <div class="evaluation">
      <p>On ${evaluation.testRows} held-out frames (the last part of each angle's recording; trained on ${evaluation.trainRows}):
        the angle was right ${percent(evaluation.accuracy)} of the time, open or closed ${openOrClosed} (F1 of “closed”: ${closedF1}).</p>
      <${ConfusionHeatmap} rows=${evaluation.labels.map((angle) => `${angle}°`)} columns=${evaluation.labels.map((angle) => `${angle}°`)}
        counts=${evaluation.confusion} caption="Angles: rows are what the door was, columns what the model said" />
    </div>`
}

/** @param {{ version: ModelVersion, onActivate: (version: string) => void, busy: boolean }} props */
function VersionRow ({ version, onActivate, busy }) {
  const [open, setOpen] = useState(false)
  const gate = version.gate
  // a door version its calibration gate refused is not offered: activating it takes force (the API only)
  const refused = gate?.passed === false
  const score = gate?.balancedAccuracy === undefined ? 'no score kept' : `balanced accuracy ${percent(gate.balancedAccuracy)}`
  return html`
    <li class=${`version${version.active ? ' active' : ''}${open ? ' expanded' : ''}`} data-version=${version.version}>
      <div class="version-head">
        <code class="version-name">${version.version}</code>
        ${version.active && html`<span class="badge ok">Active</span>`}
      </div>
      <dl class="facts">
        <div><dt>For</dt><dd>${scopeWords(version)}</dd></div>
        <div><dt>Made</dt><dd><time datetime=${version.createdAt}>${clockTime(version.createdAt)}</time></dd></div>
        <div><dt>Accuracy</dt><dd>${version.accuracy === undefined ? '–' : percent(version.accuracy)}</dd></div>
        <div><dt>Trained in</dt><dd>${duration(version.trainingSeconds)}</dd></div>
        ${gate && html`
          <div>
            <dt>Calibration gate</dt>
            <dd>${gate.passed ? 'passed' : 'refused'}${gate.balancedAccuracy === undefined ? '' : `, ${percent(gate.balancedAccuracy)}`}</dd>
          </div>`}
      </dl>
      <div class="actions">
        <button type="button" aria-expanded=${open} onClick=${() => setOpen(!open)}>${open ? 'Hide evaluation' : 'Evaluation'}</button>
        ${!version.active && !refused && html`
          <button type="button" disabled=${busy} onClick=${() => onActivate(version.version)} aria-label=${`Activate ${version.version}`}>Activate</button>`}
        ${refused && html`<span class="gate-refused">${warningIcon()} Refused by its calibration gate (${score})</span>`}
      </div>
      ${open && html`<${Evaluation} version=${version.version} />`}
    </li>`
}

export function ModelSection () {
  const { progress, curve } = useStore(progressStore)
  const [versions, setVersions] = useState(/** @type {ModelVersion[] | null} */ (null))
  const { busy, problem, setProblem, act } = useAdminAction()
  const [epochs, setEpochs] = useState(100)
  const trainingState = progress?.state

  const readVersions = async () => {
    try {
      setVersions((await must(api.GET('/training/get/models'))).versions)
    } catch (err) {
      setProblem(errorMessage(err))
    }
  }
  // again whenever a training ends (a new version exists)
  useEffect(() => { readVersions() }, [trainingState])

  /** @param {() => Promise<string>} action @returns {Promise<void>} */
  const adminAction = (action) => act(async () => announce(await action()))
  /** @param {string} version */
  const activate = (version) => adminAction(async () => {
    await must(admin.run((headers) => api.POST('/training/post/activate', { body: { version }, headers })))
    await readVersions()
    return `${version} is now the active version.`
  })
  const train = () => adminAction(async () => {
    const accepted = await must(admin.run((headers) => api.POST('/training/post/train', { body: { epochs }, headers })))
    return `Training ${accepted.version} on ${accepted.samples} stored samples.`
  })

  const running = trainingState === 'START_TRAINING' || trainingState === 'TRAINING_IN_PROGRESS'
  return html`
    <section id="model" aria-labelledby="model-title">
      <h2 id="model-title">Model</h2>
      <figure class="training">
        ${curve.epochs.length > 0 && html`<${TrainingChart} curve=${curve} />`}
        <figcaption>${progressWords(progress)}${curve.epochs.length === 0 ? ' The curve fills in while a model trains.' : ''}</figcaption>
      </figure>
      <form class="train-form" onSubmit=${(/** @type {SubmitEvent} */ event) => { event.preventDefault(); train() }}>
        <label for="train-epochs">Epochs</label>
        <input id="train-epochs" type="number" min="1" max="2000" value=${epochs}
          onInput=${(/** @type {InputEvent} */ event) => setEpochs(Number(/** @type {HTMLInputElement} */ (event.currentTarget).value))} />
        <button type="submit" disabled=${busy || running}>Train the global model</button>
      </form>
      ${problem && html`<p class="problem" role="alert">${problem}</p>`}
      <h3>Versions</h3>
      ${versions === null
        ? html`<p class="muted">Reading the versions…</p>`
        : versions.length === 0 ? html`<p class="muted">No model yet: train the global model, or calibrate a door.</p>` : ''}
      <ul class="versions">
        ${(versions ?? []).map((version) => html`<${VersionRow} key=${version.version} version=${version} busy=${busy} onActivate=${activate} />`)}
      </ul>
    </section>`
}

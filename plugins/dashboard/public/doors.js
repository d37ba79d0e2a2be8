// @ts-check
/* global FormData */
/** The Doors section: a tile per door, live from /doors/stream; a door can be renamed or removed from its tile (admin). */
import { useState } from '../vendor/hooks.js'
import { admin, useAdminAction } from './admin.js'
import { api, must } from './api.js'
import { html } from './html.js'
import { CalibrationSummary } from './calibration.js'
import { ago, clockTime, doorName, percent, stateWord } from './format.js'
import { stateIcon, warningIcon } from './icons.js'
import { doorsStore } from './streams.js'
import { announce, clock, useStore } from './store.js'

/** @typedef {import('./types').Door} Door */

/** @param {Door} door */
function modelLine (door) {
  if (!door.model) return 'none yet'
  return door.model.scope === 'door' ? 'its own' : 'shared (global)'
}

/**
 * The headline: the state, or, for a door on the shared model whose frames
 * are unlike anything it learned (another room), that it needs calibrating —
 * never a state the shared model cannot know. "Closed or ajar" has no angle:
 * the door cannot tell which.
 * @param {{ door: Door }} props
 */
function Headline ({ door }) {
  if (door.reason?.code === 'not-calibrated') {
    return html`<p class="state">${warningIcon()}<strong class="state-text">Not calibrated — calibrate this door</strong></p>`
  }
  return html`
    <p class="state">
      ${stateIcon(door.state)}
      <strong class="state-text">${stateWord(door.state)}</strong>
      ${door.angle !== null && door.state !== 'closedOrAjar' && html`<span class="angle">at ${Math.round(door.angle)}°</span>`}
    </p>`
}

/**
 * Remove…, then a confirmation saying what goes with the door. The tile
 * leaves the page when the server's `removed` event arrives.
 * @param {{ door: Door }} props
 */
function RemoveDoor ({ door }) {
  const [confirming, setConfirming] = useState(false)
  const { busy, problem, setProblem, act } = useAdminAction()
  const name = doorName(door)
  const remove = () => act(async () => {
    await must(admin.run((headers) => api.DELETE('/doors/{id}', { params: { path: { id: door.device } }, headers })))
    announce(`${name} removed.`)
  })
  if (!confirming) {
    return html`<button type="button" class="remove" onClick=${() => setConfirming(true)} aria-label=${`Remove ${name}…`}>Remove…</button>`
  }
  return html`
    <div class="confirm-remove" role="group" aria-label=${`Remove ${name}?`}>
      <p>Remove ${name}? Its calibration and model are forgotten and its Pi leaves the known list; a Pi that still sends comes back as a new door.</p>
      ${problem && html`<p class="problem" role="alert">${problem}</p>`}
      <div class="actions">
        <button type="button" class="danger" disabled=${busy} onClick=${remove}>Yes, remove</button>
        <button type="button" onClick=${() => { setConfirming(false); setProblem(null) }}>Keep it</button>
      </div>
    </div>`
}

/**
 * Rename…, then a form with the door's name. Saving an empty name, or "Use
 * the Pi's name", gives the door its Pi's NAME again. The tile takes the new
 * name from the server's `door` event, like every other change.
 * @param {{ door: Door }} props
 */
function RenameDoor ({ door }) {
  const [editing, setEditing] = useState(false)
  const { busy, problem, setProblem, act } = useAdminAction()
  const name = doorName(door)
  const inputId = `door-${door.device}-new-name`
  /** @param {string | null} newName */
  const save = (newName) => act(async () => {
    const body = { name: newName }
    const renamed = await must(admin.run((headers) => api.PATCH('/doors/{id}', { params: { path: { id: door.device } }, body, headers })))
    announce(`${name} is now called ${doorName(renamed)}.`)
    setEditing(false)
  })
  /** @param {SubmitEvent} event */
  const submit = (event) => {
    event.preventDefault()
    const typed = String(new FormData(/** @type {HTMLFormElement} */ (event.currentTarget)).get('name') ?? '').trim()
    save(typed === '' ? null : typed).catch(() => {}) // act() shows the problem; this only keeps the promise handled
  }
  if (!editing) {
    return html`<button type="button" class="rename" onClick=${() => setEditing(true)} aria-label=${`Rename ${name}…`}>Rename…</button>`
  }
  return html`
    <form class="rename-door" onSubmit=${submit} aria-label=${`Rename ${name}`}>
      <label for=${inputId}>New name</label>
      <input id=${inputId} name="name" type="text" maxlength="64" defaultValue=${door.name} autofocus />
      ${problem && html`<p class="problem" role="alert">${problem}</p>`}
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>Save</button>
        <button type="button" disabled=${busy} onClick=${() => save(null)}>Use the Pi's name</button>
        <button type="button" onClick=${() => { setEditing(false); setProblem(null) }}>Cancel</button>
      </div>
    </form>`
}

/** @param {{ door: Door, now: number, onCalibrate: (device: number) => void }} props */
function DoorTile ({ door, now, onCalibrate }) {
  const id = `door-${door.device}`
  const reason = door.reason
  const notCalibrated = reason?.code === 'not-calibrated'
  return html`
    <article class=${`tile door state-${door.state}${reason ? ` reason-${reason.code}` : ''}`} data-device=${door.device}
      aria-labelledby=${`${id}-name`} aria-describedby=${reason ? `${id}-reason` : undefined}>
      <header class="tile-head">
        <h3 id=${`${id}-name`}>${doorName(door)}</h3>
        <span class="device-id">ID ${door.device}</span>
      </header>
      <${Headline} door=${door} />
      ${reason && html`<p class="reason" id=${`${id}-reason`} data-code=${reason.code}>${reason.message}</p>`}
      <div class="badges">
        ${door.needsRecalibration && !notCalibrated && html`<span class="badge warn">${warningIcon()} Needs recalibration</span>`}
        ${!door.live && html`<span class="badge muted">Pi offline</span>`}
      </div>
      <dl class="facts">
        <div><dt>Confidence</dt><dd>${door.state === 'unknown' ? '–' : percent(door.confidence)}</dd></div>
        <div><dt>Since</dt><dd><time datetime=${door.since} title=${clockTime(door.since)}>${ago(door.since, now)}</time></dd></div>
        <div><dt>Frame rate</dt><dd>${door.frameRate.toFixed(1)}/s</dd></div>
        <div><dt>Last frame</dt><dd>${door.lastFrameAt
          ? html`<time datetime=${door.lastFrameAt} title=${clockTime(door.lastFrameAt)}>${ago(door.lastFrameAt, now)}</time>`
          : 'none yet'}</dd></div>
        <div><dt>Model</dt><dd>${modelLine(door)}</dd></div>
      </dl>
      <${CalibrationSummary} calibration=${door.calibration} />
      <div class="tile-actions">
        <button type="button" class=${`calibrate${notCalibrated ? ' primary' : ''}`} onClick=${() => onCalibrate(door.device)}
          aria-label=${`Calibrate ${doorName(door)}`}>Calibrate…</button>
        <${RenameDoor} door=${door} />
        <${RemoveDoor} door=${door} />
      </div>
    </article>`
}

/** @param {{ onCalibrate: (device: number) => void }} props */
export function DoorsSection ({ onCalibrate }) {
  const { doors, loaded, problem } = useStore(doorsStore)
  const now = useStore(clock)
  const list = [...doors.values()].sort((a, b) => a.device - b.device)
  return html`
    <section id="doors" aria-labelledby="doors-title">
      <h2 id="doors-title">Doors</h2>
      ${problem && html`<p class="problem">Could not read the doors: ${problem}</p>`}
      ${!loaded && !problem && html`<p class="muted">Loading doors…</p>`}
      ${loaded && list.length === 0 && html`<p class="muted">No doors yet. A door appears here once its Pi sends a keep-alive or frames.</p>`}
      <div class="tiles">
        ${list.map((door) => html`<${DoorTile} key=${door.device} door=${door} now=${now} onCalibrate=${onCalibrate} />`)}
      </div>
    </section>`
}

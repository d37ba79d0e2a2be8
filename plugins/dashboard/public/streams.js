// @ts-check
/* global EventSource */
/**
 * The page's two live feeds (server-sent events): the doors and the training
 * progress. Both reconnect by themselves: EventSource retries a dropped
 * connection, and when it gives up (the server answered an error while
 * restarting) a new one is opened with a growing delay. Each (re)connection
 * re-reads the full state, so nothing missed while away stays wrong.
 */
import { api, errorMessage, must } from './api.js'
import { doorName, stateWord } from './format.js'
import { announce, Store } from './store.js'

/** @typedef {import('./types').Door} Door */
/** @typedef {import('./types').TrainingProgress} TrainingProgress */
/** @typedef {'connecting' | 'live' | 'reconnecting'} Connection */

/**
 * @param {string} url
 * @param {Record<string, (data: unknown) => void>} handlers by event name
 * @param {(connection: Connection) => void} onConnection
 */
function openStream (url, handlers, onConnection) {
  let delayMs = 1000
  const connect = () => {
    const source = new EventSource(url)
    source.addEventListener('open', () => {
      delayMs = 1000
      onConnection('live')
    })
    source.addEventListener('error', () => {
      onConnection('reconnecting')
      if (source.readyState !== EventSource.CLOSED) return
      source.close()
      setTimeout(connect, delayMs)
      delayMs = Math.min(delayMs * 2, 15_000)
    })
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handle(JSON.parse(/** @type {MessageEvent<string>} */ (event).data)))
    }
  }
  connect()
}

/**
 * @typedef {object} DoorsState
 * @property {Map<number, Door>} doors by device
 * @property {Connection} connection
 * @property {boolean} loaded the first list arrived
 * @property {string | null} problem why the list could not be read
 */

/** @type {Store<DoorsState>} */
export const doorsStore = new Store({ doors: new Map(), connection: 'connecting', loaded: false, problem: null })

/** Devices whose event arrived since the last (re)connection: a list read meanwhile must not overwrite them. */
let freshSinceConnect = new Set()

/** @param {Door} door */
function putDoor (door) {
  const state = doorsStore.get()
  const before = state.doors.get(door.device)
  const doors = new Map(state.doors).set(door.device, door)
  freshSinceConnect.add(door.device)
  doorsStore.set({ ...state, doors, loaded: true })
  if (before && before.state !== door.state) announce(`${doorName(door)} is now ${stateWord(door.state).toLowerCase()}.`)
  const newlyNotCalibrated = before && before.reason?.code !== 'not-calibrated' && door.reason?.code === 'not-calibrated'
  if (newlyNotCalibrated) announce(`${doorName(door)} is not calibrated for its room: calibrate this door.`)
  else if (before && !before.needsRecalibration && door.needsRecalibration) announce(`${doorName(door)} needs recalibration.`)
}

async function readDoors () {
  try {
    const { doors: list } = await must(api.GET('/doors'))
    const state = doorsStore.get()
    const doors = new Map()
    for (const door of list) doors.set(door.device, freshSinceConnect.has(door.device) ? state.doors.get(door.device) ?? door : door)
    // a door that appeared by an event after the list was read stays
    for (const device of freshSinceConnect) if (!doors.has(device) && state.doors.has(device)) doors.set(device, state.doors.get(device))
    doorsStore.set({ ...state, doors, loaded: true, problem: null })
  } catch (err) {
    doorsStore.set({ ...doorsStore.get(), problem: errorMessage(err) })
  }
}

/** Starts the door feed: the list at once, then every change. */
export function startDoors () {
  readDoors()
  let wasLive = false
  openStream('/doors/stream', {
    door: (data) => putDoor(/** @type {Door} */ (data)),
    removed: (data) => {
      const { device } = /** @type {{ device: number }} */ (data)
      const state = doorsStore.get()
      const doors = new Map(state.doors)
      doors.delete(device)
      doorsStore.set({ ...state, doors })
    }
  }, (connection) => {
    const state = doorsStore.get()
    if (connection === state.connection) return
    doorsStore.set({ ...state, connection })
    if (connection === 'live') {
      if (wasLive) {
        announce('Reconnected to doorsense.')
        freshSinceConnect = new Set()
        readDoors()
      }
      wasLive = true
    } else if (connection === 'reconnecting' && wasLive) {
      announce('Lost the connection to doorsense; reconnecting…')
    }
  })
}

/**
 * @typedef {object} Curve the epochs of one training run
 * @property {string | undefined} version
 * @property {number[]} epochs
 * @property {number[]} loss
 * @property {number[]} accuracy
 */

/** @typedef {{ progress: TrainingProgress | null, curve: Curve, connection: Connection }} ProgressState */

/** @type {Store<ProgressState>} */
export const progressStore = new Store({
  progress: null,
  curve: { version: undefined, epochs: [], loss: [], accuracy: [] },
  connection: 'connecting'
})

/** @param {TrainingProgress} progress */
function putProgress (progress) {
  const state = progressStore.get()
  let curve = state.curve
  const last = curve.epochs.at(-1) ?? 0
  if (progress.version !== curve.version || progress.epoch < last) curve = { version: progress.version, epochs: [], loss: [], accuracy: [] }
  // only epochs seen while they run: the snapshot a new stream starts with is a single point of some past run
  if (progress.state === 'TRAINING_IN_PROGRESS' && progress.epoch > (curve.epochs.at(-1) ?? 0) && progress.loss !== undefined) {
    curve = {
      version: curve.version,
      epochs: [...curve.epochs, progress.epoch],
      loss: [...curve.loss, progress.loss],
      accuracy: [...curve.accuracy, progress.accuracy ?? Number.NaN]
    }
  }
  progressStore.set({ ...state, progress, curve })
}

/** Starts the training progress feed. */
export function startProgress () {
  openStream('/training/get/progress/stream', {
    progress: (data) => putProgress(/** @type {TrainingProgress} */ (data)),
    state: (data) => {
      const { state: fsm } = /** @type {{ state: TrainingProgress['state'] }} */ (data)
      const state = progressStore.get()
      if (state.progress) progressStore.set({ ...state, progress: { ...state.progress, state: fsm } })
    }
  }, (connection) => progressStore.set({ ...progressStore.get(), connection }))
}

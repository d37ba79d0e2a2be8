/**
 * The model handler's state machine, with the original backend's state names.
 * Every transition the handler makes is one row of {@link TRANSITIONS}; any
 * other move is a bug and throws instead of silently changing state.
 */
import type { TrainingState } from '../../schemas/model.js'

/** What happens to the handler. */
export type TrainingEvent =
  /** a training request was accepted */
  | 'start'
  /** the worker has loaded and runs its first epoch */
  | 'run'
  /** the new version is written and active */
  | 'finish'
  /** the run (or its start) failed */
  | 'fail'
  /** an admin made a stored version active */
  | 'activate'

/** A transition: the states an event may happen in, and where it leads. */
export interface Transition {
  from: readonly TrainingState[]
  to: TrainingState
}

/** Every legal transition, in one place. */
export const TRANSITIONS: Readonly<Record<TrainingEvent, Transition>> = Object.freeze({
  start: { from: ['MODEL_DOESNT_EXIST', 'FINISHED_TRAINING', 'TRAINING_FAILED'], to: 'START_TRAINING' },
  run: { from: ['START_TRAINING'], to: 'TRAINING_IN_PROGRESS' },
  finish: { from: ['TRAINING_IN_PROGRESS'], to: 'FINISHED_TRAINING' },
  fail: { from: ['START_TRAINING', 'TRAINING_IN_PROGRESS'], to: 'TRAINING_FAILED' },
  // a rollback must not race a run that is about to activate its own version
  activate: { from: ['MODEL_DOESNT_EXIST', 'FINISHED_TRAINING', 'TRAINING_FAILED'], to: 'FINISHED_TRAINING' }
})

/** The states in which a training is under way. */
export const TRAINING_STATES: readonly TrainingState[] = ['START_TRAINING', 'TRAINING_IN_PROGRESS']

/** An event that is not allowed in the current state. */
export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError'
  constructor (readonly state: TrainingState, readonly event: TrainingEvent) {
    super(`illegal model state transition: "${event}" in state ${state} (allowed in ${TRANSITIONS[event].from.join(', ')})`)
  }
}

/** The current state and the one way to change it. */
export class TrainingFsm {
  #state: TrainingState

  constructor (initial: TrainingState) {
    this.#state = initial
  }

  get state (): TrainingState {
    return this.#state
  }

  /** Whether a training is starting or running. */
  get training (): boolean {
    return TRAINING_STATES.includes(this.#state)
  }

  /** Whether `event` is legal now. */
  can (event: TrainingEvent): boolean {
    return TRANSITIONS[event].from.includes(this.#state)
  }

  /**
   * Applies `event`.
   * @returns the new state
   * @throws {IllegalTransitionError} when `event` is not legal in the current state
   */
  fire (event: TrainingEvent): TrainingState {
    if (!this.can(event)) throw new IllegalTransitionError(this.#state, event)
    this.#state = TRANSITIONS[event].to
    return this.#state
  }
}

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TrainingState } from '../../../schemas/model.js'
import { IllegalTransitionError, TrainingFsm, TRANSITIONS, type TrainingEvent } from '../../../ml/training/fsm.js'

const STATES = TrainingState.anyOf.map((literal) => literal.const)
const EVENTS = Object.keys(TRANSITIONS) as TrainingEvent[]

test('the FSM knows exactly the original five states', () => {
  assert.deepEqual([...STATES].sort(), ['FINISHED_TRAINING', 'MODEL_DOESNT_EXIST', 'START_TRAINING', 'TRAINING_FAILED', 'TRAINING_IN_PROGRESS'])
})

test('the legal transitions are the documented ones', () => {
  const legal = new Set<string>()
  for (const state of STATES) {
    for (const event of EVENTS) {
      if (new TrainingFsm(state).can(event)) legal.add(`${state} --${event}--> ${TRANSITIONS[event].to}`)
    }
  }
  assert.deepEqual([...legal].sort(), [
    'FINISHED_TRAINING --activate--> FINISHED_TRAINING',
    'FINISHED_TRAINING --start--> START_TRAINING',
    'MODEL_DOESNT_EXIST --activate--> FINISHED_TRAINING',
    'MODEL_DOESNT_EXIST --start--> START_TRAINING',
    'START_TRAINING --fail--> TRAINING_FAILED',
    'START_TRAINING --run--> TRAINING_IN_PROGRESS',
    'TRAINING_FAILED --activate--> FINISHED_TRAINING',
    'TRAINING_FAILED --start--> START_TRAINING',
    'TRAINING_IN_PROGRESS --fail--> TRAINING_FAILED',
    'TRAINING_IN_PROGRESS --finish--> FINISHED_TRAINING'
  ])
})

test('every legal event moves to its target state; every illegal one throws and leaves the state alone', () => {
  let legal = 0
  let illegal = 0
  for (const state of STATES) {
    for (const event of EVENTS) {
      const fsm = new TrainingFsm(state)
      if (TRANSITIONS[event].from.includes(state)) {
        assert.equal(fsm.fire(event), TRANSITIONS[event].to, `${event} in ${state}`)
        assert.equal(fsm.state, TRANSITIONS[event].to)
        legal++
      } else {
        assert.throws(() => fsm.fire(event), (err: unknown) => {
          assert.ok(err instanceof IllegalTransitionError)
          assert.equal(err.state, state)
          assert.equal(err.event, event)
          assert.match(err.message, new RegExp(`"${event}" in state ${state}`))
          return true
        })
        assert.equal(fsm.state, state, `${event} in ${state} must not change the state`)
        illegal++
      }
    }
  }
  assert.equal(legal + illegal, STATES.length * EVENTS.length)
  assert.equal(legal, 10)
})

test('a whole training cycle: start, run, finish, then again with a failure, then a rollback', () => {
  const fsm = new TrainingFsm('MODEL_DOESNT_EXIST')
  assert.equal(fsm.training, false)
  const path = (['start', 'run', 'finish', 'start', 'run', 'fail', 'activate', 'start', 'fail'] as const).map((event) => {
    fsm.fire(event)
    return `${fsm.state}${fsm.training ? '*' : ''}`
  })
  assert.deepEqual(path, [
    'START_TRAINING*', 'TRAINING_IN_PROGRESS*', 'FINISHED_TRAINING',
    'START_TRAINING*', 'TRAINING_IN_PROGRESS*', 'TRAINING_FAILED',
    'FINISHED_TRAINING', 'START_TRAINING*', 'TRAINING_FAILED'
  ])
})

test('training cannot start twice, and nothing but the run may finish it', () => {
  const fsm = new TrainingFsm('FINISHED_TRAINING')
  fsm.fire('start')
  assert.throws(() => fsm.fire('start'), IllegalTransitionError)
  assert.throws(() => fsm.fire('finish'), IllegalTransitionError)
  assert.throws(() => fsm.fire('activate'), IllegalTransitionError)
  fsm.fire('run')
  assert.throws(() => fsm.fire('run'), IllegalTransitionError)
  assert.throws(() => fsm.fire('start'), IllegalTransitionError)
})

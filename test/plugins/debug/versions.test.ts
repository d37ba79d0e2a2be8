import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { isSwitchOn, modelHandlerVersion, NOT_LOADED, tensorflowVersion, trainingFailureReport } from '../../../plugins/debug/versions.js'

type Model = FastifyInstance['model']

/**
 * The three read-only fields the debug answers are formatted from. Plain data,
 * not a model: the routes' behaviour with the real model is covered in routes.test.ts.
 */
function modelFields (lastFailure?: Model['lastFailure']): Model {
  return {
    backend: { requested: 'auto', backend: 'tensorflow', package: '@tensorflow/tfjs-node', tfjsVersion: '4.22.0' },
    handlerVersion: '2.0.0',
    lastFailure
  } as unknown as Model
}

test('without a model handler every answer says "not loaded"', () => {
  assert.equal(tensorflowVersion(undefined), NOT_LOADED)
  assert.equal(modelHandlerVersion(undefined), NOT_LOADED)
  assert.deepEqual(trainingFailureReport(undefined), { failed: false, message: 'no training has failed (model handler not loaded)' })
})

test('with a model handler: tfjs version first, then backend and package; the handler version', () => {
  assert.equal(tensorflowVersion(modelFields()), '4.22.0 (backend tensorflow, @tensorflow/tfjs-node)')
  assert.equal(modelHandlerVersion(modelFields()), '2.0.0')
  assert.deepEqual(trainingFailureReport(modelFields()), { failed: false, message: 'no training has failed' })
})

test('the last training failure is reported with its time and version', () => {
  const at = '2024-05-01T10:00:00.000Z'
  assert.deepEqual(trainingFailureReport(modelFields({ at, message: 'only one label in the dataset', version: 'v3' })),
    { failed: true, message: 'only one label in the dataset', at, version: 'v3' })
  assert.deepEqual(trainingFailureReport(modelFields({ at, message: 'out of memory' })), { failed: true, message: 'out of memory', at })
})

test('the legacy switch: "True" and true are on, "False" and false are off', () => {
  assert.deepEqual(['True', true, 'False', false].map((v) => isSwitchOn(v as 'True' | 'False' | boolean)), [true, true, false, false])
})

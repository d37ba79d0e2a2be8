import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TrainingLog } from '../../../ml/store/training-log.js'
import { tempDir } from '../../helper.js'
import { migratedStorage } from '../../fixtures/version.js'

test('the latest ended run decides the failure; the latest finished one the seconds; running ones count for neither', (t) => {
  const log = new TrainingLog(migratedStorage(t, tempDir(t)).db)
  assert.equal(log.lastFailure(), undefined)
  assert.equal(log.lastTrainingSeconds(), undefined)

  log.endTraining(log.beginTraining('csi-a', 'csi'), 'finished', 12.5)
  const failed = log.beginTraining('csi-b', 'csi')
  log.endTraining(failed, 'failed', 1, 'out of memory')
  const failure = log.lastFailure()
  assert.equal(failure?.version, 'csi-b')
  assert.equal(failure?.message, 'out of memory')
  assert.ok(!Number.isNaN(Date.parse(failure?.at ?? '')))
  assert.equal(log.lastTrainingSeconds(), 12.5)

  log.beginTraining('csi-c', 'csi')
  assert.equal(log.lastFailure()?.version, 'csi-b', 'a running training has not ended')
  log.endTraining(log.beginTraining('csi-d', 'csi'), 'interrupted', 2)
  assert.equal(log.lastFailure()?.message, 'training of csi-d interrupted', 'no message: one is made up')
  log.endTraining(log.beginTraining('csi-e', 'csi'), 'finished', 3)
  assert.equal(log.lastFailure(), undefined)
  assert.equal(log.lastTrainingSeconds(), 3)
})

test('markRunningInterrupted ends every running training with a message and reports each', (t) => {
  const dataDir = tempDir(t)
  const log = new TrainingLog(migratedStorage(t, dataDir).db)
  log.endTraining(log.beginTraining('csi-done', 'csi'), 'finished', 4)
  log.beginTraining('csi-a', 'csi')
  log.beginTraining('rssi-b', 'rssi')

  const interrupted = log.markRunningInterrupted()
  assert.deepEqual(interrupted.map((failure) => failure.version), ['csi-a', 'rssi-b'])
  for (const failure of interrupted) {
    assert.match(failure.message, /^training of \S+ \(started .+\) was interrupted: the server stopped or crashed while it ran$/)
  }
  assert.deepEqual(log.lastFailure(), interrupted[1])
  assert.equal(log.lastTrainingSeconds(), 4)
  assert.deepEqual(log.markRunningInterrupted(), [], 'nothing is left running')
})

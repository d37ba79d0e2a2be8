import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SqliteTrainingLog } from '../../../ml/store/training-log.js'
import { tempDir } from '../../helper.js'
import { migratedStorage } from '../../fixtures/version.js'

test('the latest ended run decides the failure; the latest finished one the seconds; running ones count for neither', async (t) => {
  const log = new SqliteTrainingLog(migratedStorage(t, tempDir(t)).db)
  assert.equal(await log.lastFailure(), undefined)
  assert.equal(await log.lastTrainingSeconds(), undefined)

  await log.endTraining(await log.beginTraining('csi-a', 'csi'), 'finished', 12.5)
  const failed = await log.beginTraining('csi-b', 'csi')
  await log.endTraining(failed, 'failed', 1, 'out of memory')
  const failure = await log.lastFailure()
  assert.equal(failure?.version, 'csi-b')
  assert.equal(failure?.message, 'out of memory')
  assert.ok(!Number.isNaN(Date.parse(failure?.at ?? '')))
  assert.equal(await log.lastTrainingSeconds(), 12.5)

  await log.beginTraining('csi-c', 'csi')
  assert.equal((await log.lastFailure())?.version, 'csi-b', 'a running training has not ended')
  await log.endTraining(await log.beginTraining('csi-d', 'csi'), 'interrupted', 2)
  assert.equal((await log.lastFailure())?.message, 'training of csi-d interrupted', 'no message: one is made up')
  await log.endTraining(await log.beginTraining('csi-e', 'csi'), 'finished', 3)
  assert.equal(await log.lastFailure(), undefined)
  assert.equal(await log.lastTrainingSeconds(), 3)
})

test('markRunningInterrupted ends every running training with a message and reports each', async (t) => {
  const dataDir = tempDir(t)
  const log = new SqliteTrainingLog(migratedStorage(t, dataDir).db)
  await log.endTraining(await log.beginTraining('csi-done', 'csi'), 'finished', 4)
  await log.beginTraining('csi-a', 'csi')
  await log.beginTraining('rssi-b', 'rssi')

  const interrupted = await log.markRunningInterrupted()
  assert.deepEqual(interrupted.map((failure) => failure.version), ['csi-a', 'rssi-b'])
  for (const failure of interrupted) {
    assert.match(failure.message, /^training of \S+ \(started .+\) was interrupted: the server stopped or crashed while it ran$/)
  }
  assert.deepEqual(await log.lastFailure(), interrupted[1])
  assert.equal(await log.lastTrainingSeconds(), 4)
  assert.deepEqual(await log.markRunningInterrupted(), [], 'nothing is left running')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SqliteTrainingLog } from '../../../ml/store/training-log.js'
import { SqliteVersionCatalogue } from '../../../ml/store/version-catalogue.js'
import { MODEL_FILE, VersionFiles, WEIGHTS_FILE, type VersionMetaFile } from '../../../ml/store/version-files.js'
import { recoverVersions, type RecoveryParts } from '../../../ml/store/version-recovery.js'
import { tempDir } from '../../helper.js'
import { migratedStorage, smallModel } from '../../fixtures/version.js'

/** The three parts on one fresh data folder. */
function parts (t: Parameters<typeof tempDir>[0]): RecoveryParts {
  const dataDir = tempDir(t)
  const { db } = migratedStorage(t, dataDir)
  return { files: new VersionFiles(join(dataDir, 'models')), catalogue: new SqliteVersionCatalogue(db), trainings: new SqliteTrainingLog(db) }
}

/** Writes and records a version the way the store does. */
async function written (p: RecoveryParts, version: string, seed: number, kind: 'csi' | 'rssi' = 'csi'): Promise<VersionMetaFile> {
  const staged = await p.files.stage(version, smallModel(seed, kind))
  await p.files.commit(staged)
  await p.catalogue.insert(staged.file)
  return staged.file
}

test('a clean store recovers to itself: every version usable, nothing reported', async (t) => {
  const p = parts(t)
  const a = await written(p, 'csi-a', 1)
  await p.catalogue.activate('csi-a', 'csi')
  const usable = new Map<string, VersionMetaFile>()
  assert.deepEqual(await recoverVersions(p, usable), { removedTemp: [], adopted: [], broken: [], fellBack: [], interrupted: [] })
  assert.deepEqual([...usable], [['csi-a', a]])
  assert.equal(await p.catalogue.activeVersion('csi'), 'csi-a')
})

test('recovery removes temp folders, adopts unrecorded complete folders, skips broken ones and marks running trainings', async (t) => {
  const p = parts(t)
  await written(p, 'csi-a', 1)
  const leftover = await p.files.stage('csi-b', smallModel(2))
  // renamed into place, row never written
  const unrecorded = await p.files.stage('csi-c', smallModel(3))
  renameSync(unrecorded.tempDir, p.files.dir('csi-c'))
  // a folder no write of ours leaves: model.json only
  mkdirSync(p.files.dir('csi-d'))
  writeFileSync(join(p.files.dir('csi-d'), MODEL_FILE), '{}')
  await p.trainings.beginTraining('csi-e', 'csi')

  const usable = new Map<string, VersionMetaFile>()
  const report = await recoverVersions(p, usable)
  assert.deepEqual(report.removedTemp, [leftover.tempDir.split('/').pop()])
  assert.equal(existsSync(leftover.tempDir), false)
  assert.deepEqual(report.adopted, ['csi-c'])
  assert.deepEqual(report.broken.map((entry) => entry.version), ['csi-d'])
  assert.match(report.broken[0].reason, /ENOENT/)
  assert.deepEqual(report.fellBack, [])
  assert.deepEqual(report.interrupted.map((failure) => failure.version), ['csi-e'])
  assert.deepEqual([...usable.keys()].sort(), ['csi-a', 'csi-c'])
  assert.equal(await p.catalogue.has('csi-c'), true, 'the adopted folder now has its row')
  assert.equal((await p.catalogue.info('csi-c'))?.active, false)
  assert.equal(await p.catalogue.has('csi-d'), false)
})

test('a broken active version falls back to the last good activated one of its kind, or to none', async (t) => {
  const p = parts(t)
  await written(p, 'csi-good', 1)
  await written(p, 'csi-never-active', 2)
  await written(p, 'csi-bad', 3)
  await written(p, 'rssi-bad', 4, 'rssi')
  await p.catalogue.activate('csi-good', 'csi')
  // keeps the activation order unambiguous: stamps are to the millisecond
  await new Promise((resolve) => setTimeout(resolve, 5))
  await p.catalogue.activate('csi-bad', 'csi')
  await p.catalogue.activate('rssi-bad', 'rssi')
  for (const version of ['csi-bad', 'rssi-bad']) {
    const path = join(p.files.dir(version), WEIGHTS_FILE)
    const bytes = readFileSync(path)
    bytes[0] ^= 0xff
    writeFileSync(path, bytes)
  }

  const usable = new Map<string, VersionMetaFile>()
  const report = await recoverVersions(p, usable)
  assert.deepEqual(report.broken.map((entry) => entry.version), ['csi-bad', 'rssi-bad'])
  for (const entry of report.broken) assert.match(entry.reason, /SHA-256/)
  assert.deepEqual(report.fellBack, [{ kind: 'csi', from: 'csi-bad', to: 'csi-good' }, { kind: 'rssi', from: 'rssi-bad', to: undefined }])
  assert.equal(await p.catalogue.activeVersion('csi'), 'csi-good')
  assert.equal(await p.catalogue.activeVersion('rssi'), undefined)
  assert.deepEqual([...usable.keys()].sort(), ['csi-good', 'csi-never-active'])
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SqliteVersionCatalogue } from '../../../ml/store/version-catalogue.js'
import { tempDir } from '../../helper.js'
import { metaFileOf, migratedStorage, smallModel } from '../../fixtures/version.js'

test('an inserted version is listed, newest first, with its labels, accuracy and hash; none is active yet', async (t) => {
  const catalogue = new SqliteVersionCatalogue(migratedStorage(t, tempDir(t)).db)
  await catalogue.insert(metaFileOf('csi-old', smallModel(1), 'a'.repeat(64), '2025-01-01T00:00:00.000Z'))
  await catalogue.insert(metaFileOf('csi-new', smallModel(2), 'b'.repeat(64), '2025-02-01T00:00:00.000Z'))
  const rssi = smallModel(3, 'rssi')
  delete rssi.meta.evaluation
  await catalogue.insert(metaFileOf('rssi-x', rssi, 'c'.repeat(64), '2025-03-01T00:00:00.000Z'))

  assert.equal(await catalogue.has('csi-old'), true)
  assert.equal(await catalogue.has('csi-none'), false)
  assert.deepEqual((await catalogue.list()).map((v) => v.version), ['rssi-x', 'csi-new', 'csi-old'])
  assert.deepEqual((await catalogue.list('csi')).map((v) => v.version), ['csi-new', 'csi-old'])
  assert.deepEqual(await catalogue.recorded(), [
    { version: 'csi-old', weightsSha256: 'a'.repeat(64) },
    { version: 'csi-new', weightsSha256: 'b'.repeat(64) },
    { version: 'rssi-x', weightsSha256: 'c'.repeat(64) }
  ])
  assert.deepEqual(await catalogue.info('csi-new'), {
    version: 'csi-new',
    kind: 'csi',
    createdAt: '2025-02-01T00:00:00.000Z',
    active: false,
    labels: [0, 90],
    accuracy: 0.75,
    trainingSeconds: 2,
    weightsSha256: 'b'.repeat(64),
    scope: 'global'
  })
  assert.equal('accuracy' in (await catalogue.info('rssi-x') ?? {}), false, 'no evaluation, no accuracy key')
  assert.equal(await catalogue.info('csi-none'), undefined)
  assert.equal(await catalogue.activeVersion('csi'), undefined)
  assert.deepEqual(await catalogue.previouslyActive('csi'), [])
  await assert.rejects(catalogue.insert(metaFileOf('csi-old', smallModel(1))), /UNIQUE/)
})

test('activation is per kind and remembered; a fallback switches back without a new stamp, or clears the kind', async (t) => {
  const catalogue = new SqliteVersionCatalogue(migratedStorage(t, tempDir(t)).db)
  for (const version of ['csi-a', 'csi-b', 'csi-c']) await catalogue.insert(metaFileOf(version, smallModel()))
  await catalogue.insert(metaFileOf('rssi-a', smallModel(1, 'rssi')))
  await catalogue.activate('csi-a', 'csi')
  await catalogue.activate('rssi-a', 'rssi')
  await catalogue.activate('csi-b', 'csi')
  assert.equal(await catalogue.activeVersion('csi'), 'csi-b')
  assert.equal(await catalogue.activeVersion('rssi'), 'rssi-a')
  assert.deepEqual((await catalogue.list('csi')).filter((v) => v.active).map((v) => v.version), ['csi-b'])
  assert.deepEqual(await catalogue.previouslyActive('csi'), ['csi-b', 'csi-a'])

  await catalogue.fallBack('csi', 'csi-a')
  assert.equal(await catalogue.activeVersion('csi'), 'csi-a')
  assert.deepEqual(await catalogue.previouslyActive('csi'), ['csi-b', 'csi-a'], 'a fallback is no activation')
  await catalogue.fallBack('csi', undefined)
  assert.equal(await catalogue.activeVersion('csi'), undefined)
  assert.equal(await catalogue.activeVersion('rssi'), 'rssi-a')
  // the active row must name a recorded version
  await assert.rejects(catalogue.activate('csi-unrecorded', 'csi'), /FOREIGN KEY/)
})

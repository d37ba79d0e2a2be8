import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Storage } from '../../../core/storage.js'
import { ModelStore, WEIGHTS_FILE } from '../../../ml/store/model-store.js'
import { VersionCatalogue } from '../../../ml/store/version-catalogue.js'
import { tempDir } from '../../helper.js'
import { smallModel } from '../../fixtures/version.js'

/** A store on its own database handle, as a second process (the CLI) opens one. */
function openStore (t: TestContext, dataDir: string): ModelStore {
  const storage = new Storage(dataDir)
  t.after(() => storage.close())
  const store = new ModelStore(storage, dataDir)
  store.recover()
  return store
}

const listed = (store: ModelStore) => store.list().map((info) => [info.version, info.active])

test('two handles on one DATA_DIR see each other\'s versions and the same active one, whoever wrote them', async (t) => {
  const dataDir = tempDir(t)
  const server = openStore(t, dataDir)
  const cli = openStore(t, dataDir)

  await server.write('csi-a', smallModel(1), new Date('2025-01-01T00:00:00Z'))
  server.activate('csi-a')
  assert.deepEqual(listed(cli), [['csi-a', true]])

  await cli.write('csi-b', smallModel(2), new Date('2025-01-02T00:00:00Z'))
  cli.activate('csi-b')
  // the reads that went wrong before: the other's version missing, the old one still flagged, activate a 404
  assert.deepEqual(listed(server), [['csi-b', true], ['csi-a', false]])
  assert.equal(server.activeVersion('csi'), 'csi-b')
  assert.equal(server.info('csi-b')?.active, true)
  assert.ok(server.versionDir('csi-b'))
  assert.equal((await server.load('csi-b')).info.version, 'csi-b')
  server.activate('csi-a')
  assert.deepEqual(listed(cli), [['csi-b', false], ['csi-a', true]])
})

test('a version recorded elsewhere whose folder does not verify is not listed, loaded or activated', async (t) => {
  const dataDir = tempDir(t)
  const server = openStore(t, dataDir)
  const other = new Storage(dataDir)
  t.after(() => other.close())
  const otherStore = new ModelStore(other, dataDir)
  otherStore.recover()
  await otherStore.write('csi-bad', smallModel(3))
  // the weights change on disk after the other handle recorded them
  writeFileSync(join(dataDir, 'models', 'csi-bad', WEIGHTS_FILE), 'not the weights')
  new VersionCatalogue(other.db).activate('csi-bad', 'csi')

  assert.deepEqual(listed(server), [])
  assert.equal(server.info('csi-bad'), undefined)
  assert.equal(server.activeVersion('csi'), undefined)
  assert.equal(server.activeVersion('csi', false), 'csi-bad', 'the row is there; only usable versions count')
  assert.throws(() => server.activate('csi-bad'), /no usable model version csi-bad/)
})

import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Storage } from '../../../core/storage.js'
import { ModelStore, WEIGHTS_FILE } from '../../../ml/store/model-store.js'
import { SqliteVersionCatalogue } from '../../../ml/store/version-catalogue.js'
import { tempDir } from '../../helper.js'
import { smallModel } from '../../fixtures/version.js'

/** A store on its own database handle, as a second process (the CLI) opens one. */
async function openStore (t: TestContext, dataDir: string): Promise<ModelStore> {
  const storage = new Storage(dataDir)
  t.after(() => storage.close())
  const store = new ModelStore(storage, dataDir)
  await store.recover()
  return store
}

const listed = async (store: ModelStore) => (await store.list()).map((info) => [info.version, info.active])

test('two handles on one DATA_DIR see each other\'s versions and the same active one, whoever wrote them', async (t) => {
  const dataDir = tempDir(t)
  const server = await openStore(t, dataDir)
  const cli = await openStore(t, dataDir)

  await server.write('csi-a', smallModel(1), new Date('2025-01-01T00:00:00Z'))
  await server.activate('csi-a')
  assert.deepEqual(await listed(cli), [['csi-a', true]])

  await cli.write('csi-b', smallModel(2), new Date('2025-01-02T00:00:00Z'))
  await cli.activate('csi-b')
  // the reads that went wrong before: the other's version missing, the old one still flagged, activate a 404
  assert.deepEqual(await listed(server), [['csi-b', true], ['csi-a', false]])
  assert.equal(await server.activeVersion('csi'), 'csi-b')
  assert.equal((await server.info('csi-b'))?.active, true)
  assert.ok(await server.versionDir('csi-b'))
  assert.equal((await server.load('csi-b')).info.version, 'csi-b')
  await server.activate('csi-a')
  assert.deepEqual(await listed(cli), [['csi-b', false], ['csi-a', true]])
})

test('a version recorded elsewhere whose folder does not verify is not listed, loaded or activated', async (t) => {
  const dataDir = tempDir(t)
  const server = await openStore(t, dataDir)
  const other = new Storage(dataDir)
  t.after(() => other.close())
  const otherStore = new ModelStore(other, dataDir)
  await otherStore.recover()
  await otherStore.write('csi-bad', smallModel(3))
  // the weights change on disk after the other handle recorded them
  writeFileSync(join(dataDir, 'models', 'csi-bad', WEIGHTS_FILE), 'not the weights')
  await new SqliteVersionCatalogue(other.db).activate('csi-bad', 'csi')

  assert.deepEqual(await listed(server), [])
  assert.equal(await server.info('csi-bad'), undefined)
  assert.equal(await server.activeVersion('csi'), undefined)
  assert.equal(await server.activeVersion('csi', false), 'csi-bad', 'the row is there; only usable versions count')
  await assert.rejects(server.activate('csi-bad'), /no usable model version csi-bad/)
})

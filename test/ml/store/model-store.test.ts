import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Storage } from '../../../core/storage.js'
import { META_FILE, MODEL_FILE, ModelStore, sha256, TEMP_PREFIX, WEIGHTS_FILE, type VersionMetaFile } from '../../../ml/store/model-store.js'
import type { ModelMeta } from '../../../ml/model-types.js'
import type { TrainedModel } from '../../../ml/model-types.js'
import { tempDir } from '../../helper.js'
import { trainSmall } from '../../fixtures/training.js'

let trained: TrainedModel | undefined
/** One small real model, trained once for the whole file. */
async function model (): Promise<TrainedModel> {
  trained ??= await trainSmall(15)
  return trained
}

/** A store on `dataDir` as a fresh process would open it. */
function openStore (dataDir: string): { store: ModelStore, close: () => void } {
  const storage = new Storage(dataDir)
  return { store: new ModelStore(storage, dataDir), close: () => storage.close() }
}

/** A store holding one written and activated version, as before a crash. */
async function storeWithActiveVersion (dataDir: string): Promise<{ first: ReturnType<typeof openStore>, old: string }> {
  const first = openStore(dataDir)
  await first.store.recover()
  const old = await first.store.newVersionName('csi')
  await first.store.write(old, await model())
  await first.store.activate(old)
  return { first, old }
}

test('a version is a folder with model.json, weights.bin and meta.json (stats, labels, options, evaluation, SHA-256)', async (t) => {
  const dataDir = tempDir(t)
  const { store, close } = openStore(dataDir)
  t.after(close)
  await store.recover()
  const trainedModel = await model()
  const version = await store.newVersionName('csi', new Date('2025-11-25T18:37:00.123Z'))
  assert.equal(version, 'csi-20251125-183700-123')
  const info = await store.write(version, trainedModel)

  const dir = join(dataDir, 'models', version)
  assert.deepEqual(readdirSync(dir).sort(), [META_FILE, MODEL_FILE, WEIGHTS_FILE].sort())
  const weights = readFileSync(join(dir, WEIGHTS_FILE))
  const meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as VersionMetaFile<ModelMeta>
  assert.equal(meta.weightsSha256, sha256(weights))
  assert.equal(info.weightsSha256, sha256(weights))
  assert.deepEqual(meta.meta.standardisation, JSON.parse(JSON.stringify(trainedModel.meta.standardisation)))
  assert.equal(meta.meta.standardisation.mean.length, trainedModel.meta.inputSize)
  assert.deepEqual(meta.meta.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(meta.meta.options.epochs, 3)
  assert.equal(meta.meta.evaluation?.accuracy, trainedModel.meta.evaluation?.accuracy)
  const modelJson = JSON.parse(readFileSync(join(dir, MODEL_FILE), 'utf8')) as { weightsManifest: Array<{ paths: string[] }>, modelTopology: unknown }
  assert.deepEqual(modelJson.weightsManifest.map((group) => group.paths), [[WEIGHTS_FILE]])
  assert.ok(modelJson.modelTopology)

  // written, listed, not yet active
  assert.equal(info.active, false)
  assert.equal(await store.activeVersion('csi'), undefined)
  assert.deepEqual((await store.list()).map((v) => v.version), [version])
  assert.equal((await store.activate(version)).active, true)
  assert.equal(await store.activeVersion('csi'), version)

  const loaded = await store.load(version)
  assert.deepEqual(Buffer.from(loaded.artifacts.weightData as ArrayBuffer), weights)
  assert.deepEqual(loaded.artifacts.weightSpecs, trainedModel.artifacts.weightSpecs)
  assert.deepEqual(loaded.meta.standardisation, meta.meta.standardisation)
  assert.equal(await store.versionDir(version), dir)
  assert.equal(await store.versionDir('csi-unknown'), undefined)
})

test('a crash between writing and renaming leaves the old version active; start-up removes the temp folder and ignores a half-written one', async (t) => {
  const dataDir = tempDir(t)
  const { first, old } = await storeWithActiveVersion(dataDir)
  // the crash: the next version is complete in its temp folder, never renamed
  const staged = await first.store.stage(await first.store.newVersionName('csi', new Date(Date.now() + 1000)), await model())
  assert.ok(staged.tempDir.includes(TEMP_PREFIX))
  first.close()
  // and debris no write of ours can make, but a disk can: a version folder with one file
  const halfWritten = join(dataDir, 'models', 'csi-20990101-000000-000')
  mkdirSync(halfWritten)
  writeFileSync(join(halfWritten, MODEL_FILE), '{"modelTopology":')

  const second = openStore(dataDir)
  t.after(second.close)
  const report = await second.store.recover()
  assert.deepEqual(report.removedTemp, [staged.tempDir.split('/').pop()])
  assert.equal(existsSync(staged.tempDir), false)
  assert.deepEqual(report.broken.map((entry) => entry.version), ['csi-20990101-000000-000'])
  assert.deepEqual(report.adopted, [])
  assert.equal(await second.store.activeVersion('csi'), old)
  assert.deepEqual((await second.store.list()).map((v) => v.version), [old])
  assert.equal(await second.store.versionDir('csi-20990101-000000-000'), undefined)
  await second.store.load(old)
})

test('a crash after the rename but before the row: start-up lists the complete version, the old one stays active', async (t) => {
  const dataDir = tempDir(t)
  const { first, old } = await storeWithActiveVersion(dataDir)
  const staged = await first.store.stage(await first.store.newVersionName('csi', new Date(Date.now() + 1000)), await model())
  renameSync(staged.tempDir, join(dataDir, 'models', staged.file.version))
  first.close()

  const second = openStore(dataDir)
  t.after(second.close)
  const report = await second.store.recover()
  assert.deepEqual(report.adopted, [staged.file.version])
  assert.equal(await second.store.activeVersion('csi'), old)
  assert.deepEqual((await second.store.list()).map((v) => [v.version, v.active]), [[staged.file.version, false], [old, true]])
  const loaded = await second.store.load(staged.file.version)
  assert.equal(loaded.info.weightsSha256, staged.file.weightsSha256)
})

test('an active version whose weights no longer match their hash is ignored: the last good active version takes over', async (t) => {
  const dataDir = tempDir(t)
  const first = openStore(dataDir)
  await first.store.recover()
  const good = await first.store.newVersionName('csi')
  await first.store.write(good, await model())
  await first.store.activate(good)
  const damaged = await first.store.newVersionName('csi', new Date(Date.now() + 1000))
  await first.store.write(damaged, await model())
  await first.store.activate(damaged)
  await assert.rejects(first.store.activate('csi-nonexistent'), /no usable model version csi-nonexistent/)
  first.close()
  const weights = join(dataDir, 'models', damaged, WEIGHTS_FILE)
  const bytes = readFileSync(weights)
  bytes[0] ^= 0xff
  writeFileSync(weights, bytes)

  const second = openStore(dataDir)
  t.after(second.close)
  const report = await second.store.recover()
  assert.deepEqual(report.broken.map((entry) => entry.version), [damaged])
  assert.match(report.broken[0].reason, /SHA-256/)
  assert.deepEqual(report.fellBack, [{ kind: 'csi', from: damaged, to: good }])
  assert.equal(await second.store.activeVersion('csi'), good)
  assert.deepEqual((await second.store.list()).map((v) => v.version), [good])
})

test('a training left "running" by a crash is reported as interrupted at the next start', async (t) => {
  const dataDir = tempDir(t)
  const first = openStore(dataDir)
  await first.store.recover()
  const finished = await first.store.beginTraining('csi-a', 'csi')
  await first.store.endTraining(finished, 'finished', 12.5)
  await first.store.beginTraining('csi-b', 'csi')
  assert.equal(await first.store.lastFailure(), undefined)
  first.close()

  const second = openStore(dataDir)
  t.after(second.close)
  const report = await second.store.recover()
  assert.equal(report.interrupted.length, 1)
  assert.equal(report.interrupted[0].version, 'csi-b')
  assert.match(report.interrupted[0].message, /interrupted/)
  assert.deepEqual(await second.store.lastFailure(), report.interrupted[0])
  assert.equal(await second.store.lastTrainingSeconds(), 12.5)
  // a later successful run clears the failure
  await second.store.endTraining(await second.store.beginTraining('csi-c', 'csi'), 'finished', 3)
  assert.equal(await second.store.lastFailure(), undefined)
  assert.equal(await second.store.lastTrainingSeconds(), 3)
})

test('kill -9 at any moment of a stream of writes leaves only complete versions and a good active one', async (t) => {
  const dataDir = tempDir(t)
  const trainedModel = await model()
  const modelFile = join(dataDir, 'model-fixture.json')
  const weights = Buffer.from(trainedModel.artifacts.weightData as ArrayBuffer)
  writeFileSync(modelFile, JSON.stringify({ artifacts: { ...trainedModel.artifacts, weightData: weights.toString('base64') }, meta: trainedModel.meta }))
  const child = new URL('../../fixtures/write-versions-child.ts', import.meta.url).pathname
  const rounds = [40, 95, 150]
  let written = 0
  for (const [round, delayAfterFirst] of rounds.entries()) {
    const writer = spawn(process.execPath, ['--import', 'tsx', child, dataDir, modelFile], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.after(() => writer.kill('SIGKILL'))
    const exited = new Promise((resolve) => writer.once('exit', resolve))
    // kill it mid-stream: some time after its first version of this round
    await new Promise<void>((resolve) => {
      writer.stdout.on('data', function first (chunk: Buffer) {
        written += chunk.toString().split('\n').filter((line) => line.startsWith('wrote')).length
        writer.stdout.off('data', first)
        setTimeout(resolve, delayAfterFirst + round * 7)
      })
    })
    writer.kill('SIGKILL')
    await exited

    const { store, close } = openStore(dataDir)
    try {
      const report = await store.recover()
      t.diagnostic(`round ${round}: ${report.removedTemp.length} temp folder(s) of an interrupted write removed, ${report.adopted.length} adopted`)
      assert.deepEqual(report.broken, [], `round ${round}: no version may be broken`)
      const versions = await store.list()
      assert.ok(versions.length >= round + 1)
      for (const version of versions) await store.load(version.version)
      assert.ok(await store.activeVersion('csi'), 'a version is active')
      assert.deepEqual(readdirSync(join(dataDir, 'models')).filter((name) => name.startsWith(TEMP_PREFIX)), [])
    } finally {
      close()
    }
  }
  assert.ok(written >= rounds.length)
})

test('a version exported on one store imports into another byte for byte (listed, loadable); a bundle that is not whole is refused', async (t) => {
  const source = openStore(tempDir(t))
  const target = openStore(tempDir(t))
  t.after(() => { source.close(); target.close() })
  await source.store.recover()
  await target.store.recover()
  const version = await source.store.newVersionName('csi')
  const written = await source.store.write(version, await model(), new Date('2025-11-25T18:37:00.000Z'))
  const bundle = await source.store.exportVersion(version)

  const tampered = Uint8Array.from(bundle.weights)
  tampered[0] ^= 1
  await assert.rejects(target.store.importVersion(version, { ...bundle, weights: tampered }), /weights SHA-256/)
  await assert.rejects(target.store.importVersion('csi-other', bundle), /names version/)
  assert.deepEqual(await target.store.list(), [], 'nothing half-imported is listed')

  const imported = await target.store.importVersion(version, bundle)
  assert.equal(imported.weightsSha256, written.weightsSha256)
  assert.equal(imported.createdAt, written.createdAt)
  assert.equal(imported.active, false, 'imported, not activated')
  for (const file of [MODEL_FILE, WEIGHTS_FILE, META_FILE]) {
    assert.deepEqual(readFileSync(join(target.store.modelsDir, version, file)), readFileSync(join(source.store.modelsDir, version, file)), file)
  }
  assert.equal((await target.store.load(version)).info.version, version)
  await assert.rejects(target.store.importVersion(version, bundle), /exists already/)
})

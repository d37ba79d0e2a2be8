import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  checkVersionName, joinWeightData, META_FILE, MODEL_FILE, sha256, TEMP_PREFIX, VersionFiles, WEIGHTS_FILE, type VersionMetaFile
} from '../../../ml/store/version-files.js'
import { tempDir } from '../../helper.js'
import { smallModel } from '../../fixtures/version.js'

test('stage writes a complete temp folder; commit renames it into place; load reads the same artifacts back', async (t) => {
  const files = new VersionFiles(join(tempDir(t), 'models'))
  const model = smallModel(3)
  const staged = await files.stage('csi-a', model, new Date('2025-11-25T18:37:00.123Z'))
  assert.ok(staged.tempDir.startsWith(join(files.modelsDir, `${TEMP_PREFIX}csi-a-`)))
  assert.deepEqual(readdirSync(staged.tempDir).sort(), [META_FILE, MODEL_FILE, WEIGHTS_FILE].sort())
  assert.equal(files.exists('csi-a'), false, 'not in place before the commit')
  const weights = joinWeightData(model.artifacts.weightData)
  assert.deepEqual(staged.file, {
    version: 'csi-a', kind: 'csi', createdAt: '2025-11-25T18:37:00.123Z', weightsFile: WEIGHTS_FILE, weightsSha256: sha256(weights), meta: model.meta
  })

  await files.commit(staged)
  assert.equal(existsSync(staged.tempDir), false)
  assert.equal(files.exists('csi-a'), true)
  const onDisk = JSON.parse(readFileSync(join(files.dir('csi-a'), META_FILE), 'utf8')) as VersionMetaFile
  assert.deepEqual(onDisk, staged.file)
  assert.deepEqual(files.verify('csi-a'), staged.file)
  assert.deepEqual(files.verify('csi-a', staged.file.weightsSha256), staged.file)

  const artifacts = await files.load(staged.file)
  assert.deepEqual(Buffer.from(artifacts.weightData as ArrayBuffer), weights)
  assert.deepEqual(artifacts.weightSpecs, model.artifacts.weightSpecs)
  assert.deepEqual(artifacts.modelTopology, model.artifacts.modelTopology)
  assert.equal(artifacts.format, 'layers-model')
  assert.equal(artifacts.generatedBy, 'version-fixture')
  assert.equal(artifacts.convertedBy, null)
})

test('verify says why a folder is unusable; load refuses weights changed after verification', async (t) => {
  const files = new VersionFiles(join(tempDir(t), 'models'))
  const staged = await files.stage('csi-a', smallModel())
  await files.commit(staged)

  assert.match(files.verify('csi-a', '0'.repeat(64)) as string, /does not match the database/)
  assert.match(files.verify('csi-missing') as string, /ENOENT/)
  // a folder renamed by hand still names its old version inside
  await files.commit(await files.stage('csi-b', smallModel(2)))
  const meta = JSON.parse(readFileSync(join(files.dir('csi-b'), META_FILE), 'utf8')) as VersionMetaFile
  writeFileSync(join(files.dir('csi-b'), META_FILE), JSON.stringify({ ...meta, version: 'csi-c' }))
  assert.equal(files.verify('csi-b'), 'meta.json names version "csi-c"')

  const weightsPath = join(files.dir('csi-a'), WEIGHTS_FILE)
  const bytes = readFileSync(weightsPath)
  bytes[0] ^= 0xff
  writeFileSync(weightsPath, bytes)
  assert.match(files.verify('csi-a') as string, /does not match meta\.json/)
  await assert.rejects(files.load(staged.file), /model version csi-a: weights SHA-256 is [0-9a-f]{64}, meta.json says/)
})

test('temp folders are removed; only unrecorded folders with version names are listed', async (t) => {
  const files = new VersionFiles(join(tempDir(t), 'models'))
  const staged = await files.stage('csi-a', smallModel())
  await files.commit(await files.stage('csi-b', smallModel(2)))
  await files.commit(await files.stage('csi-c', smallModel(3)))
  mkdirSync(join(files.modelsDir, 'Not_A_Version'))
  writeFileSync(join(files.modelsDir, 'csi-file'), 'a stray file, not a folder')

  assert.deepEqual(files.removeTempFolders(), [staged.tempDir.split('/').pop()])
  assert.equal(existsSync(staged.tempDir), false)
  assert.deepEqual(files.removeTempFolders(), [])
  assert.deepEqual(files.unrecordedFolders(new Set(['csi-b'])), ['csi-c'])
})

test('version names are checked before any path is built from them', async (t) => {
  const files = new VersionFiles(join(tempDir(t), 'models'))
  for (const bad of ['../../escape', '', 'UPPER', '-leading', 'a'.repeat(81)]) {
    assert.throws(() => checkVersionName(bad), /bad version name/)
    await assert.rejects(files.stage(bad, smallModel()), /bad version name/)
  }
  checkVersionName('csi-20251125-183700-123')
  assert.deepEqual(readdirSync(files.modelsDir), [])
})

test('joinWeightData joins the several buffers tfjs may hand over', () => {
  const a = new Uint8Array([1, 2]).buffer
  const b = new Uint8Array([3]).buffer
  assert.deepEqual(joinWeightData([a, b]), Buffer.from([1, 2, 3]))
  assert.deepEqual(joinWeightData(a), Buffer.from([1, 2]))
  assert.deepEqual(joinWeightData(undefined), Buffer.alloc(0))
  assert.equal(sha256(Buffer.alloc(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadBackend } from '../../ml/backend.js'
import { META_FILE, MODEL_FILE, WEIGHTS_FILE, type VersionMetaFile } from '../../ml/store/model-store.js'
import type { ModelMeta } from '../../ml/model-types.js'
import { Predictor } from '../../ml/global/predictor.js'
import { buildTestApp, tempDir } from '../helper.js'
import { sessionSlice, trainThrough } from '../fixtures/training.js'

/** A version's files read back as the store wrote them. */
function readVersion (dir: string) {
  const json = JSON.parse(readFileSync(join(dir, MODEL_FILE), 'utf8')) as { modelTopology: object, weightsManifest: Array<{ weights: [] }> }
  const weights = readFileSync(join(dir, WEIGHTS_FILE))
  const file = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as VersionMetaFile<ModelMeta>
  return {
    meta: file.meta,
    artifacts: {
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength)
    }
  }
}

test('the standardisation statistics are stored with the version and reused after a restart', async (t) => {
  const dataDir = tempDir(t)
  const frames = sessionSlice(3, 200).map((row) => row.features)

  const first = await buildTestApp(t, {}, { dataDir })
  const version = await trainThrough(first, 30, { epochs: 4, seed: 11 })
  const before = first.model.predict(frames)
  const dir = await first.model.versionDir(version) as string
  await first.close()

  const { meta, artifacts } = readVersion(dir)
  assert.equal(meta.standardisation.mean.length, meta.inputSize)
  assert.equal(meta.standardisation.std.length, meta.inputSize)
  assert.ok(meta.standardisation.std.some((std) => Math.abs(std - 1) > 0.1), 'real statistics, not an identity')

  const second = await buildTestApp(t, {}, { dataDir })
  assert.equal(second.model.state, 'FINISHED_TRAINING')
  assert.equal(second.model.active?.version, version)
  const after = second.model.predict(frames)
  assert.deepEqual(after, before, 'the reloaded version answers exactly as before the restart')

  // the stored statistics are the ones in use: the same weights without them answer differently
  const { tf } = await loadBackend('cpu')
  const fromFiles = await Predictor.load(tf, artifacts, meta)
  const identity = { mean: meta.standardisation.mean.map(() => 0), std: meta.standardisation.std.map(() => 1) }
  const unstandardised = await Predictor.load(tf, artifacts, { ...meta, standardisation: identity })
  try {
    assert.deepEqual(fromFiles.predict(frames), after.predictions)
    assert.notDeepEqual(unstandardised.predict(frames).map((p) => p.probabilities), after.predictions.map((p) => p.probabilities))
  } finally {
    fromFiles.dispose()
    unstandardised.dispose()
  }
})

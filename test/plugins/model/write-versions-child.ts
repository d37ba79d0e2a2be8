/**
 * Test child: writes model versions into DATA_DIR (argv[2]) as fast as it can,
 * activating each, until it is killed. The model comes from a JSON file
 * (argv[3]) holding a trained model's artifacts (weights base64) and meta.
 * Prints "wrote <version>" after each version.
 */
import { readFileSync } from 'node:fs'
import { Storage } from '../../../core/storage.js'
import { ModelStore } from '../../../plugins/model/model-store.js'
import type { TrainedModel } from '../../../plugins/model/trainer.js'

const [dataDir, modelFile] = process.argv.slice(2)
const stored = JSON.parse(readFileSync(modelFile, 'utf8')) as { artifacts: TrainedModel['artifacts'] & { weightData: string }, meta: TrainedModel['meta'] }
const weights = Buffer.from(stored.artifacts.weightData, 'base64')
const model: TrainedModel = {
  artifacts: { ...stored.artifacts, weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) },
  meta: stored.meta
}
const store = new ModelStore(new Storage(dataDir), dataDir)
store.recover()
for (;;) {
  const version = store.newVersionName('csi')
  await store.write(version, model)
  store.activate(version)
  process.stdout.write(`wrote ${version}\n`)
}

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { App } from '../../../core/app.js'
import { loadBackend } from '../../../ml/backend.js'
import { Predictor } from '../../../ml/global/predictor.js'
import type { ModelMeta } from '../../../ml/model-types.js'
import type { Evaluation, ModelVersionInfo, TrainingProgress } from '../../../schemas/model.js'
import type { ModelList } from '../../../schemas/training.js'
import { ADMIN, buildTestApp } from '../../helper.js'
import { sessionCsv, sessionSlice } from '../../fixtures/training.js'

/** What the test reads of an answer (the subset of app.inject's response it uses). */
interface HttpAnswer {
  statusCode: number
  headers: Record<string, string>
  body: string
  rawPayload: Buffer
  json: <T = Record<string, unknown>>() => T
}

/**
 * One request over a real socket to the app's listening server (app.inject's
 * call shape): an object payload is sent as JSON, a string as it is.
 */
async function inject (
  app: App,
  options: { method: 'GET' | 'POST', url: string, headers?: Record<string, string>, payload?: string | object }
): Promise<HttpAnswer> {
  const { port } = app.server.address() as AddressInfo
  const headers: Record<string, string> = { ...options.headers }
  let body: string | undefined
  if (typeof options.payload === 'string') body = options.payload
  else if (options.payload !== undefined) {
    body = JSON.stringify(options.payload)
    headers['content-type'] ??= 'application/json'
  }
  const response = await fetch(`http://127.0.0.1:${port}${options.url}`, { method: options.method, headers, body })
  const rawPayload = Buffer.from(await response.arrayBuffer())
  const text = rawPayload.toString('utf8')
  return {
    statusCode: response.status,
    headers: Object.fromEntries(response.headers),
    body: text,
    rawPayload,
    json: <T>() => JSON.parse(text) as T
  }
}

test('end to end over HTTP on a listening server: import a slice of session A, train in the worker, download the version, classify frames', async (t) => {
  const app = await buildTestApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const imported = await inject(app, {
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(40))
  })
  assert.equal(imported.statusCode, 200, imported.body)
  assert.equal(imported.json().imported, 280)

  const accepted = await inject(app, { method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { epochs: 6, seed: 4 } })
  assert.equal(accepted.statusCode, 202, accepted.body)
  const { version, samples, kind, state } = accepted.json<{ version: string, samples: number, kind: string, state: string }>()
  assert.equal(samples, 280)
  assert.equal(kind, 'csi')
  assert.ok(['START_TRAINING', 'TRAINING_IN_PROGRESS'].includes(state))
  const busy = await inject(app, { method: 'POST', url: '/training/post/train', headers: ADMIN, payload: {} })
  assert.equal(busy.statusCode, 409)
  assert.equal(busy.json().code, 'DS_TRAINING_BUSY')
  const during = await inject(app, { method: 'GET', url: '/training/get/training_status' })
  assert.ok(['START_TRAINING', 'TRAINING_IN_PROGRESS', 'FINISHED_TRAINING'].includes(during.body), during.body)
  const rollbackDuring = await inject(app, { method: 'POST', url: '/training/post/activate', headers: ADMIN, payload: { version } })
  assert.ok([409, 404].includes(rollbackDuring.statusCode))

  await app.model.waitForTraining()
  assert.equal((await inject(app, { method: 'GET', url: '/training/get/training_status' })).body, 'FINISHED_TRAINING')
  assert.ok(Number((await inject(app, { method: 'GET', url: '/training/get/training_time' })).body) > 0)
  const progress = (await inject(app, { method: 'GET', url: '/training/get/progress' })).json<TrainingProgress>()
  assert.equal(progress.state, 'FINISHED_TRAINING')
  assert.equal(progress.version, version)
  assert.equal(progress.epoch, 6)
  assert.equal(progress.epochs, 6)
  assert.ok(progress.loss !== undefined && progress.accuracy !== undefined && progress.validationAccuracy !== undefined)

  const evaluation = (await inject(app, { method: 'GET', url: '/training/get/evaluation' })).json<{ version: string, evaluation: Evaluation }>()
  assert.equal(evaluation.version, version)
  assert.deepEqual(evaluation.evaluation.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(evaluation.evaluation.testRows, 56, 'the blocked hold-out: the last 20 % of each label')
  assert.equal(evaluation.evaluation.confusion.flat().reduce((a, b) => a + b, 0), 56)

  const models = (await inject(app, { method: 'GET', url: '/training/get/models' })).json<ModelList>()
  assert.equal(models.active, version)
  const info = models.versions.find((candidate) => candidate.version === version) as ModelVersionInfo
  assert.equal(info.active, true)
  assert.equal(info.accuracy, evaluation.evaluation.accuracy)

  // the download: model.json + weights.bin load in tfjs; the weights match their published SHA-256
  const modelJson = await inject(app, { method: 'GET', url: `/training/get/model/${version}/model.json` })
  assert.equal(modelJson.statusCode, 200)
  assert.match(modelJson.headers['content-type'] as string, /^application\/json/)
  assert.equal(modelJson.headers['x-weights-sha256'], info.weightsSha256)
  const weights = await inject(app, { method: 'GET', url: `/training/get/model/${version}/weights.bin` })
  assert.equal(weights.statusCode, 200)
  assert.equal(weights.headers['content-type'], 'application/octet-stream')
  assert.equal(createHash('sha256').update(weights.rawPayload).digest('hex'), info.weightsSha256)
  assert.equal(weights.headers['x-weights-sha256'], info.weightsSha256)
  assert.equal(Number(weights.headers['content-length']), weights.rawPayload.length)
  const meta = (await inject(app, { method: 'GET', url: `/training/get/model/${version}/meta.json` })).json<{ meta: ModelMeta }>().meta
  const manifest = modelJson.json<{ modelTopology: object, weightsManifest: Array<{ paths: string[], weights: [] }> }>()
  assert.deepEqual(manifest.weightsManifest[0].paths, ['weights.bin'])

  // classify over HTTP: the legacy route answers from the new version, as the downloaded files do
  const frames = sessionSlice(1, 300)
  const { tf } = await loadBackend('cpu')
  const downloaded = await Predictor.load(tf, {
    modelTopology: manifest.modelTopology,
    weightSpecs: manifest.weightsManifest.flatMap((group) => group.weights),
    weightData: new Uint8Array(weights.rawPayload).buffer
  }, meta)
  t.after(() => downloaded.dispose())
  const expected = downloaded.predict(frames.map((row) => row.features))
  for (const [i, row] of frames.entries()) {
    const answer = await inject(app, { method: 'POST', url: '/ml/post/inference', payload: { payload: `[${Array.from(row.features).join(', ')}]`, ID: 1 } })
    assert.equal(answer.statusCode, 200, answer.body)
    const body = answer.json<{ angle: number, state: string, probabilities: number[], version: string }>()
    assert.equal(body.version, version)
    assert.equal(body.angle, expected[i].angle)
    assert.equal(body.state, body.angle === 0 ? 'closed' : 'open')
    assert.equal(body.probabilities.length, 7)
    for (const [c, p] of body.probabilities.entries()) assert.ok(Math.abs(p - expected[i].probabilities[c]) < 1e-6)
  }
})

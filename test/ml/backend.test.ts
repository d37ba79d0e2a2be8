import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from '../../core/app.js'
import { AUTO_ORDER, BACKEND_PACKAGES, BackendUnavailableError, chooseBackend } from '../../ml/backend.js'
import { buildTestApp, tempDir, testConfig } from '../helper.js'

/** Whether a package can be resolved from here (the native ones are optional and absent on this machine). */
function installed (name: string): boolean {
  try {
    import.meta.resolve(name)
    return true
  } catch {
    return false
  }
}

test('auto tries gpu, then node, then the pure-JS cpu backend', () => {
  assert.deepEqual(AUTO_ORDER, ['gpu', 'node', 'cpu'])
  assert.equal(BACKEND_PACKAGES.gpu, '@tensorflow/tfjs-node-gpu')
  assert.equal(BACKEND_PACKAGES.node, '@tensorflow/tfjs-node')
  assert.equal(BACKEND_PACKAGES.cpu, '@tensorflow/tfjs')
})

test('auto picks the first backend that loads (cpu when no native package is installed) and logs it', async () => {
  const logged: Array<{ object: object, message: string }> = []
  const log = { info: (object: object, message: string) => { logged.push({ object, message }) }, debug: () => {}, warn: () => {}, error: () => {} }
  const chosen = await chooseBackend('auto', log)
  const expected = AUTO_ORDER.find((name) => installed(BACKEND_PACKAGES[name]))
  assert.equal(chosen.name, expected)
  if (expected === 'cpu') {
    assert.equal(chosen.info.backend, 'cpu')
    assert.equal(chosen.native, false)
    assert.equal(chosen.tf.getBackend(), 'cpu')
  }
  assert.equal(chosen.info.requested, 'auto')
  assert.match(chosen.info.tfjsVersion, /^\d+\.\d+\.\d+/)
  assert.equal(logged.length, 1)
  assert.match(logged[0].message, /backend chosen/)
  assert.deepEqual(logged[0].object, { backend: chosen.info.backend, package: chosen.info.package, tfjsVersion: chosen.info.tfjsVersion, requested: 'auto' })
})

test('TF_BACKEND=cpu forces the pure-JS backend', async () => {
  const chosen = await chooseBackend('cpu')
  assert.deepEqual(chosen.info, { requested: 'cpu', backend: 'cpu', package: '@tensorflow/tfjs', tfjsVersion: chosen.tf.version.tfjs })
})

for (const name of ['node', 'gpu'] as const) {
  test(`a forced TF_BACKEND=${name} that cannot load is an error naming ${BACKEND_PACKAGES[name]}`, { skip: installed(BACKEND_PACKAGES[name]) && `${BACKEND_PACKAGES[name]} is installed here` }, async () => {
    await assert.rejects(chooseBackend(name), (err: unknown) => {
      assert.ok(err instanceof BackendUnavailableError)
      assert.ok(err.message.includes(`TF_BACKEND=${name}`), err.message)
      assert.ok(err.message.includes(`${BACKEND_PACKAGES[name]} cannot be loaded`), err.message)
      return true
    })
  })
}

test('the app refuses to start with TF_BACKEND=node when @tensorflow/tfjs-node is missing', { skip: installed('@tensorflow/tfjs-node') && 'tfjs-node is installed here' }, async (t) => {
  const dataDir = tempDir(t)
  // buildApp awaits each area's registration, so the model area's error surfaces there
  await assert.rejects(buildApp(testConfig(dataDir, { TF_BACKEND: 'node' })), /TF_BACKEND=node but @tensorflow\/tfjs-node cannot be loaded/)
})

test('the app reports the chosen backend through fastify.model', async (t) => {
  const app = await buildTestApp(t, { TF_BACKEND: 'auto' })
  assert.equal(app.model.backend.requested, 'auto')
  assert.equal(app.model.backend.package, BACKEND_PACKAGES[AUTO_ORDER.find((name) => installed(BACKEND_PACKAGES[name])) ?? 'cpu'])
})

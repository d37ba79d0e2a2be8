/**
 * One DATA_DIR, two processes: the CLI must not write where a live server
 * writes (it refuses, or sends the work through the server with --server),
 * and a server's view of the model versions follows the database whoever
 * wrote it.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { pidFilePath } from '../../core/pid-file.js'
import { DATABASE_FILE, Storage } from '../../core/storage.js'
import { ModelStore } from '../../ml/store/model-store.js'
import type { TrainedModel } from '../../ml/model-types.js'
import { run as runImport } from '../../bin/commands/import.js'
import { run as runTrain, type TrainSummary } from '../../bin/commands/train.js'
import type { BatchResponse } from '../../schemas/inference.js'
import type { DatasetSummary, ModelList } from '../../schemas/training.js'
import { ADMIN, ADMIN_TOKEN, buildTestApp, tempDir } from '../helper.js'
import { listeningUrl, spawnServe } from '../fixtures/serve-process.js'
import { sessionCsv, sessionSlice, trainSmall } from '../fixtures/training.js'
import { stringified } from '../fixtures/frames.js'

/** Captures what a command writes. */
function io (env: Record<string, string>) {
  const out = { stdout: '', stderr: '' }
  return {
    out,
    io: { stdout: { write: (text: string) => { out.stdout += text } }, stderr: { write: (text: string) => { out.stderr += text } }, env }
  }
}

function csvFile (dir: string, name: string, perLabel: number, skip = 0): string {
  const file = join(dir, name)
  writeFileSync(file, sessionCsv(sessionSlice(perLabel, skip)))
  return file
}

/** Writes and activates a version through a handle of its own, as another process would. */
async function writeVersion (t: TestContext, dataDir: string, model: TrainedModel): Promise<string> {
  const storage = new Storage(dataDir)
  t.after(() => storage.close())
  const store = new ModelStore(storage, dataDir)
  await store.recover()
  const version = await store.newVersionName('csi')
  await store.write(version, model)
  await store.activate(version)
  return version
}

function storedSampleCount (dataDir: string): number {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true })
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM training_samples').get() as { n: number }).n
  } finally {
    db.close()
  }
}

test('import and train refuse (exit 3) to write a DATA_DIR a live server owns, saying what to do; with --server that server does the work', async (t) => {
  const dir = tempDir(t)
  const file = csvFile(dir, 'slice.csv', 25)
  const dataDir = join(dir, 'data')
  const server = spawnServe(t, { DATA_DIR: dataDir, ADMIN_TOKEN, LOG_LEVEL: 'info', LOG_TO_FILE: 'false' })
  const url = await listeningUrl(server)
  const dataset = async () => await (await fetch(`${url}/training/get/dataset`)).json() as DatasetSummary

  const refused = io({ DATA_DIR: dataDir })
  assert.equal(await runImport(['--data', file], refused.io), 3, refused.out.stderr)
  assert.equal(refused.out.stdout, '')
  const pid = server.child.pid as number
  assert.match(refused.out.stderr, new RegExp(
    `^doorsense import: refusing to write DATA_DIR ${dataDir}: the doorsense server with pid ${pid} owns it \\(${pidFilePath(dataDir)}\\)\\. ` +
    'Either stop that server and run this again, or do it through the server: ' +
    'doorsense import --server URL --data \\S+slice\\.csv \\(admin token from ADMIN_TOKEN, else DATA_DIR/admin-token\\)'))

  const train = io({ DATA_DIR: dataDir, TF_BACKEND: 'cpu' })
  assert.equal(await runTrain(['--data', file, '--epochs', '2'], train.io), 3, train.out.stderr)
  assert.match(train.out.stderr, /refusing to write DATA_DIR .* doorsense train --server URL --data \S+ --epochs 2 /)
  assert.equal((await dataset()).total, 0, 'nothing was written beside the server')

  // through the server: its import route and its training, with the admin token from the environment
  const imported = io({ DATA_DIR: dataDir, ADMIN_TOKEN })
  assert.equal(await runImport(['--data', file, '--server', url, '--id', '4'], imported.io), 0, imported.out.stderr)
  assert.match(imported.out.stdout, /^imported 175 samples from \S+slice\.csv \(176 lines\)/)
  assert.deepEqual((await dataset()).devices, [{ device: 4, count: 175 }])

  const trained = io({ DATA_DIR: dataDir, ADMIN_TOKEN })
  assert.equal(await runTrain(['--server', `${url}/`, '--epochs', '2', '--json'], trained.io), 0, trained.out.stderr)
  const summary = JSON.parse(trained.out.stdout) as TrainSummary
  const models = await (await fetch(`${url}/training/get/models`)).json() as ModelList
  assert.equal(models.active, summary.version)
  assert.deepEqual([summary.server, summary.samples, summary.backend, summary.dir], [url, 175, 'cpu', undefined])
  assert.equal(typeof summary.evaluation?.accuracy, 'number')
  assert.match(trained.out.stderr, /epoch 2\/2: loss/)

  const wrongToken = io({ DATA_DIR: dataDir, ADMIN_TOKEN: 'not-the-admin-token-at-all' })
  assert.equal(await runImport(['--data', file, '--server', url], wrongToken.io), 1)
  assert.match(wrongToken.out.stderr, /POST \/training\/post\/import: 401 /)
})

test('a pid file left by a server that is gone, or naming a process that is no server, does not block the CLI', async (t) => {
  const dir = tempDir(t)
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir)
  const exited = spawn(process.execPath, ['-e', '0'])
  await once(exited, 'exit')
  writeFileSync(pidFilePath(dataDir), `${exited.pid}\n`)
  const afterDeadServer = io({ DATA_DIR: dataDir })
  assert.equal(await runImport(['--data', csvFile(dir, 'a.csv', 2)], afterDeadServer.io), 0, afterDeadServer.out.stderr)

  // this test runner is a live node process, but not bin/serve.ts
  writeFileSync(pidFilePath(dataDir), `${process.pid}\n`)
  const besideOtherProcess = io({ DATA_DIR: dataDir })
  assert.equal(await runImport(['--data', csvFile(dir, 'b.csv', 2, 10)], besideOtherProcess.io), 0, besideOtherProcess.out.stderr)
  assert.equal(storedSampleCount(dataDir), 28)
})

test('a server\'s catalogue follows what another handle wrote to its DATA_DIR: the version is listed, flagged active, served and can be rolled back', async (t) => {
  const dataDir = tempDir(t)
  const model = await trainSmall(20, { epochs: 2 })
  const own = await writeVersion(t, dataDir, model)
  const app = await buildTestApp(t, {}, { dataDir })
  assert.equal(app.model.active?.version, own)

  // what the CLI's train does beside a server it did not see (one started while it ran): its own handle on the database
  const written = await writeVersion(t, dataDir, model)

  const models = (await app.inject({ method: 'GET', url: '/training/get/models' })).json<ModelList>()
  assert.equal(models.active, written)
  assert.deepEqual(models.versions.map((info) => [info.version, info.active]), [[written, true], [own, false]])
  assert.equal(app.model.active?.version, written, 'the server serves the version the database names active')
  const batch = (await app.inject({
    method: 'POST',
    url: '/ml/post/batch',
    payload: { ID: 3, frames: [stringified(sessionSlice(1)[0])] }
  })).json<BatchResponse>()
  assert.equal(batch.version, written)

  const rolledBack = await app.inject({ method: 'POST', url: '/training/post/activate', headers: ADMIN, payload: { version: own } })
  assert.equal(rolledBack.statusCode, 200, rolledBack.body)
  const forward = await app.inject({ method: 'POST', url: '/training/post/activate', headers: ADMIN, payload: { version: written } })
  assert.equal(forward.statusCode, 200, forward.body)
  assert.equal(forward.json().active, true)
})

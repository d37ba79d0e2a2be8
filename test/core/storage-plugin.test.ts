import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { storagePlugin } from '../../core/storage-plugin.js'
import { buildTestApp, tempDir } from '../helper.js'

test('the storage exports its size and its WAL checkpoints at /metrics, under the names and help texts dashboards use', async (t) => {
  const app = await buildTestApp(t, { WAL_CHECKPOINT_MS: '20' })
  const page = (await app.inject({ url: '/metrics' })).body
  assert.match(page, new RegExp(
    String.raw`^# HELP doorsense_database_bytes bytes the SQLite database takes on disk \(pages plus write-ahead log\)\n` +
    String.raw`# TYPE doorsense_database_bytes gauge\ndoorsense_database_bytes [1-9]\d*$`,
    'm'
  ))
  assert.match(page, new RegExp(
    String.raw`^# HELP doorsense_wal_checkpoints_total SQLite WAL checkpoints run by the checkpoint thread \(thread="worker"\) ` +
    String.raw`and remainders finished between requests \(thread="main"\)\n# TYPE doorsense_wal_checkpoints_total counter\n` +
    String.raw`doorsense_wal_checkpoints_total\{thread="worker"\} \d+\ndoorsense_wal_checkpoints_total\{thread="main"\} \d+$`,
    'm'
  ))
  assert.match(page, new RegExp(
    String.raw`^# HELP doorsense_wal_checkpoint_main_max_seconds longest a WAL checkpoint remainder held the event loop ` +
    String.raw`\(finished between requests when writes never pause\)\n# TYPE doorsense_wal_checkpoint_main_max_seconds gauge\n` +
    String.raw`doorsense_wal_checkpoint_main_max_seconds [0-9.e+-]+$`,
    'm'
  ))
})

test('the storage plugin asks for the metrics plugin before it (its metrics join that registry)', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await assert.rejects(async () => {
    await app.register(storagePlugin, { dataDir: tempDir(t) })
    await app.ready()
  }, /dependency 'metrics' of plugin 'storage' is not registered/)
})

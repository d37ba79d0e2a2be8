/**
 * The storage's side in the app: the decorator, the hooks and the metrics.
 * Apart from core/storage.ts, which the CLI opens on its own, so that a CLI
 * command loads neither fastify-plugin nor prom-client.
 */
import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import { Storage } from './storage.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The embedded SQLite database, opened once, closed with the app. */
    storage: Storage
  }
}

/** How often the storage plugin looks at the free disk space. */
const DISK_CHECK_MS = 1000

/**
 * Opens {@link Storage} in `dataDir`, decorates `fastify.storage`, checkpoints
 * in the background every `checkpointMs` (0 = inside commits, as SQLite does
 * by itself), watches the disk (keeping a reserve of `reserveMb`, none by
 * default), closes it on app close. Every 507 answered makes
 * the storage look at the disk and make room at once ({@link Storage.noticeFull}).
 * Its metrics (the database's size, the WAL checkpoints) join `app.metrics`,
 * so the metrics plugin is registered first.
 */
export const storagePlugin = fp<{
  dataDir: string
  maxMb?: number
  checkpointMs?: number
  reserveMb?: number
  diskCheckMs?: number
  /** Whether a 507 answered makes the storage look at the disk (false only in bench/overhead.bench.ts). */
  noticeFullAnswers?: boolean
}>(async (app, options) => {
  const { dataDir, maxMb, checkpointMs = 0, reserveMb = 0, diskCheckMs = DISK_CHECK_MS, noticeFullAnswers = true } = options
  const storage = new Storage(dataDir, { maxMb, reserveMb, diskCheckMs, log: app.log })
  app.decorate('storage', storage)
  storage.checkpointInBackground(checkpointMs, (err) => app.log.warn({ err }, 'WAL checkpoint'))
  // every area's routes inherit this hook (they are registered after the storage)
  if (noticeFullAnswers) {
    app.addHook('onResponse', function noticeFullDisk (_request, reply, done) {
      if (reply.statusCode === 507) storage.noticeFull()
      done()
    })
  }
  app.addHook('onClose', async () => {
    await storage.stopCheckpoints()
    storage.close()
  })

  // read when scraped: a stat and a pragma, nothing on the request path
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_database_bytes',
    help: 'bytes the SQLite database takes on disk (pages plus write-ahead log)',
    registers: [app.metrics],
    collect () { this.set(storage.sizeBytes()) }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'doorsense_wal_checkpoints_total',
    help: 'SQLite WAL checkpoints run by the checkpoint thread (thread="worker") and remainders finished between requests (thread="main")',
    labelNames: ['thread'] as const,
    registers: [app.metrics],
    collect () {
      const stats = storage.checkpoints
      this.reset()
      if (stats) {
        this.inc({ thread: 'worker' }, stats.worker)
        this.inc({ thread: 'main' }, stats.main)
      }
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_wal_checkpoint_main_max_seconds',
    help: 'longest a WAL checkpoint remainder held the event loop (finished between requests when writes never pause)',
    registers: [app.metrics],
    collect () { this.set((storage.checkpoints?.mainMaxMs ?? 0) / 1000) }
  })
}, { name: 'storage', fastify: '5.x', dependencies: ['metrics'] })

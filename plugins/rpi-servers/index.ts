import fp from 'fastify-plugin'
import { isStorageFull } from '../../core/errors.js'
import { Counter, Gauge } from 'prom-client'
import { PostgresDeviceRows, SqliteDeviceRows } from './device-rows.js'
import { FrameRetention } from './frame-retention.js'
import { FrameStore } from './frame-store.js'
import { FrameIngest } from './ingest.js'
import { DeviceRegistry } from './registry.js'
import { RPI_SERVERS_SCHEMA } from './rpi-servers-schema.js'
import { rpiServerRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The Pis doorsense knows: live ones in memory, every one ever heard from in SQLite; events `live`, `stale`, `known`. */
    devices: DeviceRegistry
    /** Frame ingest: decode, door state, store (with any open capture), one batch at a time — the path of POST /server/post/frames. */
    frames: FrameIngest
  }
}

/** How often an instance sharing PostgreSQL reads the Pis other instances recorded. */
const DEVICE_REFRESH_MS = 2000

/** Frames deleted per turn of the event loop when a door is removed. */
const FORGET_BATCH = 5000

/** How often stale Pis are swept from the live set: often enough for a short STALE_AFTER_S, never busier than 20 Hz. */
export function sweepIntervalMs (staleAfterMs: number): number {
  return Math.min(5000, Math.max(50, staleAfterMs / 2))
}

/**
 * The rpi-servers area: the registry of Pis (live in memory, known in SQLite)
 * and the ingest of their frames.
 */
export default fp(async (app) => {
  app.storage.migrate(RPI_SERVERS_SCHEMA)
  // DATABASE_URL: the Pis and their names are shared by every instance of a cluster
  const rows = app.postgres ? await PostgresDeviceRows.open(app.postgres) : new SqliteDeviceRows(app.storage.db)
  const registry = new DeviceRegistry(rows, {
    staleAfterMs: app.config.STALE_AFTER_S * 1000,
    flushMs: app.config.REGISTRY_FLUSH_MS,
    onFlushError: (err) => app.log.error({ err }, 'could not write the Pis\' last-seen times; the next flush tries again')
  })
  // last-seen times still in memory reach the disk before the database closes (its onClose runs after this one)
  app.addHook('onClose', async () => {
    try {
      registry.close()
      // an asynchronous store (PostgreSQL) may still be writing what close() flushed; SQLite has written it
      await registry.settled()
    } catch (err) {
      app.log.error({ err, devices: registry.unflushed }, 'could not write the Pis\' last-seen times on close')
    }
  })
  // a cluster's instances share the Pis: new ones and new door names recorded by another instance show here within a refresh
  if (rows instanceof PostgresDeviceRows) {
    let refreshing: Promise<void> | undefined
    const refresh = setInterval(() => {
      refreshing ??= rows.readAll().then((all) => { registry.adopt(all) })
        .catch((err: unknown) => app.log.warn({ err }, 'could not read the Pis other instances recorded; the next refresh tries again'))
        .finally(() => { refreshing = undefined })
    }, DEVICE_REFRESH_MS)
    refresh.unref()
    // the pool closes after this area: no read left running into it
    app.addHook('preClose', async () => {
      clearInterval(refresh)
      await refreshing
    })
  }
  // a full database drops the oldest unlabelled frames rather than refuse the Pis (labelled samples stay)
  const store = new FrameStore(app.storage.db, {
    checkDisk: () => app.storage.checkDiskIfStale(),
    roomBytes: () => app.storage.roomBytes(),
    onFull: () => app.storage.noticeFull()
  })
  app.storage.onFull(() => { store.makeRoom() })

  // computed at scrape time, so the gauge is exact whatever the sweep period
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_devices_live',
    help: 'Pis that sent a keep-alive within STALE_AFTER_S',
    registers: [app.metrics],
    collect () { this.set(registry.liveCount()) }
  })
  const received = new Counter({
    name: 'doorsense_frames_received_total',
    help: 'Frames stored from POST /server/post/frames, by device ID (past METRICS_MAX_DEVICES devices: device="other")',
    labelNames: ['device'] as const,
    registers: [app.metrics]
  })
  const rejected = new Counter({
    name: 'doorsense_frames_rejected_total',
    help: 'Frames refused by POST /server/post/frames (undecodable), by device ID (past METRICS_MAX_DEVICES devices: device="other")',
    labelNames: ['device'] as const,
    registers: [app.metrics]
  })
  const ingest = new FrameIngest({
    store,
    captures: app.captures,
    received,
    rejected,
    deviceLabel: (device) => app.deviceLabels.of(device),
    doorState: (device, features) => { app.doors.observe(device, features) },
    // in a cluster the frame stream keeps the batch and the door's owner reads it (plugins/cluster)
    ...(app.cluster ? { publish: app.cluster.publish.bind(app.cluster) } : {}),
    seen: (device, addr) => {
      // the frames are committed by now: a full database must not turn their 200 into an
      // error the Pi would retry (storing them twice) just because last_seen could not be written
      try {
        registry.touch(device, addr)
      } catch (err) {
        if (!isStorageFull(err)) throw err
        app.log.warn({ device, err }, 'storage is full: could not record when this Pi was last seen')
      }
    }
  })
  app.decorate('devices', registry)
  app.decorate('frames', ingest)

  // a removed door takes its unlabelled frames along (its labelled samples are the doors area's),
  // in batches a turn apart: a day of one Pi's frames is over a million rows
  let forgetting = Promise.resolve()
  registry.on('forgotten', (device) => {
    forgetting = forgetting.then(async () => {
      while (store.pruneOldestOf(device, FORGET_BATCH) === FORGET_BATCH) await new Promise((resolve) => setImmediate(resolve))
    }).catch((err: unknown) => { app.log.error({ err, device }, 'could not delete a removed door\'s frames; retention deletes them in time') })
  })
  app.addHook('onClose', async () => forgetting)

  const retention = new FrameRetention(store, {
    hours: app.config.FRAME_RETENTION_HOURS,
    perDevice: app.config.FRAME_RETENTION_PER_DEVICE,
    // a full disk releases its reserve, so that the deletes have room
    onFull: () => app.storage.noticeFull(),
    onError: (err) => app.log.error({ err }, 'frame retention pass failed; the next one tries again')
  })
  new Counter({ // eslint-disable-line no-new
    name: 'doorsense_frames_pruned_total',
    help: 'unlabelled frames deleted by retention (FRAME_RETENTION_HOURS, FRAME_RETENTION_PER_DEVICE)',
    registers: [app.metrics],
    collect () { this.reset(); this.inc(retention.deleted) }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'doorsense_frames_dropped_total',
    help: 'oldest unlabelled frames dropped to make room for new ones while the database (STORAGE_MAX_MB) or the disk was full',
    registers: [app.metrics],
    collect () { this.reset(); this.inc(store.dropped) }
  })
  retention.start()
  app.addHook('onClose', async () => retention.stop())

  const sweeper = setInterval(() => {
    for (const id of registry.sweep()) app.log.info({ device: id }, `Pi went silent for ${app.config.STALE_AFTER_S} s: dropped from the live list`)
  }, sweepIntervalMs(registry.staleAfterMs))
  sweeper.unref() // never the reason the process stays up
  app.addHook('onClose', async () => clearInterval(sweeper))

  await app.register(rpiServerRoutes, { registry, ingest, bodyLimit: app.config.BODY_LIMIT })
}, {
  name: 'rpi-servers',
  fastify: '5.x',
  dependencies: ['doors'],
  decorators: { fastify: ['cluster', 'postgres', 'config', 'storage', 'metrics', 'deviceLabels', 'requireDevice', 'captures', 'doors'] }
})

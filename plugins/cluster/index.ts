import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import { ClusterService, leaseTtlMs, newInstanceId } from './cluster-service.js'
import { connectCluster } from './connection.js'
import { DoorBoard } from './door-board.js'
import { FrameStream } from './frame-stream.js'
import { InstanceDirectory } from './instances.js'
import { ModelSync } from './model-sync.js'
import { clusterRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's part in a cluster (NATS_URL set), or null: the embedded default, one process. */
    cluster: ClusterService | null
  }
}

/**
 * The cluster area (docs/cluster.md): with NATS_URL set, frames go through a
 * JetStream stream, partitions of the doors are owned by one instance at a
 * time, door states are shared in a KV bucket, and so are the models (their
 * files in an Object Store bucket, the active version per scope in KV, one
 * training per scope at a time: model-sync.ts). Without it, nothing
 * changes: `app.cluster` is null and GET /cluster says `embedded`.
 * Registered after the doors (whose states it feeds and shows) and before the
 * ingest of frames (which publishes through it).
 */
export default fp(async (app) => {
  const { config } = app
  const instanceId = newInstanceId(config.PORT)
  const startedAt = Date.now()
  if (config.NATS_URL === undefined) {
    app.decorate('cluster', null)
    await app.register(clusterRoutes, { cluster: null, models: null, instanceId, startedAt })
    return
  }
  const conn = await connectCluster({ url: config.NATS_URL, clusterName: config.CLUSTER_NAME, instanceId })
  let service: ClusterService
  let models: ModelSync
  try {
    const takeoverMs = config.OWNER_TAKEOVER_S * 1000
    const retentionMs = Math.max(60_000, config.FRAME_RETENTION_HOURS * 3_600_000)
    const stream = await FrameStream.open(conn, {
      partitions: config.CLUSTER_PARTITIONS,
      maxAgeMs: retentionMs,
      maxBytes: config.FRAME_STREAM_MAX_MB === 0 ? -1 : Math.round(config.FRAME_STREAM_MAX_MB * 1024 * 1024),
      // a Pi's retry with the same Idempotency-Key within this window is stored once, whichever instance takes it
      duplicateWindowMs: Math.min(retentionMs, config.IDEMPOTENCY_WINDOW_HOURS * 3_600_000)
    })
    const board = await DoorBoard.open(conn)
    const directory = await InstanceDirectory.open(conn, {
      self: { id: instanceId, url: config.INSTANCE_URL ?? `http://${config.HOST}:${config.PORT}`, startedAt },
      ttlMs: leaseTtlMs(takeoverMs)
    })
    service = new ClusterService({
      conn,
      stream,
      board,
      directory,
      states: app.doors.states,
      observe: (device, frames) => { app.doors.observe(device, frames) },
      instanceId,
      partitions: config.CLUSTER_PARTITIONS,
      takeoverMs,
      log: app.log
    })
    models = await ModelSync.open(conn, { model: app.model, instanceId, log: app.log.child({ area: 'cluster-models' }) })
  } catch (err) {
    await conn.close().catch(() => {})
    throw err
  }
  app.decorate('cluster', service)
  // the partitions are taken once the whole app (the ingest, the models) is built; the cluster's
  // model versions are loaded before the instance serves (a new instance starts on the cluster's models)
  app.addHook('onReady', async () => {
    await models.start()
    await service.start()
  })
  // before the doors and the model handler stop: the partitions are handed over with where each door
  // stands, the training leases given back
  app.addHook('preClose', async () => {
    await models.stop()
    await service.stop()
    await conn.close()
  })

  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_cluster_partitions_owned',
    help: 'partitions of the doors this instance owns (CLUSTER_PARTITIONS in all)',
    registers: [app.metrics],
    collect () { this.set(service.owned().length) }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_cluster_consumer_lag',
    help: 'frame batches of an owned partition not yet read into the door states, by partition',
    labelNames: ['partition'] as const,
    registers: [app.metrics],
    collect () {
      this.reset()
      for (const [partition, lag] of Object.entries(service.lag())) this.set({ partition }, lag)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_cluster_instances',
    help: 'instances of the cluster with a heartbeat within OWNER_TAKEOVER_S, this one included',
    registers: [app.metrics],
    async collect () { this.set((await service.status()).instances.length) }
  })
  await app.register(clusterRoutes, { cluster: service, models, instanceId, startedAt })
}, {
  name: 'cluster',
  fastify: '5.x',
  dependencies: ['doors', 'model'],
  decorators: { fastify: ['config', 'metrics', 'doors', 'model'] }
})

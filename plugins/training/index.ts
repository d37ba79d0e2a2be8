import fp from 'fastify-plugin'
import type { SampleSource as SampleSourceSchema } from '../../schemas/training.js'
import type { CaptureStatus } from '../../schemas/training.js'
import { SqliteCaptureSessions, type CaptureSessions } from './capture-sessions.js'
import { PostgresCaptureSessions } from './capture-sessions-postgres.js'
import { ProgressStreams } from './progress-streams.js'
import { trainingRoutes } from './routes.js'
import { SqliteSampleStore, type SampleStore } from '../../ml/store/sample-store.js'
import { PostgresSampleStore } from '../../ml/store/sample-store-postgres.js'

/** Where a labelled frame came from. */
export type SampleSource = SampleSourceSchema

declare module 'fastify' {
  interface FastifyInstance {
    /** The capture sessions that turn a device's live frames into labelled samples. */
    captures: CaptureSessions
    /** The one store of labelled samples; event `deleted` (kind, filter, removed) on every delete, whichever area ran it. */
    samples: SampleStore
  }
}

/**
 * The training area: labelled samples in SQLite (`fastify.samples`), capture
 * sessions (`fastify.captures`), and the /training routes over `fastify.model`.
 * Closing the app ends every progress stream and capture timer.
 */
export default fp(async (app) => {
  const log = app.log.child({ area: 'training' })
  const onEnded = (status: CaptureStatus): void => log.info(
    { device: status.ID, angle: status.angle, state: status.state, framesStored: status.framesStored, framesDropped: status.framesDropped },
    'capture session ended'
  )
  let samples: SampleStore
  let captures: CaptureSessions
  if (app.postgres) {
    // a cluster's instances share them (docs/cluster.md)
    const shared = await PostgresSampleStore.open(app.postgres)
    samples = shared
    captures = await PostgresCaptureSessions.open({ db: app.postgres, samples: shared, onEnded })
  } else {
    const local = new SqliteSampleStore(app.storage)
    samples = local
    captures = new SqliteCaptureSessions({ storage: app.storage, samples: local, onEnded })
  }
  const restored = await captures.restore()
  for (const status of restored.resumed) {
    log.info(
      { device: status.ID, angle: status.angle, framesStored: status.framesStored, secondsLeft: status.secondsLeft },
      'capture session resumed after a restart'
    )
  }
  for (const status of restored.interrupted) {
    log.warn(
      { device: status.ID, angle: status.angle, framesStored: status.framesStored, endsAt: status.endsAt },
      'capture session interrupted: its time ran out while the server was down'
    )
  }
  const streams = new ProgressStreams(app.model)
  app.decorate('captures', captures)
  app.decorate('samples', samples)
  // preClose: an open event stream would otherwise keep the server from closing
  app.addHook('preClose', async () => streams.closeAll())
  app.addHook('onClose', async () => {
    await captures.close()
    await samples.close()
    captures.removeAllListeners()
    samples.removeAllListeners()
  })
  // routes in their own context, so the text/csv parser stays theirs
  await app.register(trainingRoutes, { samples, captures, streams })
}, {
  name: 'training',
  fastify: '5.x',
  dependencies: ['storage', 'postgres', 'model'],
  decorators: { fastify: ['config', 'requireAdmin'] }
})

import fp from 'fastify-plugin'
import type { SampleSource as SampleSourceSchema } from '../../schemas/training.js'
import type { CaptureStatus } from '../../schemas/training.js'
import { CaptureSessions, type CancelOptions, type CaptureOptions } from './capture-sessions.js'
import { ProgressStreams } from './progress-streams.js'
import { trainingRoutes } from './routes.js'
import { SampleStore } from '../../ml/store/sample-store.js'

/** Where a labelled frame came from. */
export type SampleSource = SampleSourceSchema

/** `fastify.captures`: the capture sessions that turn a device's live frames into labelled samples. */
export interface CaptureService {
  /**
   * Stores `frames` (106 features each) as labelled samples when a capture
   * session is open for `device`.
   * @returns how many were stored (0 when no session is open)
   */
  record (device: number, frames: readonly Float32Array[], source: SampleSource): number
  /**
   * Opens a session: the device's next frames are stored labelled `angle`
   * until `seconds` pass or `options.frames` are stored.
   * @throws ConflictError (409) while that device's session is open
   */
  start (device: number, angle: number, seconds: number, options?: CaptureOptions): CaptureStatus
  /**
   * Ends the device's open session now; the frames stored so far stay unless
   * `options.keepFrames` is false. @returns its final status, or undefined when none was open
   */
  cancel (device: number, options?: CancelOptions): CaptureStatus | undefined
  /** The device's open session, or its last one. */
  status (device: number): CaptureStatus | undefined
  /** `changed` fires when a session opens, stores frames or ends. */
  on (event: 'changed', listener: (status: CaptureStatus) => void): this
}

declare module 'fastify' {
  interface FastifyInstance {
    captures: CaptureService
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
  const samples = new SampleStore(app.storage)
  const captures = new CaptureSessions({
    storage: app.storage,
    samples,
    onEnded: (status) => log.info(
      { device: status.ID, angle: status.angle, state: status.state, framesStored: status.framesStored, framesDropped: status.framesDropped },
      'capture session ended'
    )
  })
  const restored = captures.restore()
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
    captures.close()
    captures.removeAllListeners()
    samples.removeAllListeners()
  })
  // routes in their own context, so the text/csv parser stays theirs
  await app.register(trainingRoutes, { samples, captures, streams })
}, {
  name: 'training',
  fastify: '5.x',
  dependencies: ['storage', 'model'],
  decorators: { fastify: ['config', 'requireAdmin'] }
})

import fp from 'fastify-plugin'

/** Where a labelled frame came from. */
export type SampleSource = 'frames' | 'inference' | 'import' | 'samples' | 'legacy-train'

/** `fastify.captures`: the capture sessions that turn a device's live frames into labelled samples. */
export interface CaptureService {
  /**
   * Stores `frames` (106 features each) as labelled samples when a capture
   * session is open for `device`.
   * @returns how many were stored (0 when no session is open)
   */
  record (device: number, frames: readonly Float32Array[], source: SampleSource): number
}

declare module 'fastify' {
  interface FastifyInstance {
    captures: CaptureService
  }
}

/** The training area (to be built). Until then no capture session is ever open. */
export default fp(async (app) => {
  app.decorate('captures', { record: () => 0 })
}, { name: 'training', fastify: '5.x' })

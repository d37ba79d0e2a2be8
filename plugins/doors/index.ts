import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import { OTHER_DEVICES } from '../../core/metrics.js'
import { DoorFeed } from './door-feed.js'
import { DoorStates } from './door-states.js'
import { doorStateRoutes } from './door-state-routes.js'
import { DoorStreams } from './door-streams.js'
import { DoorsService } from './doors-service.js'
import { doorRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The doors: their live state (observe takes a device's frames in), their
     * calibration, and the announcements of both door streams and Home
     * Assistant: events `state` (a live state's change), `door` (a whole Door,
     * on every visible change) and `removed` (device ID).
     */
    doors: DoorsService
  }
}

/** Each app's door streams, shared by the two registrations of the area. */
const streamsOf = new WeakMap<object, DoorStreams>()

/**
 * The doors area, part one (registered before the ingest of frames, which
 * feeds it): the live state of every door (DoorStates: windows, hysteresis,
 * the routing between a door's own model and the global one, DoorFeed), the
 * announcements (DoorsService) and both door streams, and the legacy
 * /ml/get/door_state routes. The frames the inference area classifies for a
 * device reach it as that area's `taken`/`classified` reports.
 */
export default fp(async (app) => {
  const { config } = app
  const states = new DoorStates({
    window: config.DOOR_WINDOW,
    hold: config.DOOR_HOLD,
    staleAfterS: config.STALE_AFTER_S,
    noveltyScansPerSecond: config.DOOR_NOVELTY_MAX_SCANS
  })
  states.start()
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_door_needs_recalibration',
    help: '1 while a door\'s recent frames look unlike its calibration (its state is unknown then); ' +
      'device="other": how many of the doors past METRICS_MAX_DEVICES',
    labelNames: ['device'] as const,
    registers: [app.metrics],
    collect () {
      this.reset()
      // the doors past METRICS_MAX_DEVICES count together
      let others: number | undefined
      for (const door of states.list()) {
        const device = app.deviceLabels.of(door.device)
        if (device === OTHER_DEVICES) others = (others ?? 0) + (door.needsRecalibration ? 1 : 0)
        else this.set({ device }, door.needsRecalibration ? 1 : 0)
      }
      if (others !== undefined) this.set({ device: OTHER_DEVICES }, others)
    }
  })

  // read app.model and app.inference at call time: their areas own those decorators and their swaps
  const feed = new DoorFeed({
    states,
    ownModel: (device) => app.model.doorModels.get(device),
    novelty: () => app.model.novelty,
    classify: (frames) => app.inference.submit(frames)
  })
  app.model.doorModels.on('changed', ({ device, version }) => { if (version === undefined) states.forgetModel(device) })
  // the legacy per-frame routes' frames: counted and read by a door's own model at once, the global
  // answers after (unless the door's own model read those frames)
  const readByOwnModel = new WeakSet<readonly Float32Array[]>()
  app.inference.on('taken', (device, frames) => {
    if (feed.taken(device, frames)) readByOwnModel.add(frames)
    else readByOwnModel.delete(frames)
  })
  app.inference.on('classified', ({ device, frames, predictions, labels, at, version }) => {
    if (!readByOwnModel.has(frames)) feed.classified(device, frames, predictions, labels, at, version)
  })

  const doors = new DoorsService({
    states,
    feed,
    captures: app.captures,
    samples: app.samples,
    doorModels: app.model.doorModels,
    globalModel: () => app.model.active,
    floor: config.DOOR_CALIBRATION_FLOOR
  })
  await doors.loadCalibrationCounts()
  const streams = new DoorStreams(states, doors)
  app.decorate('doors', doors)
  streamsOf.set(app, streams)
  // open event streams end before the server waits for its connections
  app.addHook('preClose', async () => streams.closeAll())
  app.addHook('onClose', async () => {
    doors.stop()
    states.stop()
    streams.closeAll()
  })
  await app.register(doorStateRoutes, { states, streams })
}, {
  name: 'doors',
  fastify: '5.x',
  dependencies: ['model', 'training', 'inference'],
  decorators: { fastify: ['config', 'metrics', 'deviceLabels', 'captures', 'samples', 'inference', 'model'] }
})

/**
 * The doors area, part two (registered once the Pi registry exists, after the
 * ingest of frames): every Pi is a door; `/doors` (state, model, calibration
 * per door) and the calibration workflow (captures → the door's own model →
 * gate → active).
 */
export const doorsApi = fp(async (app) => {
  const streams = streamsOf.get(app)
  if (!streams) throw new Error('register the doors area before its API')
  app.doors.attach(app.devices)
  app.doors.start()
  await app.register(doorRoutes, { doors: app.doors, streams })
}, {
  name: 'doors-api',
  fastify: '5.x',
  dependencies: ['doors', 'rpi-servers'],
  decorators: { fastify: ['doors', 'devices', 'requireAdmin'] }
})

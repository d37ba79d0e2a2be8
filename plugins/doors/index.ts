import fp from 'fastify-plugin'
import { EventStreamHub, sseEvent } from '../../core/event-stream.js'
import { DoorsService } from './doors-service.js'
import { doorRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The doors as users see them; events `door` (a whole Door, on every visible change) and `removed` (device ID). */
    doors: DoorsService
  }
}

/**
 * The doors area: `/doors` (state, model, calibration per door) and the
 * calibration workflow (captures → the door's own model → gate → active).
 */
export default fp(async (app) => {
  const doors = new DoorsService({
    devices: app.devices,
    states: app.inference.doors,
    captures: app.captures,
    samples: app.samples,
    doorModels: app.model.doorModels,
    globalModel: () => app.model.active,
    floor: app.config.DOOR_CALIBRATION_FLOOR
  })
  const stream = new EventStreamHub()
  doors.on('door', (door) => stream.broadcast(sseEvent('door', door)))
  doors.on('removed', (device) => stream.broadcast(sseEvent('removed', { device })))
  doors.start()
  app.decorate('doors', doors)
  app.addHook('preClose', async () => stream.closeAll())
  app.addHook('onClose', async () => doors.stop())
  await app.register(doorRoutes, { doors, stream })
}, {
  name: 'doors',
  fastify: '5.x',
  dependencies: ['model', 'training', 'inference', 'rpi-servers'],
  decorators: { fastify: ['config', 'requireAdmin', 'devices', 'captures', 'samples', 'inference', 'model'] }
})

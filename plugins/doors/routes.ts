import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NotFoundError } from '../../core/errors.js'
import { errorResponses } from '../../schemas/common.js'
import { CaptureRequest, Door, DoorList, DoorListQuery, DoorParams, DoorUpdate, FinishAccepted, FinishRequest } from '../../schemas/doors.js'
import type { DoorsService } from './doors-service.js'
import type { DoorStreams } from './door-streams.js'

export interface DoorRouteOptions {
  doors: DoorsService
  streams: DoorStreams
}

const tags = ['doors']
const admin = [{ admin: [] }]
const CALIBRATE_FIRST = 'a door appears once its Pi sends a keep-alive or frames (POST /server/post/keep_alive)'

/** The user-facing doors: their state, and each door's calibration. */
export const doorRoutes: FastifyPluginAsyncTypebox<DoorRouteOptions> = async (app, { doors, streams }) => {
  app.get('/doors', {
    schema: {
      tags,
      summary: 'Every door: state, model, calibration',
      description: 'By device ID. `?limit` pages the list: `next` is the `after` of the following page (null at the end); without `limit`, every door.',
      querystring: DoorListQuery,
      response: { 200: DoorList, ...errorResponses }
    }
  }, async (request) => doors.list({ limit: request.query.limit, after: request.query.after }, true))

  app.get('/doors/stream', {
    schema: {
      tags,
      summary: 'Door changes as server-sent events',
      description: 'A text/event-stream: first one `door` event per known door, then one per change (state, angle, recalibration, calibration, liveness; frame rate at most once a second), each with a whole Door as `data`; `removed` with `{"device": n}` when a door is removed. Ends when the server shuts down; reconnect and you get a fresh snapshot.',
      response: {
        200: {
          description: 'event stream of `door` and `removed` events',
          content: { 'text/event-stream': { schema: Type.String() } }
        }
      }
    }
  }, (request, reply) => {
    streams.openDoors(request, reply)
  })

  app.get('/doors/:id', {
    config: { errorHints: { DS_NOT_FOUND: CALIBRATE_FIRST } },
    schema: { tags, summary: 'One door', params: DoorParams, response: { 200: Door, ...errorResponses } }
  }, async (request) => {
    const door = doors.get(request.params.id)
    if (!door) throw new NotFoundError(`no door ${request.params.id}`)
    return door
  })

  app.patch('/doors/:id', {
    onRequest: app.requireAdmin,
    config: { errorHints: { DS_NOT_FOUND: CALIBRATE_FIRST } },
    schema: {
      tags,
      summary: 'Renames a door (admin)',
      description: 'The door shows `name` from now on — on the dashboard, in GET /doors and in Home Assistant — whatever NAME its Pi reports; `null` goes back to the Pi\'s NAME. Kept across restarts; removing the door forgets it.',
      security: admin,
      params: DoorParams,
      body: DoorUpdate,
      response: { 200: Door, ...errorResponses }
    }
  }, async (request) => doors.rename(request.params.id, request.body.name))

  app.delete('/doors/:id', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Removes a door (admin)',
      description: 'Forgets the door\'s calibration and model and removes its Pi from the known list; Home Assistant is told to drop its entities. A Pi that posts again comes back as a new door.',
      security: admin,
      params: DoorParams,
      response: { 204: Type.Null(), ...errorResponses }
    }
  }, async (request, reply) => {
    doors.remove(request.params.id)
    return reply.code(204).send(null)
  })

  app.post('/doors/:id/calibration/capture', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Records the door at one angle (admin)',
      description: 'Labels this door\'s next frames with `angle` (0 = closed) until `frames` are stored or `seconds` pass (default 30), whichever comes first. 409 while a capture or a training runs for this door.',
      security: admin,
      params: DoorParams,
      body: CaptureRequest,
      response: { 202: Door, ...errorResponses }
    }
  }, async (request, reply) => reply.code(202).send(doors.capture(request.params.id, request.body)))

  app.delete('/doors/:id/calibration/capture', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Cancels the door\'s running capture (admin)',
      description: 'Ends it now; the frames it stored so far are kept (DELETE /doors/{id}/calibration forgets them all). 409 when none runs.',
      security: admin,
      params: DoorParams,
      response: { 200: Door, ...errorResponses }
    }
  }, async (request) => doors.cancelCapture(request.params.id))

  app.post('/doors/:id/calibration/finish', {
    onRequest: app.requireAdmin,
    // no body at all means {}
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      tags,
      summary: 'Trains the door\'s own model on its calibration (admin, 202)',
      description: 'Checks the calibration — closed (0°), ajar (the smallest open angle, at most 30°) and a wider open angle, at least 200 frames of each — trains the door\'s model in the background on this door\'s calibration frames only, judges it on the last part of each angle\'s recording, and runs the ajar self-check: a model trained on the rest replays the held-out end of the ajar angle, and for each other open angle a model trained without it replays that angle. If more than 10 % of those frames read closed the door cannot tell ajar from closed, and the calibration is refused — unless `acceptAjarAsClosed`, which activates it with closed reported as `closedOrAjar`. It takes over only when its open/closed balanced accuracy reaches DOOR_CALIBRATION_FLOOR; otherwise the door keeps what it had and `calibration.reasons` says why. 400 with the reasons when the calibration is not enough; 409 with Retry-After while a calibration trains (one door trains at a time).',
      security: admin,
      params: DoorParams,
      body: FinishRequest,
      response: { 202: FinishAccepted, ...errorResponses }
    }
  }, async (request, reply) => reply.code(202).send(doors.finish(request.params.id, request.body)))

  app.delete('/doors/:id/calibration', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Forgets the door\'s calibration and model (admin)',
      description: 'Deletes this door\'s calibration frames and makes the door use the global model again (its earlier versions stay listed and can be activated with POST /training/post/activate).',
      security: admin,
      params: DoorParams,
      response: { 200: Door, ...errorResponses }
    }
  }, async (request) => doors.forget(request.params.id))
}

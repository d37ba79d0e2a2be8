import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NotFoundError } from '../../core/errors.js'
import { errorResponses } from '../../schemas/common.js'
import {
  CaptureRequest, Door, doorRouteDescriptions, DoorList, DoorListQuery, DoorParams, DoorUpdate, FinishAccepted, FinishRequest
} from '../../schemas/doors.js'
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
      description: doorRouteDescriptions.stream,
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
      description: doorRouteDescriptions.rename,
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
      description: doorRouteDescriptions.remove,
      security: admin,
      params: DoorParams,
      response: { 204: Type.Null(), ...errorResponses }
    }
  }, async (request, reply) => {
    await doors.remove(request.params.id)
    return reply.code(204).send(null)
  })

  app.post('/doors/:id/calibration/capture', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Records the door at one angle (admin)',
      description: doorRouteDescriptions.capture,
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
      description: doorRouteDescriptions.finish,
      security: admin,
      params: DoorParams,
      body: FinishRequest,
      response: { 202: FinishAccepted, ...errorResponses }
    }
  }, async (request, reply) => reply.code(202).send(await doors.finish(request.params.id, request.body)))

  app.delete('/doors/:id/calibration', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Forgets the door\'s calibration and model (admin)',
      description: doorRouteDescriptions.forget,
      security: admin,
      params: DoorParams,
      response: { 200: Door, ...errorResponses }
    }
  }, async (request) => doors.forget(request.params.id))
}

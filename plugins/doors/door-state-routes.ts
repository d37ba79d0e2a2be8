import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../../schemas/common.js'
import { DoorStateList, mlRouteDescriptions } from '../../schemas/inference.js'
import type { DoorStates } from './door-states.js'
import type { DoorStreams } from './door-streams.js'

export interface DoorStateRouteOptions {
  states: DoorStates
  streams: DoorStreams
}

/** The legacy door-state routes (/ml/get/door_state and its stream): the live state of every device that sent frames. */
export const doorStateRoutes: FastifyPluginAsyncTypebox<DoorStateRouteOptions> = async (app, { states, streams }) => {
  app.get('/ml/get/door_state', {
    schema: {
      summary: 'The smoothed state of every door',
      description: mlRouteDescriptions.doorStates,
      tags: ['ml'],
      response: { 200: DoorStateList, ...errorResponses }
    }
  }, async () => ({ doors: states.list() }))

  app.get('/ml/get/door_state/stream', {
    schema: {
      summary: 'Door-state changes as server-sent events',
      description: mlRouteDescriptions.doorStateStream,
      tags: ['ml'],
      response: {
        200: {
          description: 'event stream; each event is `event: door` with a DoorState JSON as `data`',
          content: { 'text/event-stream': { schema: Type.String() } }
        }
      }
    }
  }, (request, reply) => {
    streams.openStates(request, reply)
  })
}

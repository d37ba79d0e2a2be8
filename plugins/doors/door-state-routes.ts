import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../../schemas/common.js'
import { DoorStateList } from '../../schemas/inference.js'
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
      description: 'One entry per device that has sent frames with an `ID`: angle, open/closed/unknown, confidence, since when, last frame. A device silent for STALE_AFTER_S is `unknown`.',
      tags: ['ml'],
      response: { 200: DoorStateList, ...errorResponses }
    }
  }, async () => ({ doors: states.list() }))

  app.get('/ml/get/door_state/stream', {
    schema: {
      summary: 'Door-state changes as server-sent events',
      description: 'A text/event-stream: first one `door` event per known door, then one per change of a door\'s state or angle (data = a DoorState as JSON). Ends when the server shuts down.',
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

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HomeAssistantStatus } from '../../schemas/home-assistant.js'

export interface HomeAssistantRouteOptions {
  /** The status as it is now (read on each request). */
  status: () => HomeAssistantStatus
}

const tags = ['home-assistant']

/** The Home Assistant area's one route: whether it is on, connected, and to which broker. */
export const homeAssistantRoutes: FastifyPluginAsyncTypebox<HomeAssistantRouteOptions> = async (app, { status }) => {
  app.get('/home-assistant/status', {
    schema: {
      tags,
      summary: 'Whether doorsense publishes to Home Assistant over MQTT, and whether the broker is connected',
      description: 'Off unless MQTT_URL is set. The broker is named by scheme, host and port only; credentials never appear.',
      response: { 200: HomeAssistantStatus }
    }
  }, async () => status())
}

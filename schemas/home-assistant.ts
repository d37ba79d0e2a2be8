import { Type, type Static } from '@sinclair/typebox'

/** GET /home-assistant/status answer: whether doorsense publishes to Home Assistant, and where. */
export const HomeAssistantStatus = Type.Object({
  enabled: Type.Boolean({ description: 'MQTT_URL is set: doorsense publishes every door to Home Assistant through the broker' }),
  connected: Type.Boolean({ description: 'the broker connection is up now (false while it is retried with backoff, and always when disabled)' }),
  broker: Type.Unsafe<string | null>({
    type: 'string',
    nullable: true,
    description: 'scheme://host:port of the broker, never its credentials; null when disabled'
  }),
  discoveryPrefix: Type.String({ description: 'Home Assistant\'s discovery prefix (MQTT_DISCOVERY_PREFIX)' }),
  baseTopic: Type.String({ description: 'prefix of doorsense\'s own topics: <base>/status, <base>/doors/<id>/…, <base>/frames/<id> (MQTT_BASE_TOPIC)' })
}, { title: 'HomeAssistantStatus' })
export type HomeAssistantStatus = Static<typeof HomeAssistantStatus>

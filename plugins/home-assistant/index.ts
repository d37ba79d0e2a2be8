import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import { APP_VERSION } from '../../core/project.js'
import type { HomeAssistantStatus } from '../../schemas/home-assistant.js'
import { HomeAssistantBridge } from './bridge.js'
import type { PublishKind } from './connection.js'
import { binaryFramesTopic } from './discovery.js'
import { MqttFrameIntake } from './mqtt-frames.js'
import { REFUSAL_REASONS, RefusalLog } from './refusals.js'
import { homeAssistantRoutes } from './routes.js'

/**
 * `scheme://host:port` of a broker URL, for the status route: never the
 * credentials, the port spelled out (1883, or 8883 for mqtts) when the URL
 * leaves it to the default.
 */
export function brokerAddress (url: string): string {
  try {
    const parsed = new URL(url)
    const port = parsed.port !== '' ? parsed.port : parsed.protocol === 'mqtts:' ? '8883' : '1883'
    return `${parsed.protocol}//${parsed.hostname}:${port}`
  } catch {
    return '(unparseable MQTT_URL)'
  }
}

/**
 * The Home Assistant area. Off unless MQTT_URL is set: then nothing connects
 * and only `GET /home-assistant/status` says so. When set, a
 * HomeAssistantBridge publishes every door of `fastify.doors` with MQTT
 * discovery, and frames published on `<base>/frames/<id>` (text) and
 * `<base>/frames/<id>/<layout>` (binary) go through
 * `fastify.frames` exactly as POST /server/post/frames does. It connects once
 * the app is ready and never holds up HTTP: a broker that is down is retried
 * with backoff. On close it publishes `offline` and disconnects before the
 * doors and the storage close (onClose hooks run in reverse order of
 * registration, and this area is registered after both).
 */
export default fp(async (app) => {
  const { config } = app
  const settings = { discoveryPrefix: config.MQTT_DISCOVERY_PREFIX, baseTopic: config.MQTT_BASE_TOPIC }
  const url = config.MQTT_URL
  let bridge: HomeAssistantBridge | undefined

  if (url !== undefined) {
    const log = app.log.child({ area: 'home-assistant' })
    const connected = new Gauge({
      name: 'doorsense_mqtt_connected',
      help: '1 while the MQTT broker connection (Home Assistant) is up',
      registers: [app.metrics]
    })
    const published = new Counter({
      name: 'doorsense_mqtt_published_total',
      help: 'MQTT messages handed to the broker, by kind (status, config, state, availability, attribute, removal)',
      labelNames: ['kind'] as const,
      registers: [app.metrics]
    })
    // by reason only: a device or topic label would grow with whatever anyone publishes
    const refused = new Counter({
      name: 'doorsense_mqtt_frames_refused_total',
      help: `messages on <base>/frames/<id> refused, nothing stored, by reason (${REFUSAL_REASONS.join(', ')})`,
      labelNames: ['reason'] as const,
      registers: [app.metrics]
    })
    const kinds: PublishKind[] = ['status', 'config', 'state', 'availability', 'attribute', 'removal']
    for (const kind of kinds) published.inc({ kind }, 0)
    for (const reason of REFUSAL_REASONS) refused.inc({ reason }, 0)
    connected.set(0)
    // the largest frames message the intake takes: BODY_LIMIT bytes of payload, the longest frames topic, the packet header
    const largestFrames = 5 + 2 + Buffer.byteLength(binaryFramesTopic(config.MQTT_BASE_TOPIC, 32767, 'esp128')) + config.BODY_LIMIT
    if (config.MQTT_MAX_PAYLOAD < largestFrames) {
      log.warn({ MQTT_MAX_PAYLOAD: config.MQTT_MAX_PAYLOAD, BODY_LIMIT: config.BODY_LIMIT, largestFrames },
        'home-assistant: MQTT_MAX_PAYLOAD is below BODY_LIMIT and the frames topic: the largest frames payloads are skipped unread')
    }

    const refusals = new RefusalLog({ log, onRefused: (reason) => refused.inc({ reason }) })
    const intake = new MqttFrameIntake({
      ingest: (device, frames) => app.frames.clustered ? app.frames.publish(device, frames, 'mqtt') : app.frames.ingest(device, frames, 'mqtt'),
      maxBytes: config.BODY_LIMIT,
      refusals
    })
    const created = new HomeAssistantBridge({
      url,
      username: config.MQTT_USERNAME,
      password: config.MQTT_PASSWORD,
      clientId: config.MQTT_CLIENT_ID,
      ...settings,
      swVersion: APP_VERSION,
      source: app.doors,
      // in a cluster, each door is published by its owner only (docs/home-assistant.md, In a cluster)
      ownership: app.cluster ?? undefined,
      log,
      // in a cluster the receipt comes once JetStream has the frames; a refusal is logged by the intake either way
      onFrames: (device, payload, layout) => { intake.handle(device, payload, layout) },
      refusals,
      maxPacketBytes: config.MQTT_MAX_PAYLOAD,
      onConnectedChange: (up) => connected.set(up ? 1 : 0),
      onPublish: (kind) => published.inc({ kind })
    })
    bridge = created
    app.addHook('onReady', async () => created.start())
    app.addHook('onClose', async () => {
      await created.close()
      refusals.close()
    })
  }

  const broker = url === undefined ? null : brokerAddress(url)
  await app.register(homeAssistantRoutes, {
    status: (): HomeAssistantStatus => ({ enabled: bridge !== undefined, connected: bridge?.isConnected ?? false, broker, ...settings })
  })
}, {
  name: 'home-assistant',
  fastify: '5.x',
  dependencies: ['doors', 'rpi-servers', 'cluster'],
  decorators: { fastify: ['config', 'metrics', 'doors', 'frames', 'cluster'] }
})

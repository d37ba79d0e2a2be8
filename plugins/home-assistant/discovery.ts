import { isBinaryLayout, type BinaryLayout } from '../../domain/frames.js'
import type { Door } from '../../schemas/doors.js'

/**
 * Home Assistant MQTT discovery for doorsense, as pure functions: the topics
 * (issue 13's contract, kept exactly) and the retained config and state
 * payloads. No I/O; `bridge.ts` publishes what these return.
 *
 * Discovery topics follow `<discovery_prefix>/<component>/<node_id>/<object_id>/config`
 * with node_id `doorsense_<id>` so one door's entities sit under one level.
 */

/** Where doorsense publishes: Home Assistant's discovery prefix and doorsense's own base topic. */
export interface TopicOptions {
  /** Home Assistant's discovery prefix (MQTT_DISCOVERY_PREFIX, default `homeassistant`). */
  discoveryPrefix: string
  /** Prefix of doorsense's states, availability and frames in (MQTT_BASE_TOPIC, default `doorsense`). */
  baseTopic: string
}

/** What the discovery configs need besides the topics. */
export interface DiscoveryOptions extends TopicOptions {
  /** doorsense's version (package.json), reported as `origin.sw_version` and the bridge's `sw_version`. */
  swVersion: string
  /**
   * The status topic that carries the publisher's `online` and its last will:
   * what every door config lists for availability and the bridge's sensor
   * reads. Default `<base>/status`; in a cluster, the instance's own
   * {@link instanceStatusTopic}.
   */
  statusTopic?: string
}

/** The Home Assistant device that stands for doorsense itself; every door's `via_device`. */
export const BRIDGE_IDENTIFIER = 'doorsense_bridge'

/** The entities of one door, in publishing order (the door itself first). */
export const DOOR_ENTITIES = ['door', 'angle', 'confidence', 'frame_rate', 'recalibration'] as const
export type DoorEntity = typeof DOOR_ENTITIES[number]

/** Home Assistant's own `None` payload: sets a binary sensor or sensor to `unknown`. */
export const PAYLOAD_NONE = 'None'

/** The state topics of one door, under the base topic. */
export interface DoorStateTopics {
  state: string
  availability: string
  angle: string
  confidence: string
  frameRate: string
  recalibration: string
}

/** The payloads that go on a door's state topics (all retained). */
export type DoorStatePayloads = { [K in keyof DoorStateTopics]: string }

/** One retained message. `payload` is '' to clear a retained message (and, on a config topic, remove the entity). */
export interface RetainedMessage {
  topic: string
  payload: string
}

/** `<base>/status`: `online` while doorsense is connected, `offline` (last will, clean stop). */
export function statusTopic (baseTopic: string): string {
  return `${baseTopic}/status`
}

/**
 * `<base>/instances/<id>/status`: one cluster instance's `online`, and its
 * last will. Characters MQTT reserves (`/`, `+`, `#`) and any other outside
 * `[A-Za-z0-9_.-]` in the ID become `_`.
 */
export function instanceStatusTopic (baseTopic: string, instanceId: string): string {
  return `${baseTopic}/instances/${instanceId.replace(/[^A-Za-z0-9_.-]/g, '_')}/status`
}

/** `<base>/instances/+/status`: every cluster instance's status. */
export function instanceStatusFilter (baseTopic: string): string {
  return `${baseTopic}/instances/+/status`
}

/** Whether `topic` is a cluster instance's status topic under `baseTopic`. */
export function isInstanceStatusTopic (baseTopic: string, topic: string): boolean {
  const prefix = `${baseTopic}/instances/`
  if (!topic.startsWith(prefix) || !topic.endsWith('/status')) return false
  const id = topic.slice(prefix.length, -'/status'.length)
  return /^[A-Za-z0-9_.-]+$/.test(id)
}

/** `<prefix>/status`: Home Assistant's birth (`online`) and last will (`offline`). */
export function homeAssistantStatusTopic (discoveryPrefix: string): string {
  return `${discoveryPrefix}/status`
}

/** `<base>/frames/+`: the subscription for frames published by devices directly. */
export function framesFilter (baseTopic: string): string {
  return `${baseTopic}/frames/+`
}

/** `<base>/frames/+/+`: the subscription for binary frames (`<base>/frames/<id>/<layout>`). */
export function binaryFramesFilter (baseTopic: string): string {
  return `${baseTopic}/frames/+/+`
}

/** `<base>/frames/<id>` for one device. */
export function framesTopic (baseTopic: string, device: number): string {
  return `${baseTopic}/frames/${device}`
}

/** `<base>/frames/<id>/<layout>`: one device's binary frames, raw frames of `layout` back to back. */
export function binaryFramesTopic (baseTopic: string, device: number, layout: BinaryLayout): string {
  return `${framesTopic(baseTopic, device)}/${layout}`
}

/**
 * The device of a frames topic, and for `<base>/frames/<id>/<layout>`
 * (`pi108`, `esp128`) the layout of its binary payload; undefined for any
 * other topic (an id that is not {@link parseFramesTopic}'s, another last level).
 */
export function parseAnyFramesTopic (baseTopic: string, topic: string): { device: number, layout?: BinaryLayout } | undefined {
  const device = parseFramesTopic(baseTopic, topic)
  if (device !== undefined) return { device }
  const cut = topic.lastIndexOf('/')
  const layout = topic.slice(cut + 1)
  if (!isBinaryLayout(layout)) return undefined
  const binaryDevice = parseFramesTopic(baseTopic, topic.slice(0, cut))
  return binaryDevice === undefined ? undefined : { device: binaryDevice, layout }
}

/**
 * The device id in a `<base>/frames/<id>` topic: a decimal integer 0..32767
 * without sign or leading zeros (so one device has exactly one topic);
 * undefined for anything else.
 */
export function parseFramesTopic (baseTopic: string, topic: string): number | undefined {
  const prefix = `${baseTopic}/frames/`
  if (!topic.startsWith(prefix)) return undefined
  const id = topic.slice(prefix.length)
  if (!/^(0|[1-9][0-9]{0,4})$/.test(id)) return undefined
  const device = Number(id)
  return device <= 32767 ? device : undefined
}

/** The state topics of one door: `<base>/doors/<id>/…`. */
export function doorStateTopics (baseTopic: string, device: number): DoorStateTopics {
  const door = `${baseTopic}/doors/${device}`
  return {
    state: `${door}/state`,
    availability: `${door}/availability`,
    angle: `${door}/angle`,
    confidence: `${door}/confidence`,
    frameRate: `${door}/frame_rate`,
    recalibration: `${door}/recalibration`
  }
}

/** The discovery config topic of one entity of a door. */
export function doorConfigTopic (discoveryPrefix: string, device: number, entity: DoorEntity): string {
  const component = entity === 'door' || entity === 'recalibration' ? 'binary_sensor' : 'sensor'
  return `${discoveryPrefix}/${component}/doorsense_${device}/${entity}/config`
}

/** The discovery config topic of the bridge's connectivity sensor. */
export function bridgeConfigTopic (discoveryPrefix: string): string {
  return `${discoveryPrefix}/binary_sensor/${BRIDGE_IDENTIFIER}/connectivity/config`
}

/** The name Home Assistant shows for a door's device: its Pi's name, else `Door <id>`. */
export function doorDeviceName (door: Pick<Door, 'device' | 'name'>): string {
  const name = door.name.trim()
  return name === '' ? `Door ${door.device}` : name
}

/**
 * The discovery configs of one door's five entities. Names follow Home
 * Assistant's entity naming (has_entity_name): the device carries the door's
 * name, the door entity itself is named `null` so it is shown as just the
 * device name ("Front door", not "Front door Door"), the others carry only
 * what they are ("Angle" → "Front door Angle").
 */
export function doorConfigs (
  door: Pick<Door, 'device' | 'name'>,
  options: DiscoveryOptions
): Array<RetainedMessage & { entity: DoorEntity, config: Record<string, unknown> }> {
  const id = door.device
  const topics = doorStateTopics(options.baseTopic, id)
  const common = {
    device: {
      identifiers: [`doorsense_${id}`],
      name: doorDeviceName(door),
      manufacturer: 'doorsense',
      model: 'Wi-Fi CSI door sensor',
      via_device: BRIDGE_IDENTIFIER
    },
    origin: { name: 'doorsense', sw_version: options.swVersion },
    availability: [{ topic: options.statusTopic ?? statusTopic(options.baseTopic) }, { topic: topics.availability }],
    availability_mode: 'all'
  }
  const configs: Record<DoorEntity, Record<string, unknown>> = {
    door: {
      name: null,
      unique_id: `doorsense_${id}_door`,
      device_class: 'door',
      state_topic: topics.state,
      payload_on: 'ON',
      payload_off: 'OFF',
      ...common
    },
    angle: {
      name: 'Angle',
      unique_id: `doorsense_${id}_angle`,
      state_topic: topics.angle,
      unit_of_measurement: '°',
      state_class: 'measurement',
      suggested_display_precision: 0,
      icon: 'mdi:angle-acute',
      ...common
    },
    confidence: {
      name: 'Confidence',
      unique_id: `doorsense_${id}_confidence`,
      state_topic: topics.confidence,
      unit_of_measurement: '%',
      state_class: 'measurement',
      suggested_display_precision: 0,
      icon: 'mdi:gauge',
      ...common
    },
    frame_rate: {
      name: 'Frame rate',
      unique_id: `doorsense_${id}_frame_rate`,
      state_topic: topics.frameRate,
      unit_of_measurement: 'frames/s',
      state_class: 'measurement',
      suggested_display_precision: 1,
      entity_category: 'diagnostic',
      icon: 'mdi:wifi',
      ...common
    },
    recalibration: {
      name: 'Calibration',
      unique_id: `doorsense_${id}_recalibration`,
      device_class: 'problem',
      state_topic: topics.recalibration,
      payload_on: 'ON',
      payload_off: 'OFF',
      entity_category: 'diagnostic',
      ...common
    }
  }
  return DOOR_ENTITIES.map((entity) => {
    const config = configs[entity]
    return { entity, topic: doorConfigTopic(options.discoveryPrefix, id, entity), config, payload: JSON.stringify(config) }
  })
}

/**
 * The bridge: a Home Assistant device for doorsense itself (so each door's
 * `via_device` names a real device) with one diagnostic connectivity sensor
 * reading `<base>/status`. It has no availability of its own on purpose: it
 * must show "Disconnected", not "Unavailable", when the last will fires.
 * In a cluster it reads the status of the instance that published it last;
 * the others point it at their own when that instance goes offline.
 */
export function bridgeConfig (options: DiscoveryOptions): RetainedMessage & { config: Record<string, unknown> } {
  const config = {
    name: 'Connectivity',
    unique_id: `${BRIDGE_IDENTIFIER}_connectivity`,
    device_class: 'connectivity',
    state_topic: options.statusTopic ?? statusTopic(options.baseTopic),
    payload_on: 'online',
    payload_off: 'offline',
    entity_category: 'diagnostic',
    device: {
      identifiers: [BRIDGE_IDENTIFIER],
      name: 'doorsense',
      manufacturer: 'doorsense',
      model: 'doorsense server',
      sw_version: options.swVersion
    },
    origin: { name: 'doorsense', sw_version: options.swVersion }
  }
  return { topic: bridgeConfigTopic(options.discoveryPrefix), config, payload: JSON.stringify(config) }
}

/** A number as Home Assistant reads it: at most one decimal, no `-0`, `None` when not a finite number. */
function decimal (value: number | null): string {
  if (value === null || !Number.isFinite(value)) return PAYLOAD_NONE
  const rounded = Math.round(value * 10) / 10
  return String(rounded === 0 ? 0 : rounded)
}

/**
 * What a door's state topics carry: `ON` open / `OFF` closed (and
 * closedOrAjar, which a user accepted as closed) / `None` unknown — also a
 * door whose frames its model does not know (not calibrated for this room); availability `online` while its Pi is live; angle in degrees,
 * confidence in percent (`None` while the state is unknown, where the 0 it
 * holds means nothing), frame rate in frames per second, recalibration
 * `ON` while `needsRecalibration`.
 */
export function doorStatePayloads (door: Door): DoorStatePayloads {
  return {
    // closedOrAjar: the user accepted that this door cannot tell ajar from closed (its Calibration problem stays ON)
    state: door.state === 'open' ? 'ON' : door.state === 'closed' || door.state === 'closedOrAjar' ? 'OFF' : PAYLOAD_NONE,
    availability: door.live ? 'online' : 'offline',
    angle: door.state === 'unknown' ? PAYLOAD_NONE : decimal(door.angle),
    confidence: door.state === 'unknown' ? PAYLOAD_NONE : decimal(door.confidence * 100),
    frameRate: decimal(door.frameRate),
    recalibration: door.needsRecalibration ? 'ON' : 'OFF'
  }
}

/**
 * The retained messages that make a removed door disappear: an empty config
 * on each of its discovery topics (Home Assistant deletes the entity) and an
 * empty payload on each state topic (the broker drops the retained value).
 */
export function doorRemoval (device: number, options: TopicOptions): RetainedMessage[] {
  const configs = DOOR_ENTITIES.map((entity) => ({ topic: doorConfigTopic(options.discoveryPrefix, device, entity), payload: '' }))
  const states = Object.values(doorStateTopics(options.baseTopic, device)).map((topic) => ({ topic, payload: '' }))
  return [...configs, ...states]
}

/** A broker URL fit for a log line: scheme, host and port only, never user or password. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}`
  } catch {
    return '(unparseable MQTT_URL)'
  }
}

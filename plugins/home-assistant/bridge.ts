import { randomBytes } from 'node:crypto'
import { connect, type IPublishPacket, type MqttClient } from 'mqtt'
import type { Door } from '../../schemas/doors.js'
import {
  bridgeConfig,
  doorConfigs,
  doorDeviceName,
  doorRemoval,
  doorStatePayloads,
  doorStateTopics,
  framesFilter,
  homeAssistantStatusTopic,
  parseFramesTopic,
  redactUrl,
  statusTopic,
  type DiscoveryOptions,
  type DoorStatePayloads,
  type DoorStateTopics
} from './discovery.js'

/**
 * Where the doors come from: the doors service (an EventEmitter) fits as is.
 * 'door' carries the whole door on every change of any field, 'removed' the
 * id of a door that is gone for good.
 */
export interface DoorSource {
  list (): Door[]
  on (event: 'door', listener: (door: Door) => void): unknown
  on (event: 'removed', listener: (device: number) => void): unknown
  off (event: 'door', listener: (door: Door) => void): unknown
  off (event: 'removed', listener: (device: number) => void): unknown
}

/** A pino-style logger (`fastify.log.child(…)` fits). */
export interface BridgeLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

/** What a publish was, for a counter's label. */
export type PublishKind = 'status' | 'config' | 'state' | 'availability' | 'attribute' | 'removal'

export interface HomeAssistantBridgeOptions extends DiscoveryOptions {
  /** MQTT_URL: `mqtt://host:1883` or `mqtts://…`. Never logged as given (it may hold credentials). */
  url: string
  username?: string
  /** Never logged. */
  password?: string
  /** Default `doorsense-<8 random hex digits>`. */
  clientId?: string
  source: DoorSource
  /**
   * A message on `<base>/frames/<id>`: the device id (0..32767) and the raw
   * payload, to decode and ingest. Topics with any other id are refused and
   * counted. Must not throw; if it does, the error is caught, counted and logged.
   */
  onFrames?: (device: number, payload: Buffer) => void
  log: BridgeLogger
  /** Called on each change of the connection (for the `doorsense_mqtt_connected` gauge). */
  onConnectedChange?: (connected: boolean) => void
  /** Called once per message handed to the broker (for a publish counter). */
  onPublish?: (kind: PublishKind) => void
  /** Called for each message on `<base>/frames/+` whose id is not a device id. */
  onFrameRefused?: (topic: string) => void
  /** Least milliseconds between two publishes of a door's angle/confidence/frame rate/recalibration. Default 1000. */
  attributeIntervalMs?: number
  /** First reconnect delay, doubled on each failure. Default 1000. */
  reconnectMinMs?: number
  /** Longest reconnect delay. Default 30000. */
  reconnectMaxMs?: number
  /** Longest wait for a CONNACK. Default 10000. */
  connectTimeoutMs?: number
  /** Longest `close()` waits for the broker (offline publish, then disconnect), each. Default 2000. */
  closeTimeoutMs?: number
  /** MQTT keep-alive in seconds; the broker fires the last will after 1.5× this of silence. Default 30. */
  keepaliveSeconds?: number
  /** Clock in epoch milliseconds; tests inject their own. */
  now?: () => number
}

/** Counters since start, for tests and diagnostics. */
export interface BridgeStats {
  connected: boolean
  connects: number
  published: number
  /** Messages waiting for the broker (latest payload per topic). */
  pending: number
  framesRouted: number
  framesRefused: number
  framesFailed: number
  listenerErrors: number
}

interface TrackedDoor {
  door: Door
  /** The device name the published configs carry; a change republishes them. */
  configName: string
  /** When an attribute topic was last published (epoch ms), for the rate limit. */
  lastAttributeAt: number
  /** The trailing publish, when one is due. */
  timer?: NodeJS.Timeout
}

const ATTRIBUTE_TOPICS = ['angle', 'confidence', 'frameRate', 'recalibration'] as const satisfies ReadonlyArray<keyof DoorStateTopics>
const LOG_EVERY_MS = 10_000

/**
 * Publishes every door to Home Assistant through an MQTT broker, with MQTT
 * discovery, and routes frames published on `<base>/frames/<id>` to
 * `onFrames`. Knows nothing of Fastify.
 *
 * A broker that is down or goes away never blocks or fails the caller:
 * `start()` returns at once, the door listeners only compute payloads and
 * hand them to the client (or, while disconnected, keep the latest payload
 * per topic), and the connection is retried with a doubling, bounded delay.
 * On every connect the full current picture is published again, so nothing
 * lost in a broken connection stays lost.
 */
export class HomeAssistantBridge {
  private readonly options: HomeAssistantBridgeOptions
  private readonly log: BridgeLogger
  private readonly now: () => number
  private readonly attributeIntervalMs: number
  private readonly reconnectMinMs: number
  private readonly reconnectMaxMs: number
  private readonly closeTimeoutMs: number
  private readonly clientId: string
  private readonly safeUrl: string
  private readonly status: string
  private readonly haStatus: string

  private client: MqttClient | undefined
  private connected = false
  private closing: Promise<void> | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private reconnectDelayMs: number
  private failures = 0
  private lastError: string | undefined
  private readonly doors = new Map<number, TrackedDoor>()
  /** Doors removed since start: their empty configs are published again on every connect. */
  private readonly removed = new Set<number>()
  /** The last payload handed over (published or queued) per state topic, so only changes go out. */
  private readonly sent = new Map<string, string>()
  /** While disconnected: the latest payload per topic, bounded by the number of topics. */
  private pending = new Map<string, { payload: string, kind: PublishKind }>()
  private readonly lastLogged = new Map<string, { at: number, suppressed: number }>()
  private readonly counters = { connects: 0, published: 0, framesRouted: 0, framesRefused: 0, framesFailed: 0, listenerErrors: 0 }

  constructor (options: HomeAssistantBridgeOptions) {
    this.options = options
    this.log = options.log
    this.now = options.now ?? Date.now
    this.attributeIntervalMs = options.attributeIntervalMs ?? 1000
    this.reconnectMinMs = options.reconnectMinMs ?? 1000
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, options.reconnectMaxMs ?? 30_000)
    this.reconnectDelayMs = this.reconnectMinMs
    this.closeTimeoutMs = options.closeTimeoutMs ?? 2000
    this.clientId = options.clientId ?? `doorsense-${randomBytes(4).toString('hex')}`
    this.safeUrl = redactUrl(options.url)
    this.status = statusTopic(options.baseTopic)
    this.haStatus = homeAssistantStatusTopic(options.discoveryPrefix)
  }

  /** Whether the broker connection is up now. */
  get isConnected (): boolean {
    return this.connected
  }

  /**
   * Starts listening to the doors and connecting; returns at once. A broker
   * that cannot be reached is retried, never thrown. Only a URL MQTT.js
   * cannot use at all (validated by the config before) throws here.
   */
  start (): void {
    if (this.client !== undefined || this.closing !== undefined) return
    this.options.source.on('door', this.handleDoor)
    this.options.source.on('removed', this.handleRemoved)
    this.client = connect(this.options.url, {
      clientId: this.clientId,
      username: this.options.username,
      password: this.options.password,
      clean: true,
      // we subscribe on every connect ourselves
      resubscribe: false,
      keepalive: this.options.keepaliveSeconds ?? 30,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      // reconnects are ours (doubling delay); MQTT.js would retry at a fixed period
      reconnectPeriod: 0,
      // nothing goes into MQTT.js's offline queue: we publish only while connected
      queueQoSZero: false,
      will: { topic: this.status, payload: Buffer.from('offline'), qos: 1, retain: true }
    })
    this.client.on('connect', () => this.guard('connect', () => this.onConnect()))
    this.client.on('close', () => this.guard('close', () => this.onClose()))
    this.client.on('error', (error) => { this.lastError = error.message })
    this.client.on('message', (topic, payload, packet) => this.guard('message', () => this.onMessage(topic, payload, packet)))
    this.log.info({ url: this.safeUrl, clientId: this.clientId, discoveryPrefix: this.options.discoveryPrefix, baseTopic: this.options.baseTopic },
      'home-assistant: connecting to the MQTT broker')
  }

  /**
   * Publishes `<base>/status` = `offline` (retained) when connected, then
   * disconnects; stops every timer. Each step waits at most `closeTimeoutMs`,
   * so a vanished broker cannot hold up shutdown. Safe to call twice.
   */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  /** Counters since start. */
  stats (): BridgeStats {
    return { connected: this.connected, pending: this.pending.size, ...this.counters }
  }

  private async shutdown (): Promise<void> {
    this.options.source.off('door', this.handleDoor)
    this.options.source.off('removed', this.handleRemoved)
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    for (const tracked of this.doors.values()) clearTimeout(tracked.timer)
    const client = this.client
    if (client === undefined) return
    let force = false
    if (client.connected) {
      try {
        await withTimeout(client.publishAsync(this.status, 'offline', { qos: 1, retain: true }), this.closeTimeoutMs)
        this.countPublish('status')
      } catch (error) {
        force = true
        this.log.warn({ url: this.safeUrl, error: errorMessage(error) }, 'home-assistant: could not publish offline before disconnecting')
      }
    }
    try {
      await withTimeout(client.endAsync(force), this.closeTimeoutMs)
    } catch {
      client.end(true)
    }
    this.setConnected(false)
    this.log.info({ url: this.safeUrl }, 'home-assistant: disconnected from the MQTT broker')
  }

  private onConnect (): void {
    const client = this.client
    if (client === undefined || this.closing !== undefined) return
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    this.failures = 0
    this.reconnectDelayMs = this.reconnectMinMs
    this.counters.connects++
    this.setConnected(true)
    this.log.info({ url: this.safeUrl, clientId: this.clientId }, 'home-assistant: connected to the MQTT broker')

    const queued = this.pending
    this.pending = new Map()
    this.publish(client, this.status, 'online', 'status')
    client.subscribe({ [this.haStatus]: { qos: 1 }, [framesFilter(this.options.baseTopic)]: { qos: 0 } }, (error) => {
      if (error !== null && error !== undefined && this.closing === undefined) {
        this.log.warn({ url: this.safeUrl, error: error.message }, 'home-assistant: subscribe failed')
      }
    })
    let snapshot: ReturnType<HomeAssistantBridge['snapshot']> = []
    try {
      snapshot = this.snapshot(true)
    } catch (error) {
      // a door source that fails must not cost what already waits
      this.counters.listenerErrors++
      this.log.error({ error: errorMessage(error) }, 'home-assistant: listing the doors failed; publishing what waited only')
    }
    for (const message of snapshot) {
      queued.delete(message.topic)
      this.publish(client, message.topic, message.payload, message.kind)
    }
    // what is left waited for a topic the snapshot does not cover
    for (const [topic, { payload, kind }] of queued) this.publish(client, topic, payload, kind)
  }

  private onClose (): void {
    const wasConnected = this.connected
    this.setConnected(false)
    if (this.closing !== undefined || this.reconnectTimer !== undefined) return
    this.failures++
    const delayMs = this.reconnectDelayMs
    this.reconnectDelayMs = Math.min(this.reconnectMaxMs, delayMs * 2)
    const fields = { url: this.safeUrl, error: this.lastError, retryInMs: delayMs, failures: this.failures }
    if (wasConnected) this.log.warn(fields, 'home-assistant: lost the MQTT broker; reconnecting')
    else if (this.failures === 1) this.log.warn(fields, 'home-assistant: cannot reach the MQTT broker; retrying with backoff')
    else this.log.debug(fields, 'home-assistant: MQTT broker still unreachable')
    this.lastError = undefined
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.closing === undefined) this.guard('reconnect', () => this.client?.reconnect())
    }, delayMs).unref()
  }

  private onMessage (topic: string, payload: Buffer, packet: IPublishPacket): void {
    const client = this.client
    if (client === undefined || this.closing !== undefined) return
    if (topic === this.haStatus) {
      if (payload.toString() === 'online') {
        this.log.info({ retained: packet.retain }, 'home-assistant: Home Assistant came online; republishing every door')
        for (const message of this.snapshot(false)) this.publish(client, message.topic, message.payload, message.kind)
      }
      return
    }
    const device = parseFramesTopic(this.options.baseTopic, topic)
    if (device === undefined) {
      this.counters.framesRefused++
      this.hook(() => this.options.onFrameRefused?.(topic))
      this.warnEvery('refused', { topic }, 'home-assistant: frames on a topic without a device id 0..32767; ignored')
      return
    }
    if (this.options.onFrames === undefined) return
    try {
      this.options.onFrames(device, payload)
      this.counters.framesRouted++
    } catch (error) {
      this.counters.framesFailed++
      this.warnEvery('frames-failed', { device, error: errorMessage(error) }, 'home-assistant: frames from MQTT could not be handled')
    }
  }

  private readonly handleDoor = (door: Door): void => {
    this.guard('door', () => this.onDoor(door))
  }

  private readonly handleRemoved = (device: number): void => {
    this.guard('removed', () => this.onRemoved(device))
  }

  private onDoor (door: Door): void {
    if (this.closing !== undefined) return
    const id = door.device
    this.removed.delete(id)
    const name = doorDeviceName(door)
    let tracked = this.doors.get(id)
    if (tracked === undefined || tracked.configName !== name) {
      for (const config of doorConfigs(door, this.options)) this.send(config.topic, config.payload, 'config')
    }
    if (tracked === undefined) {
      tracked = { door, configName: name, lastAttributeAt: Number.NEGATIVE_INFINITY }
      this.doors.set(id, tracked)
    } else {
      tracked.door = door
      tracked.configName = name
    }
    const topics = doorStateTopics(this.options.baseTopic, id)
    const payloads = doorStatePayloads(door)
    this.sendIfChanged(topics.state, payloads.state, 'state')
    this.sendIfChanged(topics.availability, payloads.availability, 'availability')
    this.scheduleAttributes(tracked, topics, payloads)
  }

  private onRemoved (device: number): void {
    if (this.closing !== undefined) return
    const tracked = this.doors.get(device)
    clearTimeout(tracked?.timer)
    this.doors.delete(device)
    this.removed.add(device)
    for (const message of doorRemoval(device, this.options)) {
      this.sent.delete(message.topic)
      this.send(message.topic, message.payload, 'removal')
    }
  }

  /** At most one attribute publish per door per interval; a trailing one makes sure the last value lands. */
  private scheduleAttributes (tracked: TrackedDoor, topics: DoorStateTopics, payloads: DoorStatePayloads): void {
    if (tracked.timer !== undefined) return // the trailing publish reads the door as it is then
    if (!ATTRIBUTE_TOPICS.some((key) => this.sent.get(topics[key]) !== payloads[key])) return
    const waitMs = tracked.lastAttributeAt + this.attributeIntervalMs - this.now()
    if (waitMs <= 0) {
      this.publishAttributes(tracked, topics, payloads)
      return
    }
    tracked.timer = setTimeout(() => {
      tracked.timer = undefined
      if (this.closing !== undefined || this.doors.get(tracked.door.device) !== tracked) return
      this.guard('attributes', () => this.publishAttributes(tracked, topics, doorStatePayloads(tracked.door)))
    }, waitMs).unref()
  }

  private publishAttributes (tracked: TrackedDoor, topics: DoorStateTopics, payloads: DoorStatePayloads): void {
    let published = false
    for (const key of ATTRIBUTE_TOPICS) published = this.sendIfChanged(topics[key], payloads[key], 'attribute') || published
    if (published) tracked.lastAttributeAt = this.now()
  }

  /**
   * Everything Home Assistant should hold right now: the bridge's config,
   * each door's configs and every state topic; with `removals`, the empty
   * configs of removed doors too (a removal lost in a broken connection
   * still lands).
   */
  private snapshot (removals: boolean): Array<{ topic: string, payload: string, kind: PublishKind }> {
    const messages: Array<{ topic: string, payload: string, kind: PublishKind }> = []
    messages.push({ ...bridgeConfig(this.options), kind: 'config' })
    const now = this.now()
    for (const door of this.options.source.list()) {
      const id = door.device
      if (this.removed.has(id)) this.removed.delete(id)
      const name = doorDeviceName(door)
      const tracked = this.doors.get(id)
      if (tracked === undefined) this.doors.set(id, { door, configName: name, lastAttributeAt: now })
      else Object.assign(tracked, { door, configName: name, lastAttributeAt: now })
      for (const config of doorConfigs(door, this.options)) messages.push({ topic: config.topic, payload: config.payload, kind: 'config' })
      const topics = doorStateTopics(this.options.baseTopic, id)
      const payloads = doorStatePayloads(door)
      messages.push({ topic: topics.state, payload: payloads.state, kind: 'state' })
      messages.push({ topic: topics.availability, payload: payloads.availability, kind: 'availability' })
      for (const key of ATTRIBUTE_TOPICS) messages.push({ topic: topics[key], payload: payloads[key], kind: 'attribute' })
    }
    if (removals) {
      for (const device of this.removed) {
        for (const message of doorRemoval(device, this.options)) messages.push({ ...message, kind: 'removal' })
      }
    }
    for (const message of messages) {
      if (message.kind !== 'config' && message.kind !== 'removal') this.sent.set(message.topic, message.payload)
    }
    return messages
  }

  private sendIfChanged (topic: string, payload: string, kind: PublishKind): boolean {
    if (this.sent.get(topic) === payload) return false
    this.sent.set(topic, payload)
    this.send(topic, payload, kind)
    return true
  }

  /** Publishes now when connected, else keeps the latest payload for the topic until the next connect. */
  private send (topic: string, payload: string, kind: PublishKind): void {
    const client = this.client
    if (client !== undefined && this.connected && client.connected) {
      this.publish(client, topic, payload, kind)
      return
    }
    this.pending.delete(topic)
    this.pending.set(topic, { payload, kind })
  }

  private publish (client: MqttClient, topic: string, payload: string, kind: PublishKind): void {
    // retained so Home Assistant gets the current value the moment it subscribes; QoS 1 so the broker has it
    client.publish(topic, payload, { qos: 1, retain: true }, (error) => {
      if (error !== undefined && error !== null && this.closing === undefined) {
        this.log.debug({ topic, error: error.message }, 'home-assistant: publish not acknowledged (republished on the next connect)')
      }
    })
    this.countPublish(kind)
  }

  private countPublish (kind: PublishKind): void {
    this.counters.published++
    this.hook(() => this.options.onPublish?.(kind))
  }

  private setConnected (connected: boolean): void {
    if (this.connected === connected) return
    this.connected = connected
    this.hook(() => this.options.onConnectedChange?.(connected))
  }

  /** Runs a metrics hook; one that throws must not break the bridge. */
  private hook (run: () => void): void {
    try {
      run()
    } catch (error) {
      this.warnEvery('hook', { error: errorMessage(error) }, 'home-assistant: a metrics hook threw')
    }
  }

  /** Runs an event handler; nothing thrown reaches the emitter (the door source's emit, MQTT.js's stream). */
  private guard (what: string, run: () => void): void {
    try {
      run()
    } catch (error) {
      this.counters.listenerErrors++
      this.log.error({ what, error: errorMessage(error) }, 'home-assistant: handler failed')
    }
  }

  /** A warning at most once per 10 s per key, saying how many were left out meanwhile. */
  private warnEvery (key: string, fields: object, msg: string): void {
    const now = this.now()
    const last = this.lastLogged.get(key)
    if (last !== undefined && now - last.at < LOG_EVERY_MS) {
      last.suppressed++
      return
    }
    this.log.warn({ ...fields, suppressed: last?.suppressed ?? 0 }, msg)
    this.lastLogged.set(key, { at: now, suppressed: 0 })
  }
}

function errorMessage (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** `promise`, or a rejection after `ms`; the timer never outlives the race. */
async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

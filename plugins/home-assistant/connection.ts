import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { connect, type MqttClient } from 'mqtt'
import { backoffDelay, type BackoffOptions } from '../../domain/backoff.js'
import { redactUrl } from './discovery.js'
import { limitIncomingPackets, type SkippedPacket } from './packet-limit.js'

/** A pino-style logger (`fastify.log.child(…)` fits). */
export interface BridgeLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

/** What a publish was, for a counter's label. */
export type PublishKind = 'status' | 'config' | 'state' | 'availability' | 'attribute' | 'removal'

/**
 * 1 s, 2 s, 4 s, … up to 30 s, each reduced by up to half at random: after a
 * broker restart, its clients (Home Assistant, doorsense, other bridges) do
 * not all reconnect in the same instant.
 */
export const DEFAULT_RECONNECT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 })

export interface BrokerConnectionOptions {
  /** `mqtt://host:1883` or `mqtts://…`. Never logged as given (it may hold credentials). */
  url: string
  username?: string
  /** Never logged. */
  password?: string
  /** Default `doorsense-<8 random hex digits>`. */
  clientId?: string
  /** Carries `online` while connected, `offline` after a clean close and as the last will; retained. */
  statusTopic: string
  /** Subscribed at QoS 0 on every connect (so a message over `maxPacketBytes` can be skipped unread). */
  subscriptions: string[]
  /** Largest MQTT packet read from the broker, in bytes: a larger one is skipped as it arrives, never buffered. */
  maxPacketBytes: number
  /** Delays between reconnects, the first after a connection is lost. Default {@link DEFAULT_RECONNECT_BACKOFF}. */
  reconnectBackoff?: BackoffOptions
  /** Uniform numbers in [0, 1) for the reconnect jitter. */
  random?: () => number
  /** Longest wait for a CONNACK. Default 10000. */
  connectTimeoutMs?: number
  /** Longest `close()` waits for the broker (offline publish, then disconnect), each. Default 2000. */
  closeTimeoutMs?: number
  /** MQTT keep-alive in seconds; the broker fires the last will after 1.5× this of silence. Default 30. */
  keepaliveSeconds?: number
  log: BridgeLogger
  /** Runs each MQTT.js event handler: nothing thrown may reach MQTT.js's stream. */
  guard: (what: string, run: () => void) => void
  /**
   * Connected, `online` published and subscribed. Returns the doors whose
   * every topic it has just published again: what waited for them meanwhile
   * is dropped, the rest of what waited goes out after.
   */
  onUp: () => ReadonlySet<number>
  /** The connection is lost, or closed. */
  onDown: () => void
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void
  /** A message over `maxPacketBytes`, skipped as it arrived. */
  onSkipped: (packet: SkippedPacket) => void
  /** Once per message handed to the broker. */
  onPublish: (kind: PublishKind) => void
}

/** One message waiting for the broker while disconnected; `device` is the door it belongs to, if any. */
interface Waiting {
  payload: string
  kind: PublishKind
  device?: number
}

/**
 * The MQTT connection of the Home Assistant bridge: connects, reconnects with
 * the jittered exponential backoff the Pi agent uses (MQTT.js's own reconnect
 * would retry at a fixed period), says `online`/`offline` on the status topic
 * with a last will for a crash, and keeps the latest payload per topic while
 * disconnected. It knows no door: `onUp` is where the caller publishes
 * everything again.
 */
export class BrokerConnection {
  readonly clientId: string
  /** The broker URL fit for a log line: no credentials. */
  readonly safeUrl: string
  private readonly options: BrokerConnectionOptions
  private readonly log: BridgeLogger
  private readonly reconnectBackoff: BackoffOptions
  private readonly random: () => number
  private readonly closeTimeoutMs: number

  private client: MqttClient | undefined
  private connected = false
  private connects = 0
  private closing: Promise<void> | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  /** Connections lost or refused since the last connect. */
  private failures = 0
  private lastError: string | undefined
  /** While disconnected: the latest payload per topic, bounded by the number of topics. */
  private pending = new Map<string, Waiting>()

  constructor (options: BrokerConnectionOptions) {
    this.options = options
    this.log = options.log
    this.clientId = options.clientId ?? `doorsense-${randomBytes(4).toString('hex')}`
    this.safeUrl = redactUrl(options.url)
    this.reconnectBackoff = options.reconnectBackoff ?? DEFAULT_RECONNECT_BACKOFF
    this.random = options.random ?? Math.random
    this.closeTimeoutMs = options.closeTimeoutMs ?? 2000
  }

  /** Whether the broker connection is up now. */
  get isConnected (): boolean {
    return this.connected
  }

  /** Connects since start, and the messages waiting for the broker (latest payload per topic). */
  stats (): { connected: boolean, connects: number, pending: number } {
    return { connected: this.connected, connects: this.connects, pending: this.pending.size }
  }

  /**
   * Starts connecting; returns at once. A broker that cannot be reached is
   * retried, never thrown. Only a URL MQTT.js cannot use at all (validated by
   * the config before) throws here.
   */
  start (): void {
    if (this.client !== undefined || this.closing !== undefined) return
    const { guard } = this.options
    const client = connect(this.options.url, {
      clientId: this.clientId,
      username: this.options.username,
      password: this.options.password,
      clean: true,
      // we subscribe on every connect ourselves
      resubscribe: false,
      keepalive: this.options.keepaliveSeconds ?? 30,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      // reconnects are ours (jittered backoff); MQTT.js would retry at a fixed period
      reconnectPeriod: 0,
      // nothing goes into MQTT.js's offline queue: we publish only while connected
      queueQoSZero: false,
      will: { topic: this.options.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
      // the packet limit goes in before the first connection is made
      manualConnect: true
    })
    limitIncomingPackets(client, this.options.maxPacketBytes, (packet) => guard('skipped', () => this.options.onSkipped(packet)))
    this.client = client
    client.on('connect', () => guard('connect', () => this.onConnect()))
    client.on('close', () => guard('close', () => this.onClose()))
    client.on('error', (error) => { this.lastError = error.message })
    client.on('message', (topic, payload, packet) => guard('message', () => {
      if (this.closing === undefined) this.options.onMessage(topic, payload, packet.retain)
    }))
    client.connect()
  }

  /**
   * Publishes `offline` (retained) on the status topic when connected, then
   * disconnects; stops the reconnect timer. Each step waits at most
   * `closeTimeoutMs`, so a vanished broker cannot hold up shutdown. Safe to
   * call twice.
   */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  /** Publishes now when connected, else keeps the latest payload for the topic until the next connect. */
  send (topic: string, payload: string, kind: PublishKind, device?: number): void {
    const client = this.client
    if (client !== undefined && this.connected && client.connected) {
      this.publish(topic, payload, kind)
      return
    }
    this.pending.delete(topic)
    this.pending.set(topic, { payload, kind, device })
  }

  /** Drops what waits for the broker for `device` (a cluster's door another instance now publishes). */
  forget (device: number): void {
    for (const [topic, waiting] of this.pending) if (waiting.device === device) this.pending.delete(topic)
  }

  /** Publishes now, retained at QoS 1; for a caller that knows the connection is up (a republish). */
  publish (topic: string, payload: string, kind: PublishKind): void {
    const client = this.client
    if (client === undefined) return
    // retained so Home Assistant gets the current value the moment it subscribes; QoS 1 so the broker has it
    client.publish(topic, payload, { qos: 1, retain: true }, (error) => {
      if (error !== undefined && error !== null && this.closing === undefined) {
        this.log.debug({ topic, error: error.message }, 'home-assistant: publish not acknowledged (republished on the next connect)')
      }
    })
    this.options.onPublish(kind)
  }

  /** Lets the event loop run (I/O, timers, requests) and, when the connection holds too much already, waits for it to drain. */
  async yieldTurn (): Promise<void> {
    await nextTurn()
    // on Node, MQTT.js's stream is a node:stream Duplex (ours: packet-limit.ts)
    const stream = this.client?.stream as Duplex | undefined
    if (stream?.writableNeedDrain !== true) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off('drain', done)
        stream.off('close', done)
        resolve()
      }
      stream.once('drain', done)
      stream.once('close', done)
    })
  }

  private async shutdown (): Promise<void> {
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    const client = this.client
    if (client === undefined) return
    let force = false
    if (client.connected) {
      try {
        await withTimeout(client.publishAsync(this.options.statusTopic, 'offline', { qos: 1, retain: true }), this.closeTimeoutMs)
        this.options.onPublish('status')
      } catch (error) {
        force = true
        this.log.warn({ url: this.safeUrl, error: error instanceof Error ? error.message : String(error) },
          'home-assistant: could not publish offline before disconnecting')
      }
    }
    try {
      await withTimeout(client.endAsync(force), this.closeTimeoutMs)
    } catch {
      client.end(true)
    }
    this.down()
    this.log.info({ url: this.safeUrl }, 'home-assistant: disconnected from the MQTT broker')
  }

  private onConnect (): void {
    const client = this.client
    if (client === undefined || this.closing !== undefined) return
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    this.failures = 0
    this.connects++
    this.connected = true
    this.log.info({ url: this.safeUrl, clientId: this.clientId }, 'home-assistant: connected to the MQTT broker')

    const waiting = this.pending
    this.pending = new Map()
    this.publish(this.options.statusTopic, 'online', 'status')
    // QoS 0 all: the broker then sends nothing at QoS 1 or 2, so a message over maxPacketBytes can always be
    // skipped unread (one at QoS 1 would want an acknowledgement)
    const subscriptions = Object.fromEntries(this.options.subscriptions.map((topic) => [topic, { qos: 0 as const }]))
    client.subscribe(subscriptions, (error) => {
      if (error !== null && error !== undefined && this.closing === undefined) {
        this.log.warn({ url: this.safeUrl, error: error.message }, 'home-assistant: subscribe failed')
      }
    })
    const republished = this.options.onUp()
    // what is left waited for a topic the republish does not cover
    for (const [topic, { payload, kind, device }] of waiting) {
      if (device === undefined || !republished.has(device)) this.publish(topic, payload, kind)
    }
  }

  private onClose (): void {
    const wasConnected = this.connected
    this.down()
    if (this.closing !== undefined || this.reconnectTimer !== undefined) return
    const delayMs = Math.round(backoffDelay(this.failures, this.reconnectBackoff, this.random))
    this.failures++
    const fields = { url: this.safeUrl, error: this.lastError, retryInMs: delayMs, failures: this.failures }
    if (wasConnected) this.log.warn(fields, 'home-assistant: lost the MQTT broker; reconnecting')
    else if (this.failures === 1) this.log.warn(fields, 'home-assistant: cannot reach the MQTT broker; retrying with backoff')
    else this.log.debug(fields, 'home-assistant: MQTT broker still unreachable')
    this.lastError = undefined
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.closing === undefined) this.options.guard('reconnect', () => this.client?.reconnect())
    }, delayMs).unref()
  }

  private down (): void {
    if (!this.connected) return
    this.connected = false
    this.options.onDown()
  }
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

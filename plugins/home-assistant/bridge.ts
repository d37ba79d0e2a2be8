import type { BackoffOptions } from '../../domain/backoff.js'
import type { BinaryLayout } from '../../domain/frames.js'
import type { Door } from '../../schemas/doors.js'
import { BrokerConnection, type BridgeLogger, type PublishKind } from './connection.js'
import {
  bridgeConfig,
  doorConfigs,
  doorDeviceName,
  doorRemoval,
  doorStatePayloads,
  doorStateTopics,
  binaryFramesFilter,
  framesFilter,
  homeAssistantStatusTopic,
  instanceStatusFilter,
  instanceStatusTopic,
  isInstanceStatusTopic,
  parseAnyFramesTopic,
  statusTopic,
  type DiscoveryOptions,
  type DoorStateTopics
} from './discovery.js'
import type { SkippedPacket } from './packet-limit.js'
import { RefusalLog, type RefusalSink } from './refusals.js'

/**
 * Where the doors come from: the doors service (an EventEmitter) fits as is.
 * 'door' carries the whole door on every change of any field, 'removed' the
 * id of a door that is gone for good.
 */
export interface DoorSource {
  list (): Door[]
  /** One door as it is now; read when a cluster's door comes to this instance. */
  get? (device: number): Door | undefined
  on (event: 'door', listener: (door: Door) => void): unknown
  on (event: 'removed', listener: (device: number) => void): unknown
  off (event: 'door', listener: (door: Door) => void): unknown
  off (event: 'removed', listener: (device: number) => void): unknown
}

/**
 * Which doors this instance publishes in a cluster (the ClusterService fits
 * as is): the doors it owns and computes (`ownsLive`), told when doors come
 * (`owned`) and go (`disowned`).
 */
export interface DoorOwnership {
  readonly instanceId: string
  ownsLive (device: number): boolean
  on (event: 'owned' | 'disowned', listener: (devices: number[]) => void): unknown
  off (event: 'owned' | 'disowned', listener: (devices: number[]) => void): unknown
}

/**
 * How long after Home Assistant's birth (`<prefix>/status` = `online`) the
 * republish starts, in ms: a random delay in this range, as Home Assistant's
 * MQTT documentation advises (its discovery is ready a moment after the
 * birth, and publishers do not all answer in the same instant). Every birth
 * that arrives meanwhile is answered by the same one republish.
 */
export const BIRTH_DELAY_MS: Readonly<{ min: number, max: number }> = Object.freeze({ min: 1000, max: 5000 })

/** Doors a republish publishes per event-loop turn: 50 doors are 550 messages, a few milliseconds of work. */
export const REPUBLISH_DOORS_PER_TURN = 50

/**
 * Largest MQTT packet read from the broker by default (MQTT_MAX_PAYLOAD's
 * default): the largest frames payload the intake takes (BODY_LIMIT's
 * default, 1 MiB) plus 4 KiB for the topic and the packet header.
 */
export const DEFAULT_MAX_PACKET_BYTES = 1_048_576 + 4096

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
   * In a cluster: publish only the doors this instance owns, its `online` and
   * last will on its own `<base>/instances/<id>/status`, which every config
   * it publishes lists for availability (docs/home-assistant.md, *In a
   * cluster*). Default: every door, on `<base>/status`.
   */
  ownership?: DoorOwnership
  /**
   * A message on `<base>/frames/<id>`, or `<base>/frames/<id>/<layout>`: the
   * device id (0..32767), the raw payload, to decode and ingest, and for the
   * second the layout of its binary frames (`pi108`, `esp128`). Topics with
   * any other id or last level, messages the broker held (retained) and
   * packets over `maxPacketBytes` are refused instead (see `refusals`). Must
   * not throw; if it does, the error is caught, counted and logged.
   */
  onFrames?: (device: number, payload: Buffer, layout?: BinaryLayout) => void
  /**
   * Told of the frames messages refused here (reasons `topic`, `retained`,
   * `too_large`); the app passes the RefusalLog its frame intake reports to,
   * so one counter and one bounded log cover both. Default: a RefusalLog on `log`.
   */
  refusals?: RefusalSink
  /**
   * Largest MQTT packet read from the broker, in bytes (MQTT_MAX_PAYLOAD):
   * a larger message is skipped as it arrives, never buffered. Default
   * {@link DEFAULT_MAX_PACKET_BYTES}.
   */
  maxPacketBytes?: number
  /** The random delay between Home Assistant's birth and the republish, ms. Default {@link BIRTH_DELAY_MS}. */
  birthDelayMs?: { min: number, max: number }
  /** Doors a republish publishes per event-loop turn. Default {@link REPUBLISH_DOORS_PER_TURN}. */
  republishDoorsPerTurn?: number
  log: BridgeLogger
  /** Called on each change of the connection (for the `doorsense_mqtt_connected` gauge). */
  onConnectedChange?: (connected: boolean) => void
  /** Called once per message handed to the broker (for a publish counter). */
  onPublish?: (kind: PublishKind) => void
  /** Least milliseconds between two publishes of a door's angle/confidence/frame rate/recalibration. Default 1000. */
  attributeIntervalMs?: number
  /** Delays between reconnects. Default: 1 s doubling up to 30 s, each cut by up to half at random (connection.ts). */
  reconnectBackoff?: BackoffOptions
  /** Uniform numbers in [0, 1) for the reconnect jitter and the birth delay; tests pass their own. */
  random?: () => number
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
  /** Messages on `<base>/frames/+` whose last level is no device id, or on `<base>/frames/+/+` that are no `<id>/<layout>`. */
  framesRefused: number
  /** Frames messages ignored because the broker held them (retained). */
  framesRetained: number
  framesFailed: number
  /** Messages over `maxPacketBytes`, skipped unread. */
  packetsSkipped: number
  /** Home Assistant births (`online`, not retained) received. */
  births: number
  /** Full republishes begun: one per connect, one per burst of births. */
  republishes: number
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

/** One message on a door's state topics, with the kind its publish is counted as. */
interface StateMessage {
  topic: string
  payload: string
  kind: 'state' | 'availability' | 'attribute'
}

/** Every state topic of a door, in publishing order, with the kind its publish is counted as; the attributes are rate-limited. */
const STATE_KINDS: ReadonlyArray<readonly [keyof DoorStateTopics, StateMessage['kind']]> = [
  ['state', 'state'], ['availability', 'availability'],
  ['angle', 'attribute'], ['confidence', 'attribute'], ['frameRate', 'attribute'], ['recalibration', 'attribute']
]
const LOG_EVERY_MS = 10_000

/** What a door's state topics carry now: what a door change and a republish both publish. */
function doorStateMessages (baseTopic: string, door: Door): StateMessage[] {
  const topics = doorStateTopics(baseTopic, door.device)
  const payloads = doorStatePayloads(door)
  return STATE_KINDS.map(([key, kind]) => ({ topic: topics[key], payload: payloads[key], kind }))
}

/**
 * Publishes every door to Home Assistant through an MQTT broker, with MQTT
 * discovery, and routes frames published on `<base>/frames/<id>` (and binary
 * ones on `<base>/frames/<id>/<layout>`) to `onFrames`. Knows nothing of Fastify; the connection itself (reconnects,
 * `online`/`offline`, what waits while disconnected) is a BrokerConnection.
 *
 * A broker that is down or goes away never blocks or fails the caller:
 * `start()` returns at once, the door listeners only compute payloads and
 * hand them to the connection (which, while disconnected, keeps the latest
 * payload per topic), and the connection is retried with jittered backoff.
 * On every connect the full current picture is published again, so nothing
 * lost in a broken connection stays lost; so it is a few seconds after Home
 * Assistant's birth, once per burst of births. Such a republish goes out a
 * few doors per event-loop turn, so thousands of doors never stall the process.
 *
 * In a cluster (`ownership`), each instance publishes only the doors it owns
 * and computes, and says `online` (with its last will) on a status topic of
 * its own that those doors' configs list: an instance's death makes its
 * doors unavailable until their new owner publishes them again.
 */
export class HomeAssistantBridge {
  private readonly options: HomeAssistantBridgeOptions
  private readonly log: BridgeLogger
  private readonly now: () => number
  private readonly random: () => number
  private readonly attributeIntervalMs: number
  private readonly birthDelayMs: { min: number, max: number }
  private readonly republishDoorsPerTurn: number
  private readonly maxPacketBytes: number
  private readonly haStatus: string
  private readonly refusals: RefusalSink
  /** The RefusalLog made here when none was given: this bridge closes it. */
  private readonly ownRefusals: RefusalLog | undefined
  private readonly connection: BrokerConnection
  /** The options the configs are built from: in a cluster, with this instance's status topic. */
  private readonly discovery: HomeAssistantBridgeOptions
  private readonly ownership: DoorOwnership | undefined
  /** In a cluster: the doors this instance publishes now (it owns them, and has published their full set). */
  private readonly publishing = new Set<number>()

  private started = false
  private closing: Promise<void> | undefined
  /** Set between a birth and the republish it asks for: later births of the burst are answered by that one. */
  private birthTimer: NodeJS.Timeout | undefined
  /** The republish under way; a newer one, a disconnect or close() stops it at its next turn. */
  private republishing: { removals: boolean } | undefined
  private readonly doors = new Map<number, TrackedDoor>()
  /** Doors removed since start: their empty configs are published again on every connect. */
  private readonly removed = new Set<number>()
  /** The last payload handed over (published or queued) per state topic, so only changes go out. */
  private readonly sent = new Map<string, string>()
  private readonly lastLogged = new Map<string, { at: number, suppressed: number }>()
  private readonly counters = {
    published: 0,
    framesRouted: 0,
    framesRefused: 0,
    framesRetained: 0,
    framesFailed: 0,
    packetsSkipped: 0,
    births: 0,
    republishes: 0,
    listenerErrors: 0
  }

  constructor (options: HomeAssistantBridgeOptions) {
    this.options = options
    this.log = options.log
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
    this.attributeIntervalMs = options.attributeIntervalMs ?? 1000
    const birth = options.birthDelayMs ?? BIRTH_DELAY_MS
    this.birthDelayMs = { min: birth.min, max: Math.max(birth.min, birth.max) }
    this.republishDoorsPerTurn = Math.max(1, options.republishDoorsPerTurn ?? REPUBLISH_DOORS_PER_TURN)
    this.maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES
    this.haStatus = homeAssistantStatusTopic(options.discoveryPrefix)
    this.ownership = options.ownership
    const ownStatus = this.ownership === undefined ? statusTopic(options.baseTopic) : instanceStatusTopic(options.baseTopic, this.ownership.instanceId)
    // the embedded default's configs stay exactly as they were: no statusTopic given
    this.discovery = this.ownership === undefined ? options : { ...options, statusTopic: ownStatus }
    this.ownRefusals = options.refusals === undefined ? new RefusalLog({ log: options.log }) : undefined
    this.refusals = options.refusals ?? this.ownRefusals as RefusalLog
    this.connection = new BrokerConnection({
      url: options.url,
      username: options.username,
      password: options.password,
      clientId: options.clientId,
      statusTopic: ownStatus,
      // at QoS 0: a birth lost with the connection changes nothing, since every connect republishes everything
      subscriptions: [
        this.haStatus, framesFilter(options.baseTopic), binaryFramesFilter(options.baseTopic),
        ...this.ownership === undefined ? [] : [instanceStatusFilter(options.baseTopic)]
      ],
      maxPacketBytes: this.maxPacketBytes,
      reconnectBackoff: options.reconnectBackoff,
      random: this.random,
      connectTimeoutMs: options.connectTimeoutMs,
      closeTimeoutMs: options.closeTimeoutMs,
      keepaliveSeconds: options.keepaliveSeconds,
      log: options.log,
      guard: (what, run) => this.guard(what, run),
      onUp: () => this.onUp(),
      onDown: () => this.onDown(),
      onMessage: (topic, payload, retained) => this.onMessage(topic, payload, retained),
      onSkipped: (packet) => this.onSkipped(packet),
      onPublish: (kind) => this.countPublish(kind)
    })
  }

  /** Whether the broker connection is up now. */
  get isConnected (): boolean {
    return this.connection.isConnected
  }

  /**
   * Starts listening to the doors and connecting; returns at once. A broker
   * that cannot be reached is retried, never thrown. Only a URL MQTT.js
   * cannot use at all (validated by the config before) throws here.
   */
  start (): void {
    if (this.started || this.closing !== undefined) return
    this.started = true
    this.connection.start()
    this.options.source.on('door', this.handleDoor)
    this.options.source.on('removed', this.handleRemoved)
    this.ownership?.on('owned', this.handleOwned)
    this.ownership?.on('disowned', this.handleDisowned)
    this.log.info({
      url: this.connection.safeUrl,
      clientId: this.connection.clientId,
      discoveryPrefix: this.options.discoveryPrefix,
      baseTopic: this.options.baseTopic
    }, 'home-assistant: connecting to the MQTT broker')
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
    return { ...this.connection.stats(), ...this.counters }
  }

  private async shutdown (): Promise<void> {
    this.options.source.off('door', this.handleDoor)
    this.options.source.off('removed', this.handleRemoved)
    this.ownership?.off('owned', this.handleOwned)
    this.ownership?.off('disowned', this.handleDisowned)
    clearTimeout(this.birthTimer)
    this.birthTimer = undefined
    this.republishing = undefined
    for (const tracked of this.doors.values()) clearTimeout(tracked.timer)
    this.ownRefusals?.close()
    await this.connection.close()
  }

  /** Connected, `online` said and subscribed: everything goes out again. */
  private onUp (): ReadonlySet<number> {
    this.hook(() => this.options.onConnectedChange?.(true))
    // a birth waiting for its delay is answered by this republish
    clearTimeout(this.birthTimer)
    this.birthTimer = undefined
    return this.republish(true)
  }

  private onDown (): void {
    this.hook(() => this.options.onConnectedChange?.(false))
    // a republish under way stops; the next connect begins another, and a birth waiting is answered by it
    this.republishing = undefined
    clearTimeout(this.birthTimer)
    this.birthTimer = undefined
  }

  private onMessage (topic: string, payload: Buffer, retained: boolean): void {
    if (topic === this.haStatus) {
      if (payload.toString() === 'online') this.onBirth(retained)
      return
    }
    if (this.ownership !== undefined && isInstanceStatusTopic(this.options.baseTopic, topic)) {
      this.onInstanceStatus(topic, payload.toString())
      return
    }
    const frames = parseAnyFramesTopic(this.options.baseTopic, topic)
    if (frames === undefined) {
      this.counters.framesRefused++
      this.refusals.refuse('topic', { topic })
      return
    }
    const { device, layout } = frames
    if (retained) {
      // the broker held it and hands it over on every subscribe: it was taken in when it was published
      this.counters.framesRetained++
      this.refusals.refuse('retained', { device, topic })
      return
    }
    if (this.options.onFrames === undefined) return
    try {
      this.options.onFrames(device, payload, layout)
      this.counters.framesRouted++
    } catch (error) {
      this.counters.framesFailed++
      this.warnEvery('frames-failed', { device, error: errorMessage(error) }, 'home-assistant: frames from MQTT could not be handled')
    }
  }

  /**
   * Home Assistant said `online`: it needs every config and state again,
   * once its discovery is ready. One republish after a random delay answers
   * every birth of a burst. A birth the broker held (retained) arrives right
   * after our subscribe, that is after a connect, which republishes anyway.
   */
  private onBirth (retained: boolean): void {
    if (retained) return
    this.counters.births++
    if (this.birthTimer !== undefined) return
    const { min, max } = this.birthDelayMs
    const delayMs = Math.round(min + this.random() * (max - min))
    this.log.info({ delayMs }, 'home-assistant: Home Assistant came online; republishing every door shortly')
    this.birthTimer = setTimeout(() => {
      this.birthTimer = undefined
      if (this.closing === undefined && this.connection.isConnected) this.guard('birth', () => this.republish(false))
    }, delayMs).unref()
  }

  /** Called by the packet limit for each message over maxPacketBytes, skipped as it arrived. */
  private onSkipped (packet: SkippedPacket): void {
    this.counters.packetsSkipped++
    const retained = packet.retain ? ' (retained)' : ''
    this.refusals.refuse('too_large', {
      error: `an MQTT message of ${packet.bytes} bytes${retained} is larger than the ${this.maxPacketBytes} bytes allowed (MQTT_MAX_PAYLOAD); skipped unread`
    })
  }

  private readonly handleDoor = (door: Door): void => {
    this.guard('door', () => this.onDoor(door))
  }

  private readonly handleRemoved = (device: number): void => {
    this.guard('removed', () => this.onRemoved(device))
  }

  private onDoor (door: Door): void {
    if (this.closing !== undefined) return
    const { tracked, renamed } = this.track(door)
    if (this.ownership !== undefined && !this.publishing.has(door.device)) {
      // another instance's door, or ours while its window is rebuilt: its owner publishes it until it is live here
      if (this.ownership.ownsLive(door.device)) this.gain(door.device)
      return
    }
    if (this.ownership !== undefined && !this.ownership.ownsLive(door.device)) {
      this.drop(door.device)
      return
    }
    // the configs carry the device name: a renamed door gets them again
    if (renamed) for (const config of doorConfigs(door, this.discovery)) this.connection.send(config.topic, config.payload, 'config', door.device)
    const messages = doorStateMessages(this.options.baseTopic, door)
    for (const message of messages) if (message.kind !== 'attribute') this.sendIfChanged(message, door.device)
    this.scheduleAttributes(tracked, messages)
  }

  private readonly handleOwned = (devices: number[]): void => {
    this.guard('owned', () => {
      if (this.closing !== undefined) return
      for (const device of devices) if (!this.publishing.has(device) && this.ownership?.ownsLive(device) === true) this.gain(device)
    })
  }

  private readonly handleDisowned = (devices: number[]): void => {
    this.guard('disowned', () => {
      for (const device of devices) this.drop(device)
      // doors of the partition the event did not list (known here, no state yet)
      for (const device of [...this.publishing]) if (this.ownership?.ownsLive(device) !== true) this.drop(device)
    })
  }

  /**
   * A cluster's door comes to this instance: its full set goes out, the
   * states first and the configs last. Until the configs name this
   * instance's status topic, Home Assistant still reads the old owner's (which
   * says `offline` once that owner is gone), so the door never shows `online`
   * with the old owner's last state.
   */
  private gain (device: number): void {
    const door = this.options.source.get?.(device) ?? this.doors.get(device)?.door
    if (door === undefined) return
    const { tracked } = this.track(door)
    this.publishing.add(device)
    for (const message of doorStateMessages(this.options.baseTopic, door)) {
      this.sent.set(message.topic, message.payload)
      this.connection.send(message.topic, message.payload, message.kind, device)
    }
    tracked.lastAttributeAt = this.now()
    for (const config of doorConfigs(door, this.discovery)) this.connection.send(config.topic, config.payload, 'config', device)
  }

  /** A cluster's door goes to another instance: nothing more goes out for it from here, not even what waits. */
  private drop (device: number): void {
    if (!this.publishing.delete(device)) return
    const tracked = this.doors.get(device)
    if (tracked !== undefined) {
      clearTimeout(tracked.timer)
      tracked.timer = undefined
    }
    this.connection.forget(device)
    for (const topic of Object.values(doorStateTopics(this.options.baseTopic, device))) this.sent.delete(topic)
  }

  /**
   * Another instance's status (a cluster): when it says `offline` (its last
   * will, or a clean stop), this instance points the bridge's sensor at its
   * own status, and clears the retained `offline`: an instance ID is new at
   * every start, so that topic is never used again, and a door config that
   * still lists it shows the door unavailable all the same (no `online` on it
   * ever again) until the door's new owner republishes the config.
   */
  private onInstanceStatus (topic: string, payload: string): void {
    if (payload !== 'offline' || topic === this.discovery.statusTopic || !this.connection.isConnected) return
    const bridge = bridgeConfig(this.discovery)
    this.connection.publish(bridge.topic, bridge.payload, 'config')
    this.connection.publish(topic, '', 'status')
  }

  /** Keeps the door as it is now; `renamed` when its configs must go out (a new door, or a new device name). */
  private track (door: Door): { tracked: TrackedDoor, renamed: boolean } {
    this.removed.delete(door.device)
    const name = doorDeviceName(door)
    const tracked = this.doors.get(door.device)
    if (tracked === undefined) {
      const added = { door, configName: name, lastAttributeAt: Number.NEGATIVE_INFINITY }
      this.doors.set(door.device, added)
      return { tracked: added, renamed: true }
    }
    const renamed = tracked.configName !== name
    tracked.door = door
    tracked.configName = name
    return { tracked, renamed }
  }

  private onRemoved (device: number): void {
    if (this.closing !== undefined) return
    const tracked = this.doors.get(device)
    clearTimeout(tracked?.timer)
    this.doors.delete(device)
    this.publishing.delete(device)
    this.removed.add(device)
    for (const message of doorRemoval(device, this.options)) {
      this.sent.delete(message.topic)
      this.connection.send(message.topic, message.payload, 'removal', device)
    }
  }

  /** At most one attribute publish per door per interval; a trailing one makes sure the last value lands. */
  private scheduleAttributes (tracked: TrackedDoor, messages: StateMessage[]): void {
    if (tracked.timer !== undefined) return // the trailing publish reads the door as it is then
    if (!messages.some((message) => message.kind === 'attribute' && this.sent.get(message.topic) !== message.payload)) return
    const waitMs = tracked.lastAttributeAt + this.attributeIntervalMs - this.now()
    if (waitMs <= 0) {
      this.publishAttributes(tracked, messages)
      return
    }
    tracked.timer = setTimeout(() => {
      tracked.timer = undefined
      if (this.closing !== undefined || this.doors.get(tracked.door.device) !== tracked) return
      if (this.ownership !== undefined && !this.publishing.has(tracked.door.device)) return
      this.guard('attributes', () => this.publishAttributes(tracked, doorStateMessages(this.options.baseTopic, tracked.door)))
    }, waitMs).unref()
  }

  private publishAttributes (tracked: TrackedDoor, messages: StateMessage[]): void {
    let published = false
    for (const message of messages) if (message.kind === 'attribute') published = this.sendIfChanged(message, tracked.door.device) || published
    if (published) tracked.lastAttributeAt = this.now()
  }

  /**
   * Publishes everything Home Assistant should hold: the bridge's config at
   * once, then each door's configs and states, `republishDoorsPerTurn` doors
   * per event-loop turn (waiting for the socket to drain when it is full);
   * with `removals`, the empty configs of removed doors too (a removal lost
   * in a broken connection still lands). A door is published as it is when
   * its turn comes, so a change meanwhile is never overwritten by an older
   * value. A newer republish, a disconnect or close() stops this one.
   * @returns the doors it covers
   */
  private republish (removals: boolean): Set<number> {
    // removals come last: a republish cut short by this one has not sent them yet
    const run = { removals: removals || this.republishing?.removals === true }
    this.republishing = run
    this.counters.republishes++
    const bridge = bridgeConfig(this.discovery)
    this.connection.publish(bridge.topic, bridge.payload, 'config')
    let listed: Door[] = []
    try {
      listed = this.options.source.list()
    } catch (error) {
      // a door source that fails must not cost what already waits
      this.counters.listenerErrors++
      this.log.error({ error: errorMessage(error) }, 'home-assistant: listing the doors failed; publishing what waited only')
    }
    // configName as it will be published; lastAttributeAt is set when its turn comes
    for (const door of listed) this.track(door)
    // in a cluster, the doors this instance owns: the others are their owners' to publish
    const ownership = this.ownership
    const doors = listed.map((door) => door.device).filter((device) => ownership === undefined || ownership.ownsLive(device))
    if (ownership !== undefined) {
      const owned = new Set(doors)
      for (const device of [...this.publishing]) if (!owned.has(device)) this.drop(device)
      for (const device of doors) this.publishing.add(device)
    }
    const gone = run.removals ? [...this.removed] : []
    const startedAt = performance.now()
    const publishAll = async (): Promise<void> => {
      const perTurn = this.republishDoorsPerTurn
      for (let start = 0; start < doors.length + gone.length; start += perTurn) {
        if (start > 0) {
          await this.connection.yieldTurn()
          if (this.republishing !== run || !this.connection.isConnected || this.closing !== undefined) return
        }
        for (let i = start; i < Math.min(start + perTurn, doors.length + gone.length); i++) {
          if (i < doors.length) this.republishDoor(doors[i] as number)
          else this.republishRemoval(gone[i - doors.length] as number)
        }
      }
      if (this.republishing === run) this.republishing = undefined
      this.log.debug({ doors: doors.length, removed: gone.length, ms: Math.round(performance.now() - startedAt) }, 'home-assistant: republished every door')
    }
    publishAll().catch((error: unknown) => {
      this.counters.listenerErrors++
      this.log.error({ error: errorMessage(error) }, 'home-assistant: republishing failed')
    })
    return new Set([...doors, ...gone])
  }

  /** One door's configs and states, as the door is now (unless it was removed since the republish began). */
  private republishDoor (id: number): void {
    const tracked = this.doors.get(id)
    if (tracked === undefined || this.removed.has(id)) return
    // a cluster's door handed over since the republish began is its new owner's
    if (this.ownership !== undefined && !this.publishing.has(id)) return
    const configs = (): void => {
      for (const config of doorConfigs(tracked.door, this.discovery)) this.connection.publish(config.topic, config.payload, 'config')
    }
    // in a cluster the configs go last, as when a door comes here (see gain)
    if (this.ownership === undefined) configs()
    for (const message of doorStateMessages(this.options.baseTopic, tracked.door)) {
      this.sent.set(message.topic, message.payload)
      this.connection.publish(message.topic, message.payload, message.kind)
    }
    if (this.ownership !== undefined) configs()
    tracked.lastAttributeAt = this.now()
  }

  /** A removed door's empty configs and states, unless it came back since the republish began. */
  private republishRemoval (id: number): void {
    if (!this.removed.has(id)) return
    for (const message of doorRemoval(id, this.options)) this.connection.publish(message.topic, message.payload, 'removal')
  }

  private sendIfChanged (message: StateMessage, device: number): boolean {
    if (this.sent.get(message.topic) === message.payload) return false
    this.sent.set(message.topic, message.payload)
    this.connection.send(message.topic, message.payload, message.kind, device)
    return true
  }

  private countPublish (kind: PublishKind): void {
    this.counters.published++
    this.hook(() => this.options.onPublish?.(kind))
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

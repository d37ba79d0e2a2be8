import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { connectAsync } from 'mqtt'
import type { BackoffOptions } from '../../../domain/backoff.js'
import { HomeAssistantBridge, type HomeAssistantBridgeOptions } from '../../../plugins/home-assistant/bridge.js'
import type { PublishKind } from '../../../plugins/home-assistant/connection.js'
import type { Door } from '../../../schemas/doors.js'
import { freePort, mosquittoPath, observe, startBroker, type Broker, type BrokerKind, type Observer } from '../../fixtures/mqtt-broker.js'
import { expectedBridgeConfig, expectedDoorConfigs } from './contract.js'
import { door, MemoryDoors } from './memory-doors.js'
import { streamPublish } from './raw-publisher.js'

/** The sw_version every bridge of this suite reports. */
const SW_VERSION = '9.8.7'

const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Reconnects within a fraction of a second, so outages in tests stay short. */
const FAST_RECONNECT: BackoffOptions = { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.5 }

/** Every discovery and doorsense topic. */
const ALL = ['homeassistant/#', 'doorsense/#']

interface Logged { level: string, obj: object, msg: string }

interface Setup {
  broker: Broker
  source: MemoryDoors
  bridge: HomeAssistantBridge
  observer: Observer
  logs: Logged[]
  published: PublishKind[]
  connected: boolean[]
}

function bridgeOptions (url: string, source: MemoryDoors, logs: Logged[], overrides: Partial<HomeAssistantBridgeOptions> = {}): HomeAssistantBridgeOptions {
  const log = (level: string) => (obj: object, msg: string): void => { logs.push({ level, obj, msg }) }
  return {
    url,
    discoveryPrefix: 'homeassistant',
    baseTopic: 'doorsense',
    swVersion: SW_VERSION,
    source,
    log: { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') },
    ...overrides
  }
}

/**
 * A broker, an observer subscribed to `watch` (everything by default), and a
 * bridge over `doors`, connected and done with its first full publish; all
 * closed after the test (bridge first, so it still says offline). With
 * thousands of doors, watch a few topics only: Mosquitto drops QoS 1 messages
 * for a subscriber more than 1,000 behind (max_queued_messages).
 */
async function setup (t: TestContext, kind: BrokerKind, doors: Door[], overrides: Partial<HomeAssistantBridgeOptions> = {}, watch = ALL): Promise<Setup> {
  const broker = await startBroker(kind)
  const observer = await observe(broker.url, watch)
  const source = new MemoryDoors(doors)
  const logs: Logged[] = []
  const published: PublishKind[] = []
  const connected: boolean[] = []
  const bridge = new HomeAssistantBridge(bridgeOptions(broker.url, source, logs, {
    // fast attribute updates and a short birth delay, so tests need not wait; the tests of each use their own
    attributeIntervalMs: 100,
    birthDelayMs: { min: 20, max: 60 },
    onPublish: (kind) => published.push(kind),
    onConnectedChange: (up) => connected.push(up),
    ...overrides
  }))
  t.after(async () => {
    await bridge.close()
    await observer.close()
    await broker.close()
  })
  bridge.start()
  await observer.waitFor((m) => m.topic === 'doorsense/status' && m.payload === 'online', { past: true })
  const lastDoor = source.list().at(-1)
  if (lastDoor !== undefined) await observer.waitFor((m) => m.topic === `doorsense/doors/${lastDoor.device}/recalibration`, { past: true, timeoutMs: 30_000 })
  return { broker, source, bridge, observer, logs, published, connected }
}

/** The configs Home Assistant must see for door `id` named `name` (the contract of issue 13, in contract.ts), for this suite's sw_version. */
function expectedConfigs (id: number, name: string): Record<string, unknown> {
  return expectedDoorConfigs(id, name, SW_VERSION)
}

const BRIDGE_CONFIG = expectedBridgeConfig(SW_VERSION)['homeassistant/binary_sensor/doorsense_bridge/connectivity/config']

/** The retained messages a client subscribing now gets, by topic (waits `settleMs` for them). */
async function retained (url: string, topics: string[], settleMs = 300): Promise<Map<string, string>> {
  const late = await observe(url, topics)
  await sleep(settleMs)
  await late.close()
  return new Map(late.messages.filter((m) => m.retain).map((m) => [m.topic, m.payload]))
}

function suite (kind: BrokerKind): void {
  test('publishes status online, the bridge and every door config, field by field, retained', async (t) => {
    const { broker, observer } = await setup(t, kind, [door(3, { name: '' }), door(7, { name: 'Front door' })])
    const expected = {
      ...expectedConfigs(3, 'Door 3'),
      ...expectedConfigs(7, 'Front door'),
      'homeassistant/binary_sensor/doorsense_bridge/connectivity/config': BRIDGE_CONFIG
    }
    for (const [topic, config] of Object.entries(expected)) {
      const message = observer.last(topic)
      assert.ok(message !== undefined, `no config on ${topic}`)
      assert.deepEqual(JSON.parse(message.payload), config, topic)
    }
    // a client that subscribes later (Home Assistant after a restart) gets all of it from the broker
    const held = await retained(broker.url, ALL)
    assert.equal(held.get('doorsense/status'), 'online')
    for (const [topic, config] of Object.entries(expected)) assert.deepEqual(JSON.parse(held.get(topic) ?? 'null'), config, `retained ${topic}`)
    assert.equal(held.get('doorsense/doors/7/state'), 'OFF')
    assert.equal(held.get('doorsense/doors/7/availability'), 'online')
    assert.equal(held.get('doorsense/doors/7/angle'), '0')
    assert.equal(held.get('doorsense/doors/7/confidence'), '90')
    assert.equal(held.get('doorsense/doors/7/frame_rate'), '20')
    assert.equal(held.get('doorsense/doors/7/recalibration'), 'OFF')
  })

  test('state follows a door closed → open → unknown, and availability goes offline when it is stale', async (t) => {
    const { source, observer, bridge } = await setup(t, kind, [door(7)])
    source.update(7, { state: 'open', angle: 90, confidence: 0.95 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'ON')
    source.update(7, { state: 'unknown', angle: null, confidence: 0, needsRecalibration: true })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'None')
    source.update(7, { live: false, frameRate: 0 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/availability' && m.payload === 'offline')
    assert.deepEqual(observer.on('doorsense/doors/7/state').map((m) => m.payload), ['OFF', 'ON', 'None'])
    assert.deepEqual(observer.on('doorsense/doors/7/availability').map((m) => m.payload), ['online', 'offline'])
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/recalibration' && m.payload === 'ON', { past: true })
    // back live: online again, the state only when it changes
    source.update(7, { live: true, state: 'closed', angle: 0, confidence: 0.9, needsRecalibration: false })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'OFF')
    // the availability follows the state in a packet of its own: it may be read a moment later
    await until('availability online again', () => observer.last('doorsense/doors/7/availability')?.payload === 'online')
    assert.equal(bridge.stats().listenerErrors, 0)
  })

  test('the state goes out on change only: 50 updates that change nothing publish no state', async (t) => {
    const { source, observer } = await setup(t, kind, [door(7)])
    for (let i = 0; i < 50; i++) source.update(7, { lastFrameAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() })
    source.update(7, { state: 'open', angle: 90 })
    // one publisher's messages on a topic arrive in order: any extra OFF would be before this ON
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'ON')
    assert.deepEqual(observer.on('doorsense/doors/7/state').map((m) => m.payload), ['OFF', 'ON'])
    assert.deepEqual(observer.on('doorsense/doors/7/availability').map((m) => m.payload), ['online'])
  })

  test('hooks that throw and a door source that emits while anything fails never see an exception', async (t) => {
    const { source, observer, bridge } = await setup(t, kind, [door(7)], {
      onPublish: () => { throw new Error('counter broke') },
      onConnectedChange: () => { throw new Error('gauge broke') }
    })
    assert.doesNotThrow(() => source.update(7, { state: 'open', angle: 90 }))
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'ON')
    // a door the schema would refuse still does not throw into the emitter
    assert.doesNotThrow(() => source.emit('door', { device: 8 }))
    assert.doesNotThrow(() => source.emit('removed', 'x'))
    assert.ok(bridge.stats().connected)
  })

  test('angle is published at most once a second per door, and the last value lands', async (t) => {
    const { source, observer } = await setup(t, kind, [door(7), door(8)], { attributeIntervalMs: undefined }) // the default, 1000 ms
    const startedAt = Date.now()
    for (let angle = 1; angle <= 30; angle++) {
      source.update(7, { state: 'open', angle })
      source.update(8, { state: 'open', angle: angle + 100 })
      await sleep(50)
    }
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/angle' && m.payload === '30', { past: true, timeoutMs: 3000 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/8/angle' && m.payload === '130', { past: true, timeoutMs: 3000 })
    for (const id of [7, 8]) {
      const angles = observer.on(`doorsense/doors/${id}/angle`).filter((m) => m.at >= startedAt)
      const elapsedS = (Date.now() - startedAt) / 1000
      assert.ok(angles.length <= Math.ceil(elapsedS) + 1, `door ${id}: ${angles.length} angle messages in ${elapsedS.toFixed(1)} s`)
      assert.ok(angles.length >= 2, `door ${id}: the trailing publish is missing`)
      for (let i = 1; i < angles.length; i++) {
        // gaps are measured where the messages arrive, after the broker: on a busy machine one can
        // arrive late and the next on time; the count above is the exact bound
        const gapMs = angles[i].at - angles[i - 1].at
        assert.ok(gapMs >= 500, `door ${id}: two angle messages ${gapMs} ms apart`)
      }
    }
    // the state itself is not rate limited
    assert.deepEqual(observer.on('doorsense/doors/7/state').map((m) => m.payload), ['OFF', 'ON'])
  })

  test('Home Assistant coming online (homeassistant/status) gets every config and state again', async (t) => {
    const { observer, source } = await setup(t, kind, [door(7, { name: 'Front door' })])
    source.update(7, { state: 'open', angle: 80 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'ON')
    const before = observer.messages.length
    await observer.client.publishAsync('homeassistant/status', 'online', { qos: 1 })
    // past: the republish may overtake the PUBACK of the birth message
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/recalibration' && observer.messages.indexOf(m) >= before, { past: true })
    const again = new Map(observer.messages.slice(before).map((m) => [m.topic, m.payload]))
    for (const [topic, config] of Object.entries(expectedConfigs(7, 'Front door'))) assert.deepEqual(JSON.parse(again.get(topic) ?? 'null'), config, topic)
    assert.deepEqual(JSON.parse(again.get('homeassistant/binary_sensor/doorsense_bridge/connectivity/config') ?? 'null'), BRIDGE_CONFIG)
    assert.equal(again.get('doorsense/doors/7/state'), 'ON')
    assert.equal(again.get('doorsense/doors/7/availability'), 'online')
    assert.equal(again.get('doorsense/doors/7/angle'), '80')
    // Home Assistant going offline asks for nothing
    const afterOnline = observer.messages.length
    await observer.client.publishAsync('homeassistant/status', 'offline', { qos: 1 })
    await observer.client.publishAsync('doorsense/marker', 'x', { qos: 1 })
    await observer.waitFor((m) => m.topic === 'doorsense/marker', { past: true })
    assert.deepEqual(observer.messages.slice(afterOnline).map((m) => m.topic), ['homeassistant/status', 'doorsense/marker'])
  })

  test('a renamed door gets its five configs again with the new device name; an unchanged name sends none', async (t) => {
    const { observer, source } = await setup(t, kind, [door(7, { name: 'pi-kitchen' })])
    const before = observer.messages.length
    // a door event that changes the state but not the name: no config goes out
    source.update(7, { state: 'open', angle: 90 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'ON')
    source.update(7, { name: 'Garden door' })
    const expected = expectedConfigs(7, 'Garden door')
    for (const [topic, config] of Object.entries(expected)) {
      const message = await observer.waitFor((m) => m.topic === topic && observer.messages.indexOf(m) >= before, { past: true })
      assert.deepEqual(JSON.parse(message.payload), config, topic)
    }
    const configs = observer.messages.slice(before).filter((m) => m.topic.startsWith('homeassistant/'))
    assert.equal(configs.length, 5, `configs since the first update: ${configs.map((m) => m.topic).join(', ')}`)
    // a name of blanks is no name: the device is called after its id
    source.update(7, { name: '   ' })
    const unnamed = await observer.waitFor((m) => m.topic === 'homeassistant/sensor/doorsense_7/angle/config' && m.payload.includes('"Door 7"'))
    assert.deepEqual(JSON.parse(unnamed.payload), expectedConfigs(7, 'Door 7')['homeassistant/sensor/doorsense_7/angle/config'])
  })

  test('a burst of Home Assistant births gets one republish, a random delay after the first', async (t) => {
    const doors = Array.from({ length: 20 }, (_, i) => door(i + 1))
    const { observer, bridge, published } = await setup(t, kind, doors, { birthDelayMs: { min: 400, max: 600 } })
    const before = published.length
    const seenBefore = observer.messages.length
    const sentAt = performance.now()
    for (let i = 0; i < 10; i++) observer.client.publish('homeassistant/status', 'online', { qos: 0 })
    await observer.client.publishAsync('homeassistant/status', 'online', { qos: 1 })
    await sleep(200)
    if (performance.now() - sentAt < 400) assert.equal(published.length, before, 'republished before the delay')
    await observer.waitFor((m) => m.topic === 'doorsense/doors/20/recalibration' && observer.messages.indexOf(m) >= seenBefore, { past: true })
    // longer than another delay: a second republish would be under way by now
    await sleep(900)
    assert.equal(published.length - before, 1 + 11 * doors.length, `publishes after 11 births: ${published.length - before}`)
    assert.deepEqual(countBy(published.slice(before)), {
      config: 1 + 5 * doors.length,
      state: doors.length,
      availability: doors.length,
      attribute: 4 * doors.length
    })
    const stats = bridge.stats()
    assert.equal(stats.births, 11)
    assert.equal(stats.republishes, 2, 'one on connect, one for the burst')
    // the next birth, after the burst, gets a republish of its own
    const again = published.length
    await observer.client.publishAsync('homeassistant/status', 'online', { qos: 1 })
    await until('a second republish', () => published.length - again === 1 + 11 * doors.length)
    assert.equal(bridge.stats().republishes, 3)
  })

  // the pacing and the packet guard are the bridge's own, whatever the broker: each is run against one (Aedes, always here)
  const bridgeOnly = { skip: kind !== 'aedes' && 'the bridge\'s own behaviour, run against Aedes' }

  test('a republish of 2,000 doors goes out a few doors per event-loop turn: timers stay on time', bridgeOnly, async (t) => {
    const doors = Array.from({ length: 2000 }, (_, i) => door(i))
    const publishedAt: number[] = []
    const { observer, bridge } = await setup(
      t, kind, doors,
      { onPublish: () => publishedAt.push(performance.now()) },
      ['doorsense/status', 'doorsense/doors/1999/recalibration']
    )
    const before = publishedAt.length
    const ticks: number[] = [performance.now()]
    const ticker = setInterval(() => ticks.push(performance.now()), 2)
    t.after(() => clearInterval(ticker))
    await observer.client.publishAsync('homeassistant/status', 'online', { qos: 1 })
    await until('the republish', () => publishedAt.length - before === 1 + 11 * doors.length, 30_000)
    clearInterval(ticker)
    // the poll above may run before a late tick: now closes the last gap
    ticks.push(performance.now())
    const first = publishedAt[before] as number
    const last = publishedAt.at(-1) as number
    const spanMs = last - first
    let longestGapMs = 0
    for (let i = 1; i < ticks.length; i++) {
      const gapStart = ticks[i - 1] as number
      const gapEnd = ticks[i] as number
      if (gapEnd > first && gapStart < last) longestGapMs = Math.max(longestGapMs, gapEnd - gapStart)
    }
    const ticksDuring = ticks.filter((at) => at > first && at < last).length
    t.diagnostic(`${kind}: ${publishedAt.length - before} publishes over ${Math.round(spanMs)} ms, ` +
      `${ticksDuring} ticks of a 2 ms timer meanwhile, the longest gap ${Math.round(longestGapMs)} ms`)
    assert.ok(ticksDuring >= 5, `the republish ran in one go: ${ticksDuring} ticks of a 2 ms timer during it`)
    // relative, so a slow or busy machine (a stretch without CPU) does not fail it: in one go, the gap is the whole span
    assert.ok(longestGapMs < spanMs / 3, `the timer waited ${Math.round(longestGapMs)} ms at once during a republish of ${Math.round(spanMs)} ms`)
    assert.ok(bridge.stats().connected)
  })

  test('a door that changes during a republish keeps its newest value on the broker', async (t) => {
    const doors = Array.from({ length: 1000 }, (_, i) => door(i))
    const changing: { source?: MemoryDoors } = {}
    const { broker, observer, bridge, source } = await setup(t, kind, doors, {
      onPublish: (kind) => {
        const doorsToChange = changing.source
        if (doorsToChange === undefined || kind !== 'config') return
        changing.source = undefined
        // the republish's first publish: the change lands a turn later, after its first doors and before door 999's turn
        setImmediate(() => doorsToChange.update(999, { state: 'open', angle: 90 }))
      }
    }, ['doorsense/status', 'doorsense/doors/999/#'])
    const seen = observer.messages.length
    changing.source = source
    await observer.client.publishAsync('homeassistant/status', 'online', { qos: 1 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/999/recalibration' && observer.messages.indexOf(m) >= seen, { past: true, timeoutMs: 10_000 })
    assert.equal(bridge.stats().republishes, 2)
    assert.deepEqual(observer.on('doorsense/doors/999/state').slice(-2).map((m) => m.payload), ['ON', 'ON'],
      'the change, then the republish of the door as it is')
    assert.equal(observer.last('doorsense/doors/999/angle')?.payload, '90')
    assert.equal((await retained(broker.url, ['doorsense/doors/999/state'])).get('doorsense/doors/999/state'), 'ON')
  })

  test('frames the broker holds (retained) are taken in when published, not again on each reconnect; logged once', async (t) => {
    const frames: string[] = []
    const clientId = 'doorsense-under-test'
    const { broker, observer, bridge, logs } = await setup(t, kind, [door(7)], {
      clientId,
      reconnectBackoff: FAST_RECONNECT,
      onFrames: (_device, payload) => frames.push(payload.toString())
    })
    await observer.client.publishAsync('doorsense/frames/7', 'held frame', { qos: 1, retain: true })
    await until('the live frame', () => frames.length === 1)
    for (let reconnect = 1; reconnect <= 2; reconnect++) {
      await kick(broker.url, clientId, bridge)
      // the broker hands the held frame over on the subscribe: taken in again (a second frame) or counted as refused
      await until(`reconnect ${reconnect} and the held frame`,
        () => bridge.stats().connects === reconnect + 1 && (frames.length > reconnect || bridge.stats().framesRetained === reconnect))
    }
    await observer.client.publishAsync('doorsense/frames/7', 'live frame', { qos: 1 })
    await until('the next live frame', () => frames.includes('live frame'))
    assert.deepEqual(frames, ['held frame', 'live frame'])
    assert.equal(bridge.stats().framesRetained, 2)
    const refusals = logs.filter((line) => line.msg.includes('refused'))
    assert.equal(refusals.length, 1, JSON.stringify(refusals))
    assert.equal((refusals[0]?.obj as { reason?: string }).reason, 'retained')
  })

  test('a message over maxPacketBytes (100 MB) is skipped unread: memory stays flat and the bridge stays connected', bridgeOnly, async (t) => {
    const broker = await startBroker(kind)
    const observer = await observe(broker.url, ['doorsense/status'])
    t.after(async () => { await observer.close(); await broker.close() })
    // the bridge in a process of its own, so its memory is measured apart from the broker's (Aedes) and the sender's
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/plugins/home-assistant/packet-limit-child.ts', broker.url, String(64 * 1024)], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const reports: Array<Record<string, number | boolean>> = []
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.startsWith('{')) reports.push(JSON.parse(line) as Record<string, number | boolean>)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const exited = once(child, 'close')
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    })
    await until('the child to connect', () => reports.length > 0, 30_000).catch((error: unknown) => { throw new Error(`${String(error)}: ${stderr}`) })
    await streamPublish(broker.port, 'doorsense/frames/7', 100 * 1024 * 1024)
    await observer.client.publishAsync('doorsense/frames/7', 'after', { qos: 1 })
    await until('the frame after', () => reports.length > 1, 60_000).catch((error: unknown) => { throw new Error(`${String(error)}: ${stderr}`) })
    const [connected, after] = reports as [Record<string, number>, Record<string, number | boolean>]
    t.diagnostic(`rss ${connected.rssMB} MB → peak ${after.peakRssMB} MB, buffers ${connected.buffersMB} MB → peak ${after.peakBuffersMB} MB`)
    assert.equal(after.framesRouted, 1, 'only the small frame reached onFrames')
    assert.equal(after.packetsSkipped, 1)
    assert.equal(after.connects, 1, 'the connection was never lost')
    assert.equal(after.connected, true)
    // what remains is garbage: the socket's 64 KiB reads, skipped and waiting for the collector (about 32 MB here)
    assert.ok((after.peakBuffersMB as number) - connected.buffersMB < 50, `buffers grew by ${(after.peakBuffersMB as number) - connected.buffersMB} MB`)
    assert.ok((after.peakRssMB as number) - connected.rssMB < 80, `RSS grew by ${(after.peakRssMB as number) - connected.rssMB} MB`)
  })

  test('a removed door gets empty retained configs and its states cleared', async (t) => {
    const { broker, observer, source } = await setup(t, kind, [door(7), door(8)])
    source.remove(7)
    const stateTopics = ['state', 'availability', 'angle', 'confidence', 'frame_rate', 'recalibration'].map((topic) => `doorsense/doors/7/${topic}`)
    const cleared = Object.keys(expectedConfigs(7, '')).concat(stateTopics)
    for (const topic of cleared) await observer.waitFor((m) => m.topic === topic && m.payload === '', { past: true })
    const held = await retained(broker.url, ALL)
    assert.deepEqual([...held.keys()].filter((topic) => topic.includes('doorsense_7') || topic.includes('/doors/7/')), [])
    assert.ok(held.has('homeassistant/binary_sensor/doorsense_8/door/config'), 'door 8 stays')
    // it may come back
    source.update(7, { name: 'Back again' })
    await observer.waitFor((m) => m.topic === 'homeassistant/binary_sensor/doorsense_7/door/config' && m.payload.includes('Back again'))
  })

  test('frames on <base>/frames/<id> reach onFrames with the device id; bad ids do not', async (t) => {
    const frames: Array<{ device: number, payload: string }> = []
    const refused: string[] = []
    const { observer, bridge } = await setup(t, kind, [door(7)], {
      onFrames: (device, payload) => {
        if (device === 9) throw new Error('decoder exploded')
        frames.push({ device, payload: payload.toString() })
      },
      refusals: { refuse: (reason, detail) => refused.push(`${reason} ${detail.topic ?? ''}`) }
    })
    const publish = (topic: string, payload: string): Promise<unknown> => observer.client.publishAsync(topic, payload, { qos: 1 })
    await publish('doorsense/frames/7', '[1, 2, 3]')
    for (const bad of ['abc', '99999', '32768', '007', '-1']) await publish(`doorsense/frames/${bad}`, '[4]')
    await publish('doorsense/frames/9', '[5]')
    await publish('doorsense/frames/0', 'CSI_DATA,1\nCSI_DATA,2')
    const deadline = Date.now() + 3000
    while (frames.length < 2 && Date.now() < deadline) await sleep(10)
    assert.deepEqual(frames, [{ device: 7, payload: '[1, 2, 3]' }, { device: 0, payload: 'CSI_DATA,1\nCSI_DATA,2' }])
    assert.deepEqual(refused, ['abc', '99999', '32768', '007', '-1'].map((bad) => `topic doorsense/frames/${bad}`))
    const stats = bridge.stats()
    assert.equal(stats.framesRouted, 2)
    assert.equal(stats.framesRefused, 5)
    assert.equal(stats.framesFailed, 1)
    assert.ok(stats.connected)
  })

  test('broker down at start: start() returns at once, waiting updates are bounded, it connects and publishes once the broker is up', async (t) => {
    const port = await freePort()
    const source = new MemoryDoors([door(7)])
    const logs: Logged[] = []
    const bridge = new HomeAssistantBridge(bridgeOptions(`mqtt://127.0.0.1:${port}`, source, logs, { reconnectBackoff: FAST_RECONNECT }))
    const later: { broker?: Broker, observer?: Observer } = {}
    t.after(async () => {
      await bridge.close()
      await later.observer?.close()
      await later.broker?.close()
    })
    const startedAt = performance.now()
    bridge.start()
    assert.ok(performance.now() - startedAt < 100, 'start() waited for the broker')
    // the door keeps changing while nobody listens: nothing throws, only the latest value per topic waits
    for (let i = 0; i < 500; i++) source.update(7, { state: i % 2 === 0 ? 'open' : 'closed', angle: i % 90, frameRate: i })
    source.update(7, { state: 'open', angle: 88 })
    source.update(8, { name: 'New door' })
    await sleep(400)
    assert.equal(bridge.stats().connected, false)
    assert.ok(bridge.stats().pending <= 2 * 11, `pending ${bridge.stats().pending}`)
    assert.ok(logs.some((line) => line.level === 'warn' && line.msg.includes('cannot reach')), 'the outage is logged')
    assert.ok(logs.filter((line) => line.level === 'warn').length <= 2, 'repeated failures are not logged as warnings each time')

    const broker = later.broker = await startBroker(kind, port)
    const observer = later.observer = await observe(broker.url, ALL)
    await observer.waitFor((m) => m.topic === 'doorsense/status' && m.payload === 'online', { past: true, timeoutMs: 3000 })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/8/recalibration', { past: true })
    assert.equal(observer.last('doorsense/doors/7/state')?.payload, 'ON')
    assert.equal(observer.last('doorsense/doors/7/angle')?.payload, '88')
    assert.ok(observer.last('homeassistant/binary_sensor/doorsense_8/door/config')?.payload.includes('New door'))
    assert.equal(bridge.stats().pending, 0)
  })

  test('a broker that goes away and comes back: reconnects and republishes; close() stays bounded when it is gone', async (t) => {
    const { broker, source, bridge, connected } = await setup(t, kind, [door(7)], { reconnectBackoff: FAST_RECONNECT, closeTimeoutMs: 300 })
    await broker.close()
    const deadline = Date.now() + 3000
    while (bridge.isConnected && Date.now() < deadline) await sleep(10)
    assert.equal(bridge.isConnected, false)
    source.update(7, { state: 'open', angle: 70 })
    const again = await startBroker(kind, broker.port)
    const observer = await observe(again.url, ALL)
    t.after(async () => { await observer.close(); await again.close() })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/state' && m.payload === 'ON', { past: true, timeoutMs: 3000 })
    assert.deepEqual(connected, [true, false, true])
    await again.close()
    const closingAt = performance.now()
    await bridge.close()
    assert.ok(performance.now() - closingAt < 1500, `close() took ${Math.round(performance.now() - closingAt)} ms with the broker gone`)
  })

  test('reconnects with jittered backoff: the delays grow from the first, each cut by the random draw; a connect starts them over; close() stops them', async (t) => {
    // draws chosen so every delay is a whole number of ms: 40 × (1 − 0.5 × draw), doubling up to 160
    const draws = [0, 0.5, 0.75, 0.25, 0.5]
    const drawn: number[] = []
    const random = (): number => {
      const draw = draws[drawn.length % draws.length] as number
      drawn.push(draw)
      return draw
    }
    const { broker, bridge, logs, connected } = await setup(t, kind, [door(7)], {
      reconnectBackoff: { initialMs: 40, maxMs: 160, factor: 2, jitter: 0.5 },
      random
    })
    // every scheduled reconnect is logged with its delay and the failures so far
    const retries = (): Array<{ retryInMs: number, failures: number }> => logs.flatMap(({ obj }) =>
      'retryInMs' in obj && 'failures' in obj ? [{ retryInMs: obj.retryInMs as number, failures: obj.failures as number }] : [])

    await broker.close()
    await until('five failed reconnects', () => retries().length >= 5)
    assert.deepEqual(retries().slice(0, 5), [
      { retryInMs: 40, failures: 1 },
      { retryInMs: 60, failures: 2 },
      { retryInMs: 100, failures: 3 },
      { retryInMs: 140, failures: 4 },
      { retryInMs: 120, failures: 5 }
    ])

    // back up: it reconnects and publishes everything again
    const again = await startBroker(kind, broker.port)
    const observer = await observe(again.url, ALL)
    t.after(async () => { await observer.close(); await again.close() })
    await observer.waitFor((m) => m.topic === 'doorsense/doors/7/recalibration', { past: true, timeoutMs: 3000 })
    assert.equal(bridge.isConnected, true)
    assert.deepEqual(connected, [true, false, true])

    // the next outage starts from the first delay again
    const before = retries().length
    await again.close()
    await until('the first retry of the second outage', () => retries().length > before)
    const first = retries()[before]
    assert.equal(first?.failures, 1)
    assert.equal(first?.retryInMs, 40 * (1 - 0.5 * (drawn[before] as number)))

    // closed while the broker is down: no reconnect is tried after
    await bridge.close()
    const after = retries().length
    await sleep(300)
    assert.equal(retries().length, after, 'a reconnect was scheduled after close()')
  })

  test('close() publishes offline (retained) and disconnects', async (t) => {
    const { broker, bridge, observer, connected } = await setup(t, kind, [door(7)])
    const closingAt = performance.now()
    await bridge.close()
    assert.ok(performance.now() - closingAt < 1000)
    await observer.waitFor((m) => m.topic === 'doorsense/status' && m.payload === 'offline', { past: true })
    const held = await retained(broker.url, ['doorsense/status'])
    assert.equal(held.get('doorsense/status'), 'offline')
    assert.deepEqual(connected, [true, false])
    await bridge.close() // twice is fine
  })

  test('the password never reaches a log line', async (t) => {
    const secret = 's3cret-pass-word'
    const port = await freePort()
    const source = new MemoryDoors([door(7)])
    const logs: Logged[] = []
    // down first (warnings with errors), then up
    const bridge = new HomeAssistantBridge(bridgeOptions(`mqtt://127.0.0.1:${port}`, source, logs, { username: 'doorsense', password: secret, reconnectBackoff: FAST_RECONNECT }))
    const other = new HomeAssistantBridge(bridgeOptions(`mqtt://doorsense:${secret}@127.0.0.1:${port}`, source, logs, { reconnectBackoff: FAST_RECONNECT, clientId: 'doorsense-other' }))
    const later: { broker?: Broker } = {}
    t.after(async () => { await bridge.close(); await other.close(); await later.broker?.close() })
    bridge.start()
    other.start()
    await sleep(200)
    later.broker = await startBroker(kind, port)
    const deadline = Date.now() + 3000
    while (!(bridge.isConnected && other.isConnected) && Date.now() < deadline) await sleep(10)
    assert.ok(bridge.isConnected && other.isConnected, 'both connected once the broker was up')
    await bridge.close()
    await other.close()
    const text = JSON.stringify(logs)
    assert.ok(logs.length > 0)
    assert.ok(!text.includes(secret), 'the password is in a log line')
    assert.ok(text.includes(`mqtt://127.0.0.1:${port}`), 'the URL is logged without credentials')
  })

  test('a killed doorsense (SIGKILL) leaves the last will: status offline, retained', async (t) => {
    const broker = await startBroker(kind)
    const observer = await observe(broker.url, ['doorsense/status'])
    t.after(async () => { await observer.close(); await broker.close() })
    const child = runChild(t, broker.url, 'kill')
    await child.printed('connected')
    await observer.waitFor((m) => m.payload === 'online', { past: true })
    child.process.kill('SIGKILL')
    await observer.waitFor((m) => m.payload === 'offline', { past: true, timeoutMs: 5000 })
    const held = await retained(broker.url, ['doorsense/status'])
    assert.equal(held.get('doorsense/status'), 'offline')
  })

  test('after close() nothing is left open: the process exits by itself', async (t) => {
    const broker = await startBroker(kind)
    const observer = await observe(broker.url, ['doorsense/status'])
    t.after(async () => { await observer.close(); await broker.close() })
    const child = runChild(t, broker.url, 'close')
    await child.printed('closed')
    const code = await child.exit(5000)
    assert.equal(code, 0, child.stderr())
    await observer.waitFor((m) => m.payload === 'offline', { past: true })
  })
}

/** How many of each kind. */
function countBy (kinds: PublishKind[]): Partial<Record<PublishKind, number>> {
  const counts: Partial<Record<PublishKind, number>> = {}
  for (const kind of kinds) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

/** Polls until `check` holds, naming `what` on timeout. */
async function until (what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * Makes the broker drop the bridge's connection, as a network blip would: a
 * client with the same client id takes its session over (MQTT 3.1.1, 3.1.4-2).
 * The bridge then reconnects and takes it back.
 */
async function kick (url: string, clientId: string, bridge: HomeAssistantBridge): Promise<void> {
  const connects = bridge.stats().connects
  const intruder = await connectAsync(url, { clientId, reconnectPeriod: 0 })
  await until('the bridge to lose its connection', () => !bridge.isConnected || bridge.stats().connects > connects)
  await intruder.endAsync(true)
}

/** The bridge in a child process (test/fixtures/home-assistant-bridge-child.ts), killed after the test if still running. */
function runChild (t: TestContext, url: string, mode: 'kill' | 'close'): {
  process: ReturnType<typeof spawn>
  printed: (line: string) => Promise<void>
  exit: (timeoutMs: number) => Promise<number | string>
  stderr: () => string
} {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/home-assistant-bridge-child.ts', url, mode], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'close').then(([code, signal]) => (code ?? signal) as number | string)
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  return {
    process: child,
    stderr: () => stderr,
    printed: async (line) => {
      const deadline = Date.now() + 10_000
      while (!stdout.split('\n').includes(line)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`child never printed ${line}: ${stderr}`)
        await sleep(20)
      }
    },
    exit: async (timeoutMs) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await exited
      clearTimeout(timer)
      if (code === 'SIGKILL') throw new Error(`child still running ${timeoutMs} ms after close(): something was left open. ${stderr}`)
      return code
    }
  }
}

// the two brokers side by side (each test has a broker of its own); the tests of one broker one after another
describe('home-assistant bridge', { concurrency: 2 }, () => {
  describe('against Aedes (in-process)', { concurrency: 1 }, () => suite('aedes'))

  if (mosquittoPath() !== undefined) {
    describe('against Mosquitto (own process and port)', { concurrency: 1 }, () => suite('mosquitto'))
  } else {
    test('against Mosquitto (own process and port)', (t) => {
      if (process.env.CI === 'true') assert.fail('mosquitto not on PATH: CI must run the Mosquitto variant (.ci/run installs Debian\'s mosquitto)')
      t.skip('mosquitto not on PATH: install it (apt-get install mosquitto) to run this suite against Mosquitto as well')
    })
  }
})

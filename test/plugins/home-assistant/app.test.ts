/**
 * Issue 13 end to end: the whole app (buildApp, the real doors, ingest and
 * model) publishing to a real broker, Aedes in-process and Mosquitto in its
 * own process when it is on PATH (mandatory when CI=true), observed by a real
 * MQTT.js subscriber, the way Home Assistant would see it.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../../core/app.js'
import { encodeBinaryFrames } from '../../../domain/frames.js'
import { BIRTH_DELAY_MS } from '../../../plugins/home-assistant/bridge.js'
import { REFUSAL_REASONS } from '../../../plugins/home-assistant/refusals.js'
import { APP_VERSION, PROJECT_ROOT } from '../../../core/project.js'
import type { Door } from '../../../schemas/doors.js'
import type { HomeAssistantStatus } from '../../../schemas/home-assistant.js'
import { freePort, mosquittoPath, observe, startBroker, type Broker, type BrokerKind, type Observer } from '../../fixtures/mqtt-broker.js'
import { spawnServe } from '../../fixtures/serve-process.js'
import { sessionRows, trainThrough } from '../../fixtures/training.js'
import { ADMIN, ADMIN_TOKEN, buildTestApp, ESP32_LINES, RPI_RAW_FRAMES, tempDir, type TestAppOptions } from '../../helper.js'
import { ALL_TOPICS, doorTopics, expectedBridgeConfig, expectedDoorConfigs } from './contract.js'

const RPI_LINES = readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n').filter((line) => line.trim() !== '')
const CSI_LINES = readFileSync(ESP32_LINES, 'utf8').split('\n').filter((line) => line.trim() !== '')

interface Running {
  broker: Broker
  observer: Observer
  app: App
}

/**
 * A broker, an observer on every topic, and the whole app with MQTT_URL on
 * that broker, ready and connected (`doorsense/status` online). After the
 * test: the app closes first (it still says offline), then observer and broker.
 */
async function running (t: TestContext, kind: BrokerKind, env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<Running> {
  const broker = await startBroker(kind)
  let observer: Observer | undefined
  try {
    observer = await observe(broker.url, ALL_TOPICS)
    const app = await buildTestApp(t, { MQTT_URL: broker.url, ...env }, options)
    const watching = observer
    t.after(async () => { await watching.close(); await broker.close() })
    await observer.waitFor((m) => m.topic === 'doorsense/status' && m.payload === 'online', { past: true })
    return { broker, observer, app }
  } catch (err) {
    await observer?.close()
    await broker.close()
    throw err
  }
}

async function status (app: App): Promise<HomeAssistantStatus> {
  const response = await app.inject('/home-assistant/status')
  assert.equal(response.statusCode, 200)
  return response.json<HomeAssistantStatus>()
}

async function metrics (app: App): Promise<string> {
  return (await app.inject('/metrics')).body
}

/** A sample of /metrics, 0 when absent. */
function sample (text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels === '' ? '' : `{${labels}}`}`.replace(/[{}[\]()+*?.^$|\\]/g, '\\$&')
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)
  return match === null ? 0 : Number(match[1])
}

async function framesReceived (app: App, device: number): Promise<number> {
  return sample(await metrics(app), 'doorsense_frames_received_total', `device="${device}"`)
}

async function keepAlive (app: App, device: number, name: string): Promise<void> {
  const response = await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: name, ID: device } })
  assert.equal(response.statusCode, 200, response.body)
}

async function postFrames (app: App, device: number, frames: ReadonlyArray<ArrayLike<number>>): Promise<void> {
  const response = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: device, frames: frames.map((frame) => Array.from(frame)) } })
  assert.equal(response.statusCode, 200, response.body)
}

/** Polls until `check` holds, naming `what` on timeout. */
async function until (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

/** What the app wrote to its log files in `dataDir` (LOG_TO_FILE; complete once the app is closed). */
function logText (dataDir: string): string {
  const logDir = join(dataDir, 'logs')
  return readdirSync(logDir).map((file) => readFileSync(join(logDir, file), 'utf8')).join('')
}

/** The retained messages a client subscribing now gets, by topic. */
async function retained (url: string, topics: string[], settleMs = 300): Promise<Map<string, string>> {
  const late = await observe(url, topics)
  await sleep(settleMs)
  await late.close()
  return new Map(late.messages.filter((m) => m.retain).map((m) => [m.topic, m.payload]))
}

/** Waits for a message on `topic` (received from index `from` on) whose payload parses to `config`. */
async function configArrives (observer: Observer, topic: string, config: unknown, from = 0, timeoutMs = 5000): Promise<void> {
  const wanted = JSON.stringify(config)
  await observer.waitFor(
    (m) => m.topic === topic && observer.messages.indexOf(m) >= from && m.payload !== '' && JSON.stringify(JSON.parse(m.payload)) === wanted,
    { past: true, timeoutMs }
  )
}

function suite (kind: BrokerKind): void {
  test('a door that appears by keep-alive gets its five configs, field by field, and its states; Home Assistant online → everything again; DELETE → empty configs; close → offline', async (t) => {
    const { broker, observer, app } = await running(t, kind)
    assert.deepEqual(await status(app), { enabled: true, connected: true, broker: `mqtt://127.0.0.1:${broker.port}`, discoveryPrefix: 'homeassistant', baseTopic: 'doorsense' })

    await keepAlive(app, 7, 'front-door')
    const configs = { ...expectedDoorConfigs(7, 'front-door', APP_VERSION), ...expectedBridgeConfig(APP_VERSION) }
    for (const [topic, config] of Object.entries(configs)) await configArrives(observer, topic, config)
    const topics = doorTopics(7)
    await observer.waitFor((m) => m.topic === topics.recalibration, { past: true })
    // a live Pi, no model yet: available, state unknown
    const held = await retained(broker.url, ALL_TOPICS)
    for (const [topic, config] of Object.entries(configs)) assert.deepEqual(JSON.parse(held.get(topic) ?? 'null'), config, `retained ${topic}`)
    assert.equal(held.get('doorsense/status'), 'online')
    assert.equal(held.get(topics.availability), 'online')
    assert.equal(held.get(topics.state), 'None')
    assert.equal(held.get(topics.angle), 'None')
    assert.equal(held.get(topics.confidence), 'None')
    assert.equal(held.get(topics.frameRate), '0')
    assert.equal(held.get(topics.recalibration), 'OFF')

    const text = await metrics(app)
    assert.equal(sample(text, 'doorsense_mqtt_connected'), 1)
    assert.ok(sample(text, 'doorsense_mqtt_published_total', 'kind="config"') >= 6, text)
    assert.ok(sample(text, 'doorsense_mqtt_published_total', 'kind="status"') >= 1)

    // Home Assistant restarts: its birth message asks for everything again, a few seconds later (BIRTH_DELAY_MS)
    const before = observer.messages.length
    await observer.client.publishAsync('homeassistant/status', 'online', { qos: 1 })
    for (const [topic, config] of Object.entries(configs)) await configArrives(observer, topic, config, before, BIRTH_DELAY_MS.max + 5000)
    await observer.waitFor((m) => m.topic === topics.state && observer.messages.indexOf(m) >= before && m.payload === 'None', { past: true })

    // DELETE /doors/7: its entities go (empty retained configs), its states are cleared
    const removed = await app.inject({ method: 'DELETE', url: '/doors/7', headers: ADMIN })
    assert.equal(removed.statusCode, 204, removed.body)
    for (const topic of Object.keys(expectedDoorConfigs(7, '', APP_VERSION))) {
      await observer.waitFor((m) => m.topic === topic && m.payload === '', { past: true })
    }
    const after = await retained(broker.url, ALL_TOPICS)
    assert.deepEqual([...after.keys()].filter((topic) => topic.includes('doorsense_7') || topic.includes('/doors/7/')), [])
    assert.ok(after.has('homeassistant/binary_sensor/doorsense_bridge/connectivity/config'), 'the bridge stays')

    // app.close() says offline, retained; the bridge closes first (onClose hooks run in reverse order of
    // registration), so it has stopped listening to the doors before the doors area stops and the storage closes
    const order: string[] = []
    const doors = app.doors
    const { off, stop } = doors
    t.mock.method(doors, 'off', function (this: typeof doors, ...args: Parameters<typeof off>) {
      order.push(`off ${String(args[0])}`)
      return off.apply(this, args)
    })
    t.mock.method(doors, 'stop', function (this: typeof doors) { order.push('doors stop'); stop.apply(this) })
    await app.close()
    assert.deepEqual(order, ['off door', 'off removed', 'doors stop'])
    await observer.waitFor((m) => m.topic === 'doorsense/status' && m.payload === 'offline', { past: true })
    assert.equal((await retained(broker.url, ['doorsense/status'])).get('doorsense/status'), 'offline')
  })

  test('states follow a door closed → open → stale: OFF, ON, then availability offline and None', async (t) => {
    const { observer, app } = await running(t, kind, { STALE_AFTER_S: '1' })
    // a small global model; the frames it was trained on read back closed and open cheaply (the plumbing is under test, not the model)
    await trainThrough(app, 40, { epochs: 3 })
    const rows = sessionRows()
    const closed = rows.filter((row) => row.angle === 0).slice(0, 40).map((row) => row.features)
    const open = rows.filter((row) => row.angle === 90).slice(0, 40).map((row) => row.features)
    const topics = doorTopics(3)
    await keepAlive(app, 3, 'back-door')
    await observer.waitFor((m) => m.topic === topics.availability && m.payload === 'online', { past: true })

    // the Pi posts 20 frames at a time, as its agent does, until the door reads what it sees
    const drive = async (frames: Float32Array[], payload: string): Promise<void> => {
      const deadline = Date.now() + 10_000
      for (let i = 0; observer.last(topics.state)?.payload !== payload; i = (i + 20) % frames.length) {
        if (Date.now() > deadline) throw new Error(`never ${payload}: ${observer.on(topics.state).map((m) => m.payload).join(' ')}`)
        await postFrames(app, 3, frames.slice(i, i + 20))
        await sleep(50)
      }
    }
    await drive(closed, 'OFF')
    await drive(open, 'ON')
    const door = (await app.inject('/doors/3')).json<Door>()
    assert.equal(door.state, 'open')

    // the Pi goes silent: after STALE_AFTER_S the door is unavailable and unknown
    await observer.waitFor((m) => m.topic === topics.availability && m.payload === 'offline', { past: true, timeoutMs: 4000 })
    const firstOnIndex = () => observer.messages.findIndex((o) => o.topic === topics.state && o.payload === 'ON')
    await observer.waitFor(
      (m) => m.topic === topics.state && m.payload === 'None' && observer.messages.indexOf(m) > firstOnIndex(),
      { past: true, timeoutMs: 4000 }
    )
    const states = observer.on(topics.state).map((m) => m.payload)
    assert.equal(states[0], 'None', 'unknown before any frame')
    assert.equal(states.at(-1), 'None')
    assert.ok(states.indexOf('OFF') < states.lastIndexOf('ON'), `OFF before ON: ${states.join(' ')}`)
    for (let i = 1; i < states.length; i++) assert.notEqual(states[i], states[i - 1], `published on change only: ${states.join(' ')}`)
    assert.deepEqual(observer.on(topics.availability).map((m) => m.payload), ['online', 'offline'])
  })

  test('frames over MQTT (one frame, an array, CSI lines, raw Pi lines) take the ingest path; malformed payloads change nothing', async (t) => {
    const { observer, app } = await running(t, kind, { BODY_LIMIT: '65536' })
    const publish = async (topic: string, payload: string): Promise<void> => { await observer.client.publishAsync(topic, payload, { qos: 1 }) }
    const features = sessionRows()[0].features
    let expected = 0
    const arrived = async (count: number): Promise<void> => {
      expected += count
      await until(`${expected} frames of device 21`, async () => await framesReceived(app, 21) === expected)
    }
    await publish('doorsense/frames/21', RPI_LINES[0])
    await arrived(1)
    await publish('doorsense/frames/21', JSON.stringify(`[${Array.from(features).join(', ')}]`)) // the original's stringified list
    await arrived(1)
    await publish('doorsense/frames/21', JSON.stringify([Array.from(features), RPI_LINES[1], JSON.parse(RPI_LINES[2]), CSI_LINES[0]]))
    await arrived(4)
    await publish('doorsense/frames/21', CSI_LINES.join('\n') + '\n')
    await arrived(CSI_LINES.length)
    await publish('doorsense/frames/21', RPI_LINES.slice(0, 20).join('\r\n'))
    await arrived(20)

    // the device became a door: live, in Home Assistant under its id
    const door = (await app.inject('/doors/21')).json<Door>()
    assert.equal(door.live, true)
    assert.equal(door.name, '')
    const configTopic = 'homeassistant/binary_sensor/doorsense_21/door/config'
    await configArrives(observer, configTopic, expectedDoorConfigs(21, 'Door 21', APP_VERSION)[configTopic])
    await observer.waitFor((m) => m.topic === doorTopics(21).availability && m.payload === 'online', { past: true })

    // malformed: each refused whole, counted, nothing stored, nothing new known
    const refusedBefore = sample(await metrics(app), 'doorsense_mqtt_frames_refused_total', 'reason="undecodable"')
    assert.equal(refusedBefore, 0)
    const badPayloads = ['garbage', '[1,2,3]', '{"ID":21,"frames":[]}', '', '[]', '\n\n', '[[1,2],[3]]', 'CSI_DATA,no,array']
    for (const bad of badPayloads) await publish('doorsense/frames/21', bad)
    const tooLarge = JSON.stringify(RPI_LINES.slice(0, 300))
    assert.ok(tooLarge.length > 65536)
    await publish('doorsense/frames/21', tooLarge) // > BODY_LIMIT (64 KiB)
    await publish('doorsense/frames/21', '1\n'.repeat(4097)) // more frames than one batch may hold
    await publish('doorsense/frames/22', 'garbage from a device doorsense does not know')
    for (const topic of ['doorsense/frames/abc', 'doorsense/frames/40000', 'doorsense/frames/007']) await publish(topic, RPI_LINES[0])
    // one publisher's messages arrive in order: once this frame is stored, every payload above was handled
    await publish('doorsense/frames/21', RPI_LINES[3])
    await arrived(1).catch(async (err: unknown) => {
      const bridgeStatus = JSON.stringify(await status(app))
      const mqttMetrics = (await metrics(app)).split('\n').filter((line) => line.includes('mqtt') || line.includes('frames_')).join('\n')
      throw new Error(`${String(err)}; ${bridgeStatus}; ${mqttMetrics}`)
    })
    const text = await metrics(app)
    // by reason only (8 of device 21, 1 of device 22): no label grows with the devices or topics that publish
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="undecodable"'), 9, text)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="too_large"'), 1)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="too_many"'), 1)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="topic"'), 3)
    assert.equal(await framesReceived(app, 21), expected, 'nothing of a refused payload is stored')
    assert.equal(await framesReceived(app, 22), 0)
    assert.equal((await app.inject('/doors/22')).statusCode, 404, 'a device that sent only garbage is not a door')
    assert.equal((await app.inject('/debug/get/exists')).statusCode, 200)
    assert.equal((await status(app)).connected, true)
  })

  test('binary frames on <base>/frames/<id>/pi108 and /esp128 store what the same frames as text store; bad payloads and topics change nothing', async (t) => {
    const { observer, app } = await running(t, kind, { BODY_LIMIT: '65536' })
    const publish = async (topic: string, payload: string | Buffer): Promise<void> => { await observer.client.publishAsync(topic, payload, { qos: 1 }) }
    const bytesOf = (lines: readonly string[]): Buffer => Buffer.from(encodeBinaryFrames(lines)?.bytes ?? [])
    await publish('doorsense/frames/31', RPI_LINES.slice(0, 100).join('\n'))
    await publish('doorsense/frames/32/pi108', bytesOf(RPI_LINES.slice(0, 100)))
    await publish('doorsense/frames/31', CSI_LINES.join('\n'))
    await publish('doorsense/frames/32/esp128', bytesOf(CSI_LINES))
    await until('113 frames of devices 31 and 32', async () => await framesReceived(app, 31) === 113 && await framesReceived(app, 32) === 113)
    const stored = (device: number) => app.storage.db.prepare('SELECT encoding, features FROM rpi_frames WHERE device = ? ORDER BY id').all(device)
    assert.equal(stored(32).length, 113)
    assert.deepEqual(stored(32), stored(31), 'the same features, byte for byte, and encodings')
    assert.equal((await app.inject('/doors/32')).json<Door>().live, true)

    await publish('doorsense/frames/32/pi108', Buffer.alloc(1000)) // 9 frames and 28 bytes over
    await publish('doorsense/frames/32/esp128', Buffer.alloc(0))
    await publish('doorsense/frames/32/pi108', bytesOf(Array.from({ length: 700 }, (_, i) => RPI_LINES[i % RPI_LINES.length]))) // > BODY_LIMIT
    const junkTopics = ['doorsense/frames/32/raw', 'doorsense/frames/007/pi108', 'doorsense/frames/32/pi108/x']
    for (const topic of junkTopics) await publish(topic, bytesOf(RPI_LINES.slice(0, 2)))
    // one publisher's messages arrive in order: once this frame is stored, every payload above was handled
    await publish('doorsense/frames/32/pi108', bytesOf(RPI_LINES.slice(0, 1)))
    await until('the last frame of device 32', async () => await framesReceived(app, 32) === 114)
    const text = await metrics(app)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="undecodable"'), 2, text)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="too_large"'), 1)
    // `+/+` does not reach a third level: doorsense never hears of doorsense/frames/32/pi108/x
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="topic"'), 2)
    assert.equal(stored(32).length, 114, 'nothing of a refused payload is stored')
  })

  test('10,000 junk frames messages (5,000 device ids, 5,000 junk topics): one counter series per reason, a line or two of log', async (t) => {
    const dataDir = tempDir(t)
    const { observer, app } = await running(t, kind, { LOG_TO_FILE: 'true', LOG_LEVEL: 'warn' }, { dataDir })
    const startedAt = performance.now()
    for (let i = 0; i < 5000; i++) observer.client.publish(`doorsense/frames/${100 + i}`, 'junk', { qos: 1 })
    for (let i = 0; i < 5000; i++) observer.client.publish(`doorsense/frames/junk-${i}`, 'junk', { qos: 1 })
    const refusedSeries = (text: string): string[] => text.split('\n').filter((line) => line.startsWith('doorsense_mqtt_frames_refused_total{'))
    const refusedTotal = (text: string): number => refusedSeries(text).reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0)
    await until('10,000 refusals', async () => refusedTotal(await metrics(app)) === 10_000, 30_000)
    const text = await metrics(app)
    assert.deepEqual(
      refusedSeries(text).map((line) => line.replace(/ \S+$/, '')).sort(),
      REFUSAL_REASONS.map((reason) => `doorsense_mqtt_frames_refused_total{reason="${reason}"}`).sort()
    )
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="undecodable"'), 5000)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="topic"'), 5000)
    assert.equal((await status(app)).connected, true)
    // closing flushes the log file, with the refusal log's summary of what it counted since its first line
    await app.close()
    // the first refusal, then a summary at most every 10 s and one at close: on a loaded machine the
    // 10,000 may take longer than one interval, which adds a line per interval, never one per message
    const intervals = Math.floor((performance.now() - startedAt) / 10_000)
    const refusalLines = logText(dataDir).split('\n').filter((line) => line.includes('frames from MQTT refused'))
    assert.ok(refusalLines.length >= 1 && refusalLines.length <= 2 + intervals,
      `${refusalLines.length} log lines about refusals in ${intervals} whole 10 s intervals:\n${refusalLines.slice(0, 5).join('\n')}`)
    const summarised = refusalLines.slice(1).reduce((sum, line) => sum + (JSON.parse(line) as { total: number }).total, 0)
    assert.equal(summarised, 9999, 'the summaries count every refusal after the first')
  })

  test('MQTT_MAX_PAYLOAD: a larger message is skipped unread (counted too_large, not undecodable); the bridge stays connected; below BODY_LIMIT it warns', async (t) => {
    const dataDir = tempDir(t)
    const { observer, app } = await running(t, kind, { MQTT_MAX_PAYLOAD: '4096', LOG_TO_FILE: 'true', LOG_LEVEL: 'warn' }, { dataDir })
    await observer.client.publishAsync('doorsense/frames/21', 'x'.repeat(10_000), { qos: 1 })
    await observer.client.publishAsync('doorsense/frames/21', RPI_LINES[0], { qos: 1 })
    await until('the frame after it', async () => await framesReceived(app, 21) === 1)
    const text = await metrics(app)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="too_large"'), 1, text)
    assert.equal(sample(text, 'doorsense_mqtt_frames_refused_total', 'reason="undecodable"'), 0, 'the payload was read and decoded')
    assert.equal((await status(app)).connected, true)
    await app.close()
    assert.match(logText(dataDir), /MQTT_MAX_PAYLOAD is below BODY_LIMIT/)
  })

  test('a Pi renamed by its keep-alive: Home Assistant gets the door\'s configs again with the new name', async (t) => {
    const { observer, app } = await running(t, kind)
    await keepAlive(app, 7, 'front-door')
    const configTopic = 'homeassistant/binary_sensor/doorsense_7/door/config'
    await configArrives(observer, configTopic, expectedDoorConfigs(7, 'front-door', APP_VERSION)[configTopic])
    const before = observer.messages.length
    await keepAlive(app, 7, 'back-door')
    for (const [topic, config] of Object.entries(expectedDoorConfigs(7, 'back-door', APP_VERSION))) await configArrives(observer, topic, config, before)
    assert.equal((await app.inject('/doors/7')).json<Door>().name, 'back-door')
  })

  test('a door renamed on the dashboard (PATCH /doors/{id}): Home Assistant gets its configs with that name, which its Pi\'s keep-alives no longer change; null gives the Pi\'s NAME back', async (t) => {
    const { observer, app } = await running(t, kind)
    const doorConfig = 'homeassistant/binary_sensor/doorsense_7/door/config'
    await keepAlive(app, 7, 'front-door')
    await configArrives(observer, doorConfig, expectedDoorConfigs(7, 'front-door', APP_VERSION)[doorConfig])
    const rename = async (name: string | null): Promise<void> => {
      const response = await app.inject({ method: 'PATCH', url: '/doors/7', headers: ADMIN, payload: { name } })
      assert.equal(response.statusCode, 200, response.body)
    }

    let before = observer.messages.length
    await rename('Front door')
    for (const [topic, config] of Object.entries(expectedDoorConfigs(7, 'Front door', APP_VERSION))) await configArrives(observer, topic, config, before)

    // the Pi keeps calling itself something else: the door keeps its name, Home Assistant hears nothing new
    before = observer.messages.length
    await keepAlive(app, 7, 'hall-pi')
    await sleep(300)
    assert.deepEqual(observer.messages.slice(before).filter((m) => m.topic.endsWith('/config')).map((m) => m.topic), [])
    assert.equal((await app.inject('/doors/7')).json<Door>().name, 'Front door')

    before = observer.messages.length
    await rename(null)
    for (const [topic, config] of Object.entries(expectedDoorConfigs(7, 'hall-pi', APP_VERSION))) await configArrives(observer, topic, config, before)
  })

  test('broker down at start: HTTP ingest answers 200 meanwhile; once the broker is up doorsense connects and publishes', async (t) => {
    const port = await freePort()
    const app = await buildTestApp(t, { MQTT_URL: `mqtt://127.0.0.1:${port}` })
    const later: { broker?: Broker, observer?: Observer } = {}
    t.after(async () => { await later.observer?.close(); await later.broker?.close() })
    assert.deepEqual(await status(app), { enabled: true, connected: false, broker: `mqtt://127.0.0.1:${port}`, discoveryPrefix: 'homeassistant', baseTopic: 'doorsense' })
    assert.equal(sample(await metrics(app), 'doorsense_mqtt_connected'), 0)
    const startedAt = performance.now()
    await keepAlive(app, 5, 'hall-door')
    await postFrames(app, 5, RPI_LINES.slice(0, 20).map((line) => JSON.parse(line) as number[]))
    assert.ok(performance.now() - startedAt < 1000, `ingest took ${Math.round(performance.now() - startedAt)} ms with the broker down`)
    assert.equal(await framesReceived(app, 5), 20)

    const broker = later.broker = await startBroker(kind, port)
    const observer = later.observer = await observe(broker.url, ALL_TOPICS)
    await observer.waitFor((m) => m.topic === 'doorsense/status' && m.payload === 'online', { past: true, timeoutMs: 8000 })
    const configTopic = 'homeassistant/binary_sensor/doorsense_5/door/config'
    await configArrives(observer, configTopic, expectedDoorConfigs(5, 'hall-door', APP_VERSION)[configTopic])
    await observer.waitFor((m) => m.topic === doorTopics(5).availability && m.payload === 'online', { past: true })
    assert.equal((await status(app)).connected, true)
    assert.equal(sample(await metrics(app), 'doorsense_mqtt_connected'), 1)
    await postFrames(app, 5, RPI_LINES.slice(20, 40).map((line) => JSON.parse(line) as number[]))
    assert.equal(await framesReceived(app, 5), 40)
  })

  test('a doorsense process killed with SIGKILL leaves its last will (status offline, retained); its log never holds the password', async (t) => {
    const secret = 'mqtt-s3cret-in-env'
    const inUrl = 'mqtt-s3cret-in-url'
    const port = await freePort()
    // the broker is down at first, so the log has the connection errors too
    const server = spawnServe(t, {
      DATA_DIR: tempDir(t),
      ADMIN_TOKEN,
      LOG_TO_FILE: 'false',
      LOG_LEVEL: 'debug',
      MQTT_URL: `mqtt://doorsense:${inUrl}@127.0.0.1:${port}`,
      MQTT_USERNAME: 'doorsense',
      MQTT_PASSWORD: secret
    })
    await server.waitForLog((line) => typeof line.msg === 'string' && line.msg.includes('cannot reach the MQTT broker'), 90_000)
    const broker = await startBroker(kind, port)
    const observer = await observe(broker.url, ['doorsense/status'])
    t.after(async () => { await observer.close(); await broker.close() })
    await observer.waitFor((m) => m.payload === 'online', { past: true, timeoutMs: 8000 })
    await server.waitForLog((line) => line.msg === 'home-assistant: connected to the MQTT broker')
    server.child.kill('SIGKILL')
    assert.equal(await server.exited, 'SIGKILL')
    await observer.waitFor((m) => m.payload === 'offline', { past: true, timeoutMs: 5000 })
    assert.equal((await retained(broker.url, ['doorsense/status'])).get('doorsense/status'), 'offline')
    const output = server.stdout() + server.stderr()
    assert.ok(server.logLines().some((line) => line.area === 'home-assistant' && line.url === `mqtt://127.0.0.1:${port}`), 'the broker is logged without credentials')
    assert.ok(!output.includes(secret) && !output.includes(inUrl), 'a password is in the log')
  })

  test('app.close() publishes offline and leaves nothing open: the process exits by itself', async (t) => {
    const broker = await startBroker(kind)
    const observer = await observe(broker.url, ['doorsense/status', 'doorsense/doors/7/availability'])
    t.after(async () => { await observer.close(); await broker.close() })
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/plugins/home-assistant/app-close-child.ts', broker.url, tempDir(t)], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const exited = once(child, 'close').then(([code, signal]) => (code ?? signal) as number | string)
    const killer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    t.after(async () => { clearTimeout(killer); child.kill('SIGKILL'); await exited })
    const code = await exited
    assert.equal(code, 0, `exit ${code}: something was left open or failed.\nstdout:\n${stdout}\nstderr:\n${stderr}`)
    assert.deepEqual(stdout.trim().split('\n'), ['connected 200 200', 'closed'])
    assert.deepEqual(observer.on('doorsense/status').map((m) => m.payload).filter((p, i, all) => p !== all[i - 1]).slice(-2), ['online', 'offline'])
    assert.equal(observer.last('doorsense/doors/7/availability')?.payload, 'online', 'the door was published before the close')
    assert.equal((await retained(broker.url, ['doorsense/status'])).get('doorsense/status'), 'offline')
  })
}

test('with MQTT_URL unset nothing connects and nothing is published; the status route says so', async (t) => {
  const sockets = (): number => process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap' || name === 'TLSWrap').length
  const before = sockets()
  const app = await buildTestApp(t)
  await keepAlive(app, 7, 'front-door')
  await sleep(200)
  assert.deepEqual(await status(app), { enabled: false, connected: false, broker: null, discoveryPrefix: 'homeassistant', baseTopic: 'doorsense' })
  assert.equal(sockets(), before, 'a socket was opened')
  assert.doesNotMatch(await metrics(app), /doorsense_mqtt_/)
})

test('the status route names the broker by scheme, host and port only, and follows the prefixes set', async (t) => {
  const port = await freePort()
  const app = await buildTestApp(t, {
    MQTT_URL: `mqtt://someone:hunter2-password@127.0.0.1:${port}`,
    MQTT_DISCOVERY_PREFIX: 'ha-test',
    MQTT_BASE_TOPIC: 'site/doorsense'
  })
  const answer = await app.inject('/home-assistant/status')
  assert.doesNotMatch(answer.body, /hunter2|someone/)
  assert.deepEqual(answer.json(), { enabled: true, connected: false, broker: `mqtt://127.0.0.1:${port}`, discoveryPrefix: 'ha-test', baseTopic: 'site/doorsense' })
  const openapi = (await app.inject('/openapi.json')).json<{ paths: Record<string, unknown> }>()
  assert.ok('/home-assistant/status' in openapi.paths, 'the route is in the OpenAPI document')
})

describe('home-assistant in the app', { concurrency: 2 }, () => {
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

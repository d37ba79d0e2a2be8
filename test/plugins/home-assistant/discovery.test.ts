import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  binaryFramesFilter,
  binaryFramesTopic,
  bridgeConfig,
  doorConfigs,
  doorRemoval,
  doorStatePayloads,
  parseAnyFramesTopic,
  parseFramesTopic,
  redactUrl
} from '../../../plugins/home-assistant/discovery.js'
import { door } from './memory-doors.js'

const options = { discoveryPrefix: 'ha', baseTopic: 'site/doorsense', swVersion: '1.2.3' }

test('config topics and ids follow the prefix and base topic given', () => {
  const configs = doorConfigs(door(12, { name: 'Back door' }), options)
  assert.deepEqual(configs.map((config) => config.topic), [
    'ha/binary_sensor/doorsense_12/door/config',
    'ha/sensor/doorsense_12/angle/config',
    'ha/sensor/doorsense_12/confidence/config',
    'ha/sensor/doorsense_12/frame_rate/config',
    'ha/binary_sensor/doorsense_12/recalibration/config'
  ])
  for (const config of configs) {
    assert.deepEqual(JSON.parse(config.payload), config.config)
    assert.deepEqual(config.config.availability, [{ topic: 'site/doorsense/status' }, { topic: 'site/doorsense/doors/12/availability' }])
    assert.equal(config.config.unique_id, `doorsense_12_${config.entity}`)
    assert.equal(config.config.state_topic, `site/doorsense/doors/12/${config.entity === 'door' ? 'state' : config.entity}`)
  }
  assert.equal(bridgeConfig(options).topic, 'ha/binary_sensor/doorsense_bridge/connectivity/config')
  assert.equal(bridgeConfig(options).config.state_topic, 'site/doorsense/status')
})

test('a door without a name is "Door <id>"; a blank one too', () => {
  assert.equal((doorConfigs(door(4, { name: '' }), options)[0].config.device as { name: string }).name, 'Door 4')
  assert.equal((doorConfigs(door(4, { name: '   ' }), options)[0].config.device as { name: string }).name, 'Door 4')
  assert.equal((doorConfigs(door(4, { name: ' Hall ' }), options)[0].config.device as { name: string }).name, 'Hall')
})

test('state payloads: ON/OFF/None, percent, one decimal, None while unknown', () => {
  assert.deepEqual(doorStatePayloads(door(1, { state: 'open', angle: 44.96, confidence: 0.8734, frameRate: 19.04 })), {
    state: 'ON', availability: 'online', angle: '45', confidence: '87.3', frameRate: '19', recalibration: 'OFF'
  })
  assert.deepEqual(doorStatePayloads(door(1, { state: 'closed', angle: -0.01, confidence: 1, frameRate: 0 })), {
    state: 'OFF', availability: 'online', angle: '0', confidence: '100', frameRate: '0', recalibration: 'OFF'
  })
  assert.deepEqual(doorStatePayloads(door(1, { state: 'unknown', angle: null, confidence: 0, frameRate: 0, live: false, needsRecalibration: true })), {
    state: 'None', availability: 'offline', angle: 'None', confidence: 'None', frameRate: '0', recalibration: 'ON'
  })
  // closed or ajar, accepted by the user as closed; another room's door on the global model is None
  const closedOrAjar = door(1, { state: 'closedOrAjar', angle: 0, confidence: 0.5, frameRate: 20, reason: { code: 'closed-or-ajar', message: '…' } })
  assert.deepEqual(doorStatePayloads(closedOrAjar), {
    state: 'OFF', availability: 'online', angle: '0', confidence: '50', frameRate: '20', recalibration: 'OFF'
  })
  const notCalibrated = door(1, { state: 'unknown', angle: null, confidence: 0, needsRecalibration: true, reason: { code: 'not-calibrated', message: '…' } })
  assert.equal(doorStatePayloads(notCalibrated).state, 'None')
})

test('removal clears every config and state topic of the door', () => {
  const removal = doorRemoval(5, options)
  assert.deepEqual(removal.map((message) => message.topic), [
    'ha/binary_sensor/doorsense_5/door/config',
    'ha/sensor/doorsense_5/angle/config',
    'ha/sensor/doorsense_5/confidence/config',
    'ha/sensor/doorsense_5/frame_rate/config',
    'ha/binary_sensor/doorsense_5/recalibration/config',
    'site/doorsense/doors/5/state',
    'site/doorsense/doors/5/availability',
    'site/doorsense/doors/5/angle',
    'site/doorsense/doors/5/confidence',
    'site/doorsense/doors/5/frame_rate',
    'site/doorsense/doors/5/recalibration'
  ])
  assert.ok(removal.every((message) => message.payload === ''))
})

test('frames topics: only a plain decimal 0..32767 is a device', () => {
  assert.equal(parseFramesTopic('doorsense', 'doorsense/frames/7'), 7)
  assert.equal(parseFramesTopic('doorsense', 'doorsense/frames/0'), 0)
  assert.equal(parseFramesTopic('doorsense', 'doorsense/frames/32767'), 32767)
  for (const topic of ['doorsense/frames/32768', 'doorsense/frames/99999', 'doorsense/frames/abc', 'doorsense/frames/007',
    'doorsense/frames/-1', 'doorsense/frames/1.5', 'doorsense/frames/', 'doorsense/frames/7/x', 'other/frames/7', 'doorsense/frames/1e3']) {
    assert.equal(parseFramesTopic('doorsense', topic), undefined, topic)
  }
})

test('binary frames topics: <base>/frames/<id>/pi108 and /esp128 name the device and the layout; nothing else does', () => {
  assert.deepEqual(parseAnyFramesTopic('doorsense', 'doorsense/frames/7'), { device: 7 })
  assert.deepEqual(parseAnyFramesTopic('doorsense', 'doorsense/frames/7/pi108'), { device: 7, layout: 'pi108' })
  assert.deepEqual(parseAnyFramesTopic('site/doorsense', 'site/doorsense/frames/32767/esp128'), { device: 32767, layout: 'esp128' })
  assert.equal(binaryFramesTopic('doorsense', 0, 'esp128'), 'doorsense/frames/0/esp128')
  assert.equal(binaryFramesFilter('doorsense'), 'doorsense/frames/+/+')
  for (const topic of ['doorsense/frames/7/pi100', 'doorsense/frames/7/PI108', 'doorsense/frames/007/pi108', 'doorsense/frames/40000/pi108',
    'doorsense/frames/pi108', 'doorsense/frames/7/pi108/x', 'doorsense/frames//pi108', 'other/frames/7/pi108', 'doorsense/frames/7/']) {
    assert.equal(parseAnyFramesTopic('doorsense', topic), undefined, topic)
  }
})

test('a URL for the log keeps no credentials', () => {
  assert.equal(redactUrl('mqtts://user:secret@broker.local:8883'), 'mqtts://broker.local:8883')
  assert.equal(redactUrl('mqtt://broker.local'), 'mqtt://broker.local')
  assert.equal(redactUrl('not a url'), '(unparseable MQTT_URL)')
})

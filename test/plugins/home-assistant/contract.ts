/**
 * Issue 13's contract, spelled out field by field, for the app-level tests:
 * the retained discovery configs Home Assistant must see for a door and for
 * the bridge (the same contract test/plugins/home-assistant/bridge.test.ts
 * checks on the bridge alone).
 */

/** Every discovery and doorsense topic under the default prefixes. */
export const ALL_TOPICS = ['homeassistant/#', 'doorsense/#']

/** The five configs of door `id` named `name`, by topic. */
export function expectedDoorConfigs (id: number, name: string, swVersion: string): Record<string, Record<string, unknown>> {
  const common = {
    device: { identifiers: [`doorsense_${id}`], name, manufacturer: 'doorsense', model: 'Wi-Fi CSI door sensor', via_device: 'doorsense_bridge' },
    origin: { name: 'doorsense', sw_version: swVersion },
    availability: [{ topic: 'doorsense/status' }, { topic: `doorsense/doors/${id}/availability` }],
    availability_mode: 'all'
  }
  return {
    [`homeassistant/binary_sensor/doorsense_${id}/door/config`]: {
      name: null,
      unique_id: `doorsense_${id}_door`,
      device_class: 'door',
      state_topic: `doorsense/doors/${id}/state`,
      payload_on: 'ON',
      payload_off: 'OFF',
      ...common
    },
    [`homeassistant/sensor/doorsense_${id}/angle/config`]: {
      name: 'Angle',
      unique_id: `doorsense_${id}_angle`,
      state_topic: `doorsense/doors/${id}/angle`,
      unit_of_measurement: '°',
      state_class: 'measurement',
      suggested_display_precision: 0,
      icon: 'mdi:angle-acute',
      ...common
    },
    [`homeassistant/sensor/doorsense_${id}/confidence/config`]: {
      name: 'Confidence',
      unique_id: `doorsense_${id}_confidence`,
      state_topic: `doorsense/doors/${id}/confidence`,
      unit_of_measurement: '%',
      state_class: 'measurement',
      suggested_display_precision: 0,
      icon: 'mdi:gauge',
      ...common
    },
    [`homeassistant/sensor/doorsense_${id}/frame_rate/config`]: {
      name: 'Frame rate',
      unique_id: `doorsense_${id}_frame_rate`,
      state_topic: `doorsense/doors/${id}/frame_rate`,
      unit_of_measurement: 'frames/s',
      state_class: 'measurement',
      suggested_display_precision: 1,
      entity_category: 'diagnostic',
      icon: 'mdi:wifi',
      ...common
    },
    [`homeassistant/binary_sensor/doorsense_${id}/recalibration/config`]: {
      name: 'Calibration',
      unique_id: `doorsense_${id}_recalibration`,
      device_class: 'problem',
      state_topic: `doorsense/doors/${id}/recalibration`,
      payload_on: 'ON',
      payload_off: 'OFF',
      entity_category: 'diagnostic',
      ...common
    }
  }
}

/** The bridge device's connectivity sensor, by topic. */
export function expectedBridgeConfig (swVersion: string): Record<string, Record<string, unknown>> {
  return {
    'homeassistant/binary_sensor/doorsense_bridge/connectivity/config': {
      name: 'Connectivity',
      unique_id: 'doorsense_bridge_connectivity',
      device_class: 'connectivity',
      state_topic: 'doorsense/status',
      payload_on: 'online',
      payload_off: 'offline',
      entity_category: 'diagnostic',
      device: { identifiers: ['doorsense_bridge'], name: 'doorsense', manufacturer: 'doorsense', model: 'doorsense server', sw_version: swVersion },
      origin: { name: 'doorsense', sw_version: swVersion }
    }
  }
}

/** The state topics of door `id`. */
export function doorTopics (id: number): { state: string, availability: string, angle: string, confidence: string, frameRate: string, recalibration: string } {
  const door = `doorsense/doors/${id}`
  return {
    state: `${door}/state`,
    availability: `${door}/availability`,
    angle: `${door}/angle`,
    confidence: `${door}/confidence`,
    frameRate: `${door}/frame_rate`,
    recalibration: `${door}/recalibration`
  }
}

// @ts-check
/** The Devices section: every Pi doorsense knows, live or stale. */
import { useEffect, useState } from '../vendor/hooks.js'
import { api, errorMessage, must } from './api.js'
import { html } from './html.js'
import { ago, clockTime } from './format.js'
import { liveIcon, staleIcon } from './icons.js'
import { doorsStore } from './streams.js'
import { clock, useStore } from './store.js'

/** @typedef {import('./types').KnownDevice} KnownDevice */

const REFRESH_MS = 10_000

export function DevicesSection () {
  const [devices, setDevices] = useState(/** @type {KnownDevice[] | null} */ (null))
  const [problem, setProblem] = useState(/** @type {string | null} */ (null))
  const { doors } = useStore(doorsStore)
  const now = useStore(clock)
  const deviceIds = [...doors.keys()].sort().join(',')

  // read every 10 s, and at once when a door appears or goes
  useEffect(() => {
    let stopped = false
    const read = async () => {
      try {
        const list = await must(api.GET('/app/get/known_servers'))
        if (!stopped) { setDevices(list); setProblem(null) }
      } catch (err) {
        if (!stopped) setProblem(errorMessage(err))
      }
    }
    read()
    const timer = setInterval(read, REFRESH_MS)
    return () => { stopped = true; clearInterval(timer) }
  }, [deviceIds])

  return html`
    <section id="devices" aria-labelledby="devices-title">
      <h2 id="devices-title">Devices</h2>
      ${problem && html`<p class="problem">Could not read the devices: ${problem}</p>`}
      ${devices === null && !problem && html`<p class="muted">Loading devices…</p>`}
      ${devices !== null && devices.length === 0 && html`<p class="muted">No Pi has sent a keep-alive yet.</p>`}
      <ul class="devices">
        ${(devices ?? []).slice().sort((a, b) => a.id - b.id).map((device) => {
          const door = doors.get(device.id)
          const live = door?.live ?? device.live
          return html`<li class="device" data-device=${device.id}>
            <div class="tile-head">
              <h3>${device.name || `Pi ${device.id}`}</h3>
              <span class="device-id">ID ${device.id}</span>
            </div>
            <p class=${`liveness ${live ? 'live' : 'stale'}`}>${live ? liveIcon() : staleIcon()} <strong>${live ? 'Live' : 'Stale'}</strong></p>
            <dl class="facts">
              <div>
                <dt>Last keep-alive</dt>
                <dd><time datetime=${device.lastSeen} title=${clockTime(device.lastSeen)}>${ago(device.lastSeen, now)}</time></dd>
              </div>
              <div><dt>Keep-alives</dt><dd>${device.keepAlives}</dd></div>
              <div><dt>Frames</dt><dd>${door ? `${door.frameRate.toFixed(1)}/s, last ${ago(door.lastFrameAt, now)}` : 'none yet'}</dd></div>
              <div><dt>Address</dt><dd><code>${device.addr}</code></dd></div>
            </dl>
          </li>`
        })}
      </ul>
    </section>`
}

// @ts-check
/** Home Assistant (MQTT) status, shown only when that area is on. */
import { useEffect, useState } from '../vendor/hooks.js'
import { api, must } from './api.js'
import { html } from './html.js'
import { liveIcon, staleIcon } from './icons.js'

/** @typedef {import('./types').HomeAssistantStatus} HomeAssistantStatus */

const REFRESH_MS = 15_000

export function HomeAssistantSection () {
  const [status, setStatus] = useState(/** @type {HomeAssistantStatus | null} */ (null))
  useEffect(() => {
    const read = () => must(api.GET('/home-assistant/status')).then(setStatus, () => setStatus(null))
    read()
    const timer = setInterval(read, REFRESH_MS)
    return () => clearInterval(timer)
  }, [])
  if (!status?.enabled) return null
  return html`
    <section id="home-assistant" aria-labelledby="ha-title">
      <h2 id="ha-title">Home Assistant</h2>
      <p class=${`liveness ${status.connected ? 'live' : 'stale'}`}>
        ${status.connected ? liveIcon() : staleIcon()}
        <strong>${status.connected ? 'Connected' : 'Not connected'}</strong>
        ${status.broker && html` to <code>${status.broker}</code>`}
      </p>
      <p class="muted">Doors are published under <code>${status.baseTopic}</code>; Home Assistant finds them under <code>${status.discoveryPrefix}</code>.</p>
    </section>`
}

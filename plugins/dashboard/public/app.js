// @ts-check
/** The dashboard page: doors, devices, Home Assistant, model; the calibration wizard and the token prompt on top. */
import { render } from '../vendor/preact.js'
import { useState } from '../vendor/hooks.js'
import { html } from './html.js'
import { ClusterFooter } from './cluster.js'
import { DevicesSection } from './devices.js'
import { DoorsSection } from './doors.js'
import { HomeAssistantSection } from './home-assistant.js'
import { ModelSection } from './model.js'
import { doorsStore, startDoors, startProgress } from './streams.js'
import { announcement, useStore } from './store.js'
import { AdminButton, TokenDialog } from './token-dialog.js'
import { CalibrationWizard } from './wizard.js'

function ConnectionBadge () {
  const { connection } = useStore(doorsStore)
  const words = connection === 'live' ? 'Live' : connection === 'connecting' ? 'Connecting…' : 'Reconnecting…'
  return html`<span class=${`connection ${connection}`}><span class="dot" aria-hidden="true"></span>${words}</span>`
}

function Announcer () {
  const { n, text } = useStore(announcement)
  // a new element per message, so the same words twice are announced twice
  return html`<div class="visually-hidden" aria-live="polite" aria-atomic="true" id="announcer"><p key=${n}>${text}</p></div>`
}

function App () {
  const [wizardDevice, setWizardDevice] = useState(/** @type {number | null} */ (null))
  return html`
    <a class="skip-link" href="#doors">Skip to the doors</a>
    <header class="top">
      <h1>doorsense</h1>
      <${ConnectionBadge} />
      <nav aria-label="Sections">
        <a href="#doors">Doors</a>
        <a href="#devices">Devices</a>
        <a href="#model">Model</a>
      </nav>
      <${AdminButton} />
    </header>
    <main>
      <${DoorsSection} onCalibrate=${setWizardDevice} />
      <${DevicesSection} />
      <${HomeAssistantSection} />
      <${ModelSection} />
    </main>
    <${ClusterFooter} />
    ${wizardDevice !== null && html`<${CalibrationWizard} device=${wizardDevice} onClose=${() => setWizardDevice(null)} />`}
    <${TokenDialog} />
    <${Announcer} />`
}

startDoors()
startProgress()
const root = /** @type {HTMLElement} */ (document.getElementById('app'))
root.textContent = ''
render(html`<${App} />`, root)

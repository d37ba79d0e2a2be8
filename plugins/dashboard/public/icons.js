// @ts-check
/** Inline SVG icons: decorative (aria-hidden), the text beside each says the same. */
import { html } from './html.js'

/** @param {string} d @param {string} name */
function icon (d, name) {
  return html`
    <svg class=${`icon icon-${name}`} viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false">
      <path d=${d} fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" />
    </svg>`
}

// a closed door: the leaf fills the frame, with its handle
export const closedIcon = () => icon('M5 21V3h14v18M3 21h18M15 12h.01', 'closed')
// an open door: the leaf swung out of the frame
export const openIcon = () => icon('M5 21V3h14v18M3 21h18M5 3l8 3v17l-8-2M10 13h.01', 'open')
// closed, or open a little: the closed door with its leaf drawn a little off the frame
export const closedOrAjarIcon = () => icon('M5 21V3h14v18M3 21h18M5 3l5 2v16.5M15 12h.01', 'closed-or-ajar')
export const unknownIcon = () => icon('M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3M12 17h.01M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'unknown')
export const warningIcon = () => icon('M12 9v4M12 17h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z', 'warning')
export const liveIcon = () => icon('M5 12.5l4.5 4.5L19 7', 'live')
export const staleIcon = () => icon('M6 6l12 12M18 6 6 18', 'stale')

/** @param {import('./types').DoorState} state */
export function stateIcon (state) {
  switch (state) {
    case 'open': return openIcon()
    case 'closed': return closedIcon()
    case 'closedOrAjar': return closedOrAjarIcon()
    default: return unknownIcon()
  }
}

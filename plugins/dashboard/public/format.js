// @ts-check
/** How numbers and times are written on the page. */

/** @param {number} share 0..1 @param {number} [digits] */
export function percent (share, digits = 0) {
  return `${(share * 100).toFixed(digits)}%`
}

/** @param {string | null | undefined} iso @param {number} now */
export function ago (iso, now) {
  // the epoch is how the server says "never"
  if (!iso || Date.parse(iso) <= 0) return 'never'
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (seconds < 2) return 'just now'
  if (seconds < 90) return `${seconds} s ago`
  const minutes = Math.round(seconds / 60)
  if (minutes < 90) return `${minutes} min ago`
  const hours = Math.round(minutes / 60)
  if (hours < 36) return `${hours} h ago`
  return `${Math.round(hours / 24)} days ago`
}

/** @param {string | null | undefined} iso */
export function clockTime (iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
}

/** @param {number} seconds */
export function duration (seconds) {
  const s = Math.max(0, Math.round(seconds))
  return s < 90 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`
}

/** Angles as a list, "15°, 30°". @param {readonly number[]} angles */
export function degreeList (angles) {
  return angles.map((angle) => `${angle}°`).join(', ')
}

/** @param {{ name: string, device: number }} door */
export function doorName (door) {
  return door.name.trim() === '' ? `Door ${door.device}` : door.name
}

/** @param {import('./types').DoorState} state */
export function stateWord (state) {
  switch (state) {
    case 'open': return 'Open'
    case 'closed': return 'Closed'
    // its calibration cannot tell ajar from closed and was accepted anyway
    case 'closedOrAjar': return 'Closed or ajar'
    default: return 'Unknown'
  }
}

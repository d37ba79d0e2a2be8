/**
 * A value as an error message quotes it: JSON, cut to a few dozen characters.
 * Never throws (a value nested too deep for JSON.stringify, or a cycle, is
 * named by its type), so building a 400 cannot turn into a 500.
 */
export function describeValue (value: unknown, maxLength = 40): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    text = undefined
  }
  if (text === undefined) text = Array.isArray(value) ? 'an array' : typeof value === 'object' && value !== null ? 'an object' : String(value)
  return text.length > maxLength ? `${text.slice(0, maxLength)}…` : text
}

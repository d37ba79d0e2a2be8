/**
 * A value as an error message quotes it. Here, beside the schemas, because
 * both core/ (the request checks, the error handler) and domain/ (frame
 * decoding) quote values and schemas/ is the one part of the house both may
 * import (.dependency-cruiser.cjs: core-stands-alone, domain-is-pure).
 */

/** Characters JSON.stringify leaves as they are but a message must not carry: C1 controls, bidi controls, separators. */
const UNSAFE_IN_MESSAGE = /[\u0080-\u009f\p{Bidi_Control}\p{Zl}\p{Zp}]/gu

/**
 * A value as an error message quotes it: JSON, cut to `maxLength`
 * characters, with every character that could garble the message escaped.
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
  if (text.length > maxLength) text = `${text.slice(0, maxLength)}…`
  return text.replace(UNSAFE_IN_MESSAGE, (character) => `\\u${(character.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`)
}

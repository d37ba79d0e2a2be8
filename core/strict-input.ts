/**
 * The ajv keywords behind schemas/common.ts's `decimalInteger` and
 * `printableText`: request fields checked as they arrived, before ajv's type
 * coercion gets to read "0x10" as 16 or keep a NUL in a name, then handed on
 * normalised (a number, a trimmed string). Given to Fastify's ajv in
 * core/app.ts; a schema using a keyword no one registered fails to compile
 * (ajv's strict mode), so the app cannot start with a check missing.
 */
import type { Plugin, SchemaValidateFunction } from 'ajv'
import { DECIMAL_INTEGER_KEYWORD, PRINTABLE_TEXT_KEYWORD, type DecimalIntegerRange } from '../schemas/common.js'
import { describeValue } from '../schemas/describe.js'

/** A value that passed, normalised, or why it did not (an ajv-style message: "must …"). */
export type Checked<T> = { ok: true, value: T } | { ok: false, problem: string }

/** Decimal digits only: no sign, space, exponent, hex, fraction; 15 at most, so the number is exact. */
const DECIMAL_DIGITS = /^[0-9]{1,15}$/

/** How a field of {@link DECIMAL_INTEGER_KEYWORD} reads `value`. */
export function checkDecimalInteger (value: unknown, range: DecimalIntegerRange): Checked<number | null> {
  if (value === null && range.nullable === true) return { ok: true, value: null }
  const number = typeof value === 'number' ? value : typeof value === 'string' && DECIMAL_DIGITS.test(value) ? Number(value) : undefined
  if (number === undefined || !Number.isInteger(number)) {
    const forms = `a JSON number, or its decimal digits in a string such as "7"${range.nullable === true ? ', or null' : ''}`
    return { ok: false, problem: `must be an integer ${range.minimum}..${range.maximum} (${forms}), got ${describeValue(value)}` }
  }
  if (number < range.minimum) return { ok: false, problem: `must be >= ${range.minimum}, got ${describeValue(value)}` }
  if (number > range.maximum) return { ok: false, problem: `must be <= ${range.maximum}, got ${describeValue(value)}` }
  return { ok: true, value: number }
}

/**
 * What a name may not hold: C0/C1 controls and DEL, bidirectional-text
 * controls (embeddings, overrides, isolates, marks), the other invisible
 * format characters (Unicode Cf: the zero-width space, the word joiner, the
 * soft hyphen, tag characters — two names that look alike could differ by
 * one), line/paragraph separators, lone surrogates. The zero-width joiner and
 * non-joiner are kept between two visible characters, where emoji sequences
 * and scripts such as Persian and Devanagari need them. See
 * schemas/common.ts `printableText`.
 */
const NOT_PRINTABLE = new RegExp([
  String.raw`[\p{Cc}\p{Bidi_Control}\p{Zl}\p{Zp}\p{Cs}]`,
  String.raw`(?![\u200C\u200D])\p{Cf}`,
  String.raw`(?<![\p{L}\p{M}\p{N}\p{S}\p{P}])[\u200C\u200D]`,
  String.raw`[\u200C\u200D](?![\p{L}\p{M}\p{N}\p{S}\p{P}])`
].join('|'), 'u')

/** What a character refused by {@link NOT_PRINTABLE} is, in words. */
function kindOf (character: string): string {
  if (/\p{Cc}/u.test(character)) return 'a control character'
  if (/\p{Bidi_Control}/u.test(character)) return 'a bidirectional-text control'
  if (/\p{Cf}/u.test(character)) return 'an invisible format character'
  if (/\p{Cs}/u.test(character)) return 'half of a surrogate pair'
  return 'a line or paragraph separator'
}

/** `U+202E`: how a message names a character without showing it. */
function codePointOf (character: string): string {
  return `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`
}

/** How a field of {@link PRINTABLE_TEXT_KEYWORD} reads `value`: trimmed; the bad character is named, never echoed. */
export function checkPrintableText (value: unknown): Checked<string>
export function checkPrintableText (value: unknown, options: { nullable: true }): Checked<string | null>
export function checkPrintableText (value: unknown, options?: { nullable: true }): Checked<string | null> {
  if (value === null && options?.nullable === true) return { ok: true, value: null }
  if (typeof value !== 'string') return { ok: false, problem: `must be a string, got ${describeValue(value)}` }
  const text = value.trim()
  const bad = NOT_PRINTABLE.exec(text)
  if (bad) {
    const position = [...text.slice(0, bad.index)].length + 1
    return { ok: false, problem: `must be printable text: character ${position} is ${codePointOf(bad[0])}, ${kindOf(bad[0])}` }
  }
  return { ok: true, value: text }
}

/** An ajv keyword that runs `check` on the raw value, replaces it by the normalised one, or fails with the problem. */
function keyword<S> (
  ajv: Parameters<Plugin<unknown>>[0],
  name: string,
  schemaType: 'object' | 'boolean' | Array<'object' | 'boolean'>,
  check: (value: unknown, schema: S) => Checked<unknown>
): void {
  const validate: SchemaValidateFunction = (schema: S, data: unknown, _parentSchema, context) => {
    const checked = check(data, schema)
    if (!checked.ok) {
      validate.errors = [{ keyword: name, message: checked.problem, params: {} }]
      return false
    }
    // a field always has a parent here (a body, query or params object): write the normalised value back
    if (context !== undefined && checked.value !== data) context.parentData[context.parentDataProperty] = checked.value
    return true
  }
  // before `allOf`: its `type` would coerce the value first
  ajv.addKeyword({ keyword: name, schemaType, modifying: true, errors: true, before: 'allOf', validate })
}

/** The ajv plugin (Fastify's `ajv.plugins`) that defines both keywords. */
export const strictInputKeywords: Plugin<unknown> = (ajv) => {
  keyword<DecimalIntegerRange>(ajv, DECIMAL_INTEGER_KEYWORD, 'object', checkDecimalInteger)
  keyword<true | { nullable: true }>(ajv, PRINTABLE_TEXT_KEYWORD, ['boolean', 'object'],
    (value, schema) => schema === true ? checkPrintableText(value) : checkPrintableText(value, schema))
  return ajv
}

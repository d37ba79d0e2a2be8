import { Type, type Static, type TUnsafe } from '@sinclair/typebox'

/** The body of every 4xx/5xx answer (the @fastify/sensible shape). */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  error: Type.String({ description: 'the HTTP status text' }),
  message: Type.String({ description: 'what was wrong, naming the field or value' }),
  code: Type.Optional(Type.String({ description: 'a stable error code such as DS_BAD_FRAME' }))
}, { title: 'ErrorResponse' })
export type ErrorResponse = Static<typeof ErrorResponse>

/** Standard error responses to spread into a route's `response` map. */
export const errorResponses = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
  413: ErrorResponse,
  415: ErrorResponse,
  503: ErrorResponse,
  // any write: the database or the disk is full (DS_STORAGE_FULL); nothing of the request was stored
  507: ErrorResponse
} as const

/** Highest Pi ID: the original registry stored a signed 16-bit integer's non-negative half. */
export const MAX_DEVICE_ID = 32767

/** A Pi's ID as answers carry it. Request fields use {@link DeviceIdInput}. */
export const DeviceId = Type.Integer({ minimum: 0, maximum: MAX_DEVICE_ID, description: 'the Pi ID, 0..32767' })

/*
 * Request fields that must not be read loosely. ajv coerces types (the legacy
 * clients send numbers as strings), which would read "0x10" as 16, "1e3" as
 * 1000, " 7" and [7] as 7. These two keywords, given to ajv by
 * core/strict-input.ts, check the value as it arrived, before any coercion,
 * and hand on the normalised value; the `allOf` beside each is what the
 * OpenAPI document and the generated client read.
 */

/** Keyword: a JSON integer, or its decimal digits as a string (the legacy form), in a range; handed on as a number. */
export const DECIMAL_INTEGER_KEYWORD = 'x-decimal-integer'
/** Keyword: a string of printable text, handed on trimmed; control, bidirectional-control and other invisible format characters are refused. */
export const PRINTABLE_TEXT_KEYWORD = 'x-printable-text'

/** The value of {@link DECIMAL_INTEGER_KEYWORD}. */
export interface DecimalIntegerRange {
  minimum: number
  maximum: number
  /** null passes too (and stays null) */
  nullable?: boolean
}

/** A request's integer field: a JSON integer or its decimal digits (`"7"`), nothing else (no sign, space, exponent, hex or array). */
export function decimalInteger (range: { minimum: number, maximum: number }, description: string): TUnsafe<number> {
  return Type.Unsafe<number>({ [DECIMAL_INTEGER_KEYWORD]: range, allOf: [{ type: 'integer', ...range }], description })
}

/** {@link decimalInteger}, or null. */
export function nullableDecimalInteger (range: { minimum: number, maximum: number }, description: string): TUnsafe<number | null> {
  return Type.Unsafe<number | null>({
    [DECIMAL_INTEGER_KEYWORD]: { ...range, nullable: true },
    allOf: [{ type: 'integer', nullable: true, ...range }],
    description
  })
}

/**
 * A request's name field: printable text, trimmed, 1..maxLength characters.
 * Refused: C0 and C1 control characters and DEL (NUL, ESC of ANSI escapes,
 * CR, LF, tab), bidirectional-text controls (the U+202A–U+202E embeddings and
 * overrides, the U+2066–U+2069 isolates, the U+200E/U+200F/U+061C marks),
 * the other format characters (U+200B, U+2060, U+00AD, tag characters; a
 * zero-width joiner or non-joiner only between two visible characters), the
 * U+2028/U+2029 line and paragraph separators and lone surrogates: none
 * shows as itself, and each can make a name served back read as something else.
 */
export function printableText (maxLength: number, description: string): TUnsafe<string> {
  return Type.Unsafe<string>({ [PRINTABLE_TEXT_KEYWORD]: true, allOf: [{ type: 'string', minLength: 1, maxLength }], description })
}

/** {@link printableText}, or null. */
export function nullablePrintableText (maxLength: number, description: string): TUnsafe<string | null> {
  return Type.Unsafe<string | null>({
    [PRINTABLE_TEXT_KEYWORD]: { nullable: true },
    allOf: [{ type: 'string', nullable: true, minLength: 1, maxLength }],
    description
  })
}

const DEVICE_ID_RANGE = { minimum: 0, maximum: MAX_DEVICE_ID }
const DEVICE_ID_FORMS = 'a JSON integer; the decimal string "7" of the original clients is accepted too'

/** A Pi's ID in a request (body, query or path). */
export const DeviceIdInput = decimalInteger(DEVICE_ID_RANGE, `the Pi ID, 0..32767 (${DEVICE_ID_FORMS})`)

/** {@link DeviceIdInput}, or null for "no device". */
export const NullableDeviceIdInput = nullableDecimalInteger(DEVICE_ID_RANGE, `a Pi ID 0..32767 (${DEVICE_ID_FORMS}), or null`)

/** ISO-8601 timestamp. */
export const Timestamp = Type.String({ format: 'date-time' })

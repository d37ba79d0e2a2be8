import { Type, type Static } from '@sinclair/typebox'

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
  503: ErrorResponse
} as const

/** A Pi's ID, as the original registry stored it (a signed 16-bit integer's non-negative half). */
export const DeviceId = Type.Integer({ minimum: 0, maximum: 32767, description: 'the Pi ID, 0..32767' })

/** ISO-8601 timestamp. */
export const Timestamp = Type.String({ format: 'date-time' })

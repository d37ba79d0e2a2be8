import { Type } from '@sinclair/typebox'
import { ErrorResponse } from './common.js'

/** Longest Idempotency-Key: a UUID is 36 characters, room to spare for a client's own scheme. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128
/** Visible ASCII (no space, no control character): opaque to the server, safe to log and quote. */
export const IDEMPOTENCY_KEY_PATTERN = `^[\\x21-\\x7e]{1,${MAX_IDEMPOTENCY_KEY_LENGTH}}$`

/** The optional `Idempotency-Key` request header of the routes that store what they are sent. */
export const IdempotencyHeaders = Type.Object({
  'Idempotency-Key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: MAX_IDEMPOTENCY_KEY_LENGTH,
    pattern: IDEMPOTENCY_KEY_PATTERN,
    description: 'a key naming this request (1..128 visible ASCII characters, e.g. a random UUID), the same on every retry of it. ' +
      'A repeat within IDEMPOTENCY_WINDOW_HOURS (24) on the same route and device gets the first answer again (same status and body, ' +
      'header `Idempotent-Replayed: true`) and stores nothing; the same key with a different request is a 422. ' +
      'Only a successful answer is recorded: after an error the key may be sent again.'
  }))
})

/** The answer a route taking {@link IdempotencyHeaders} adds to its error responses. */
export const idempotencyResponses = {
  422: ErrorResponse
} as const

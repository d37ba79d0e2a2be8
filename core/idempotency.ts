/**
 * `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): a client
 * that lost an answer (the socket died after the server committed) sends the
 * request again with the same key and gets the first answer back instead of
 * storing everything twice.
 *
 * A key is recorded in the same transaction as the data the request wrote
 * (SQLite's, or with DATABASE_URL PostgreSQL's: core/store-transaction.ts),
 * together with the answer, so no crash can leave data stored under a
 * key that is not recorded (a retry would store it again) nor a key recorded
 * for data that was rolled back. Keys are scoped per route and device, kept
 * for IDEMPOTENCY_WINDOW_HOURS and pruned off the request path.
 *
 * This module is the Fastify side: the header, the request's scope and
 * fingerprint, replays, the prune timer and `fastify.idempotency`. The
 * records live behind {@link IdempotencyKeyStore} (core/idempotency-store.ts),
 * which the plugin is given.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { Counter } from 'prom-client'
import { BadRequestError } from './errors.js'
import {
  IDEMPOTENCY_KEY_HEADER, type AnswerFormat, type IdempotencyKeyStore, type KeyedRequest, type KeyedWrite, type StoredAnswer
} from './idempotency-store.js'
import { IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH } from '../schemas/idempotency.js'

export { IDEMPOTENCY_KEY_HEADER }
export type { AnswerFormat, KeyedRequest, KeyedWrite, StoredAnswer }

/** Set to `true` on an answer that is the replay of an earlier one. */
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed'
const KEY_FORM = new RegExp(IDEMPOTENCY_KEY_PATTERN)

/** sha256 (hex) of a request's parts (bytes as they are, strings as text, anything else as JSON): what a repeat must match. */
export function fingerprintOf (...parts: unknown[]): string {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(typeof part === 'string' || part instanceof Uint8Array ? part : JSON.stringify(part) ?? 'undefined').update('\n')
  return hash.digest('hex')
}

/**
 * preValidation hook of a route that takes the header: a malformed key is a
 * 400 that says the rule, before the route's schema names it more tersely.
 * It also marks the route as one that records keys: only such routes check,
 * after their answer, whether the records outgrew IDEMPOTENCY_MAX_MB
 * ({@link idempotencyPlugin}). A callback hook: nothing to wait for, so no
 * promise per request.
 */
export function checkIdempotencyKey (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  try {
    idempotencyKeyOf(request)
  } catch (err) {
    done(err as Error)
    return
  }
  done()
}

/** Whether a route's preValidation hooks (one or many) include {@link checkIdempotencyKey}: it records keys. */
function takesIdempotencyKeys (preValidation: unknown): boolean {
  return Array.isArray(preValidation) ? preValidation.includes(checkIdempotencyKey) : preValidation === checkIdempotencyKey
}

/**
 * The request's `Idempotency-Key`, or undefined when it sent none.
 * @throws BadRequestError (400) when it is malformed or sent twice
 */
export function idempotencyKeyOf (request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key']
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !KEY_FORM.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 48 ? `${value.slice(0, 48)}…` : value) : `${value.length} values`
    throw new BadRequestError(`headers/${IDEMPOTENCY_KEY_HEADER} must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters ` +
      `(no spaces; a random UUID is ideal), got ${shown}`)
  }
  return value
}

/**
 * The keyed request of `request` (undefined without the header): scoped to the
 * route and `device`, fingerprinted by `parts` (by default the parsed body).
 */
export function keyedRequestOf (request: FastifyRequest, device: number | null | undefined, ...parts: unknown[]): KeyedRequest | undefined {
  const key = idempotencyKeyOf(request)
  if (key === undefined) return undefined
  const scope = `${request.method} ${request.routeOptions.url ?? request.url} device ${device ?? 'none'}`
  return { scope, key, fingerprint: fingerprintOf(...(parts.length ? parts : [request.body])) }
}

/** Sends a recorded answer again, as first sent, marked as a replay. */
export function sendReplay (reply: FastifyReply, answer: StoredAnswer): FastifyReply {
  reply.server.idempotency.replayed(reply.request)
  return reply.code(answer.status).header(IDEMPOTENT_REPLAYED_HEADER, 'true').type('application/json; charset=utf-8').send(answer.body)
}

/** Keys pruned per batch, each its own short transaction; a pass goes on, a batch per turn of the event loop, until none is left. */
const PRUNE_BATCH = 1000
const PRUNE_INTERVAL_MS = 60_000

/** `fastify.idempotency`: the store, and the count of replays. */
export interface IdempotencyService {
  store: IdempotencyKeyStore
  /** Counts a replay (by route) in doorsense_idempotent_replays_total. */
  replayed (request: FastifyRequest): void
  /**
   * One prune pass: every key past the window, then the oldest while the
   * answers take more than IDEMPOTENCY_MAX_MB; a batch per event-loop turn,
   * so that it keeps up with keys however fast they arrive. The timer runs
   * one a minute, and a write that passes the size bound starts one.
   * @returns keys deleted
   */
  prune (): Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Idempotency-Key records (see core/idempotency.ts; the store: core/idempotency-store.ts). */
    idempotency: IdempotencyService
  }
}

/**
 * Decorates `fastify.idempotency` over the key store it is given (core/app.ts
 * gives it the SQLite one, or with DATABASE_URL the PostgreSQL one), prunes expired keys
 * every minute and oversize ones as they pass the bound (unref'd, stopped on close).
 */
export const idempotencyPlugin = fp<{
  store: IdempotencyKeyStore
  /** Whether an answer past IDEMPOTENCY_MAX_MB starts a prune (false only in bench/overhead.bench.ts). */
  pruneAfterAnswers?: boolean
}>(async (app, { store, pruneAfterAnswers = true }) => {
  const replays = new Counter({
    name: 'doorsense_idempotent_replays_total',
    help: 'requests answered with the recorded answer of an earlier one with the same Idempotency-Key (a client retried after losing the answer), by route',
    labelNames: ['route'] as const,
    registers: [app.metrics]
  })
  let closed = false
  let pass: Promise<number> | undefined
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  const runPass = async (): Promise<number> => {
    let deleted = 0
    for (;;) {
      const step = await store.prune(PRUNE_BATCH)
      deleted += step
      if (step < PRUNE_BATCH || closed) break
      await turn()
    }
    for (;;) {
      // closing (another turn's doing) ends the pass too
      if (closed || !store.overSize) break
      const step = await store.pruneOverSize(PRUNE_BATCH)
      deleted += step
      if (step === 0) break
      await turn()
    }
    await store.recount()
    return deleted
  }
  // one pass at a time: a write that passes the bound while one runs is served by it
  const prune = (): Promise<number> => {
    pass ??= runPass().finally(() => { pass = undefined })
    return pass
  }
  app.decorate('idempotency', {
    store,
    replayed: (request: FastifyRequest) => replays.inc({ route: request.routeOptions.url ?? 'unmatched' }),
    prune
  })
  const timer = setInterval(() => { prune().catch((err: unknown) => app.log.warn({ err }, 'pruning Idempotency-Key records failed')) }, PRUNE_INTERVAL_MS)
  timer.unref()
  // a write that passes IDEMPOTENCY_MAX_MB starts a pass after its answer, off its request: checked on the
  // routes that record keys (they take the header through checkIdempotencyKey), not on every request
  if (pruneAfterAnswers) {
    const pruneIfOverSize = function pruneIfOverSize (_request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
      if (store.overSize && !pass && !closed) {
        setImmediate(() => { if (!closed) prune().catch((err: unknown) => app.log.warn({ err }, 'pruning Idempotency-Key records failed')) })
      }
      done()
    }
    app.addHook('onRoute', (route) => {
      if (!takesIdempotencyKeys(route.preValidation)) return
      // a new array: the route's options may share theirs with another route
      const onResponse = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse]
      route.onResponse = [...onResponse, pruneIfOverSize]
    })
  }
  app.addHook('onClose', async () => {
    closed = true
    clearInterval(timer)
    await pass
  })
}, { name: 'idempotency', fastify: '5.x', dependencies: ['storage', 'metrics'] })

/**
 * A route's answer through {@link IdempotencyKeyStore.once}: the recorded answer
 * when `keyed` was seen before, else `write`'s value (recorded with the key
 * when there is one). `write` gets the transaction the key is claimed in
 * (core/store-transaction.ts) for its stores to write in.
 */
export async function answerOnce<T> (reply: FastifyReply, keyed: KeyedRequest | undefined, write: KeyedWrite<T>): Promise<T | FastifyReply> {
  const outcome = await reply.server.idempotency.store.once(keyed, write, replyFormat(reply))
  return outcome.replayed ? sendReplay(reply, outcome.answer) : outcome.body
}

/** A 200 answer recorded as the route's response schema serializes it. */
export function replyFormat (reply: FastifyReply): AnswerFormat {
  return {
    status: 200,
    serialize: (body) => {
      const payload = reply.code(200).serialize(body)
      return typeof payload === 'string' ? payload : Buffer.from(payload as Uint8Array).toString('utf8')
    }
  }
}

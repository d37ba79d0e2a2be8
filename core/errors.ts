import createError, { type FastifyErrorConstructor } from '@fastify/error'
import type { FastifyError, FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify'
import FindMyWay from 'find-my-way'
import { STATUS_CODES } from 'node:http'
import { closestName } from './did-you-mean.js'
import type { RequestLogging } from './logger.js'
import { describeValue } from '../schemas/describe.js'

/*
 * Every error a route can throw, by code (like fastify's FST_ERR_*). Handlers
 * throw these; the one handler below shapes the body. `%s` is filled with the
 * specific message, which names the field or value that was wrong.
 */
export const BadRequestError: FastifyErrorConstructor = createError('DS_BAD_REQUEST', '%s', 400)
export const BadFrameError: FastifyErrorConstructor = createError('DS_BAD_FRAME', '%s', 400)
export const UnauthorizedError: FastifyErrorConstructor = createError('DS_UNAUTHORIZED', '%s', 401)
export const ForbiddenError: FastifyErrorConstructor = createError('DS_FORBIDDEN', '%s', 403)
export const NotFoundError: FastifyErrorConstructor = createError('DS_NOT_FOUND', '%s', 404)
export const ConflictError: FastifyErrorConstructor = createError('DS_CONFLICT', '%s', 409)
export const DuplicateImportError: FastifyErrorConstructor = createError('DS_DUPLICATE_IMPORT', '%s', 409)
export const IdempotencyKeyReusedError: FastifyErrorConstructor = createError('DS_IDEMPOTENCY_KEY_REUSED', '%s', 422)
export const TrainingBusyError: FastifyErrorConstructor = createError('DS_TRAINING_BUSY', '%s', 409)
export const TooFewSamplesError: FastifyErrorConstructor = createError('DS_TOO_FEW_SAMPLES', '%s', 400)
export const CalibrationRefusedError: FastifyErrorConstructor = createError('DS_CALIBRATION_REFUSED', '%s', 400)
export const CalibrationBusyError: FastifyErrorConstructor = createError('DS_CALIBRATION_BUSY', '%s', 409)
export const GateRefusedError: FastifyErrorConstructor = createError('DS_GATE_REFUSED', '%s', 409)
export const PayloadTooLargeError: FastifyErrorConstructor = createError('DS_PAYLOAD_TOO_LARGE', '%s', 413)
export const NoModelError: FastifyErrorConstructor = createError('DS_NO_MODEL', '%s', 503)
export const OverloadedError: FastifyErrorConstructor = createError('DS_OVERLOADED', '%s', 503)
export const UnavailableError: FastifyErrorConstructor = createError('DS_UNAVAILABLE', '%s', 503)
export const StorageFullError: FastifyErrorConstructor = createError('DS_STORAGE_FULL', '%s', 507)
/** The Host header names a host not in ALLOWED_HOSTS (core/allowed-hosts.ts): 421, the request was meant for another server. */
export const HostNotAllowedError: FastifyErrorConstructor = createError('DS_HOST_NOT_ALLOWED', '%s', 421)
/** A body of a type the route does not take: Fastify's own code, so that every 415 carries the same one (the message is {@link clearerMessage}'s). */
export const UnsupportedMediaTypeError: FastifyErrorConstructor = createError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 'Unsupported Media Type: %s', 415)
/** A request body in a Content-Encoding this server does not decode (core/content-encoding.ts). */
export const UnsupportedContentEncodingError: FastifyErrorConstructor = createError('DS_UNSUPPORTED_CONTENT_ENCODING', '%s', 415)
/** Load shedding (core/load-shedding.ts); the code is the one @fastify/under-pressure answered with, kept for clients that know it. */
export const UnderPressureError: FastifyErrorConstructor = createError('FST_UNDER_PRESSURE', '%s', 503)

/** What a 507 says: which limits can be full, that the write is gone, and what brings writing back. */
export const STORAGE_FULL_MESSAGE = 'storage is full (the database reached STORAGE_MAX_MB or the disk has no room left): nothing of this request was stored; ' +
  'reads still work, and writes resume once there is room ' +
  '(retention prunes old frames, POST /training/post/delete_samples removes samples, or raise STORAGE_MAX_MB)'

/**
 * Whether `err` is the database or the disk running out of room: better-sqlite3's
 * SQLITE_FULL (max_page_count reached, or no disk space for the file or its
 * write-ahead log) or a file write's ENOSPC.
 */
export function isStorageFull (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'SQLITE_FULL' || code === 'ENOSPC'
}

/**
 * What a route tells the caller to do about an error code, appended to the
 * message: services say what went wrong, only a route knows which route helps.
 */
export type ErrorHints = Partial<Record<string, string>>

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Per error code, the hint this route adds to the message (see {@link ErrorHints}). */
    errorHints?: ErrorHints
  }
}

/** Seconds a client is told to wait after a 503 it can retry. */
export const RETRY_AFTER_S = 1

/** The body of every 4xx/5xx answer. */
export interface ErrorBody {
  statusCode: number
  error: string
  message: string
  code?: string
}

/** Shapes an error into {@link ErrorBody}; 5xx messages are hidden unless they were thrown on purpose. */
export function toErrorBody (err: FastifyError, request?: FastifyRequest): ErrorBody {
  const statusCode = err.validation ? 400 : statusOf(err)
  // an accidental 5xx says nothing of its cause: not its message, nor a code like ENOENT or SQLITE_BUSY
  const hidden = statusCode >= 500 && !isDeliberate(err)
  let message = hidden ? 'Internal Server Error' : (request && clearerMessage(err, request)) ?? err.message
  const hint = !hidden && err.code ? request?.routeOptions.config?.errorHints?.[err.code] : undefined
  if (hint) message = `${message} (${hint})`
  const body: ErrorBody = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
  if (err.code && !hidden) body.code = err.code
  return body
}

/** Fastify's own 413 and 415 messages say neither the limit nor the type received: say both. */
function clearerMessage (err: FastifyError, request: FastifyRequest): string | undefined {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = request.routeOptions.bodyLimit
    return typeof limit === 'number' ? `request body is larger than this route's limit of ${limit} bytes` : undefined
  }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const got = JSON.stringify(request.headers['content-type'] ?? '')
    // a route that says what it consumes (the CSV import) is named with it
    const consumes = (request.routeOptions.schema as { consumes?: unknown } | undefined)?.consumes
    if (Array.isArray(consumes) && consumes.length > 0) {
      return `unsupported Content-Type ${got}: ${request.method} ${request.routeOptions.url} takes ${consumes.join(' or ')}`
    }
    return `unsupported Content-Type ${got} (JSON routes take application/json, the CSV import text/csv)`
  }
  return undefined
}

/** Whether the error was thrown on purpose: one of ours (DS_*) or Fastify's own (FST_*). */
function isDeliberate (err: FastifyError): boolean {
  return typeof err.code === 'string' && (err.code.startsWith('DS_') || err.code.startsWith('FST_'))
}

/** A 5xx that is an answer, not a bug: ours (no model yet, queue full) or under-pressure's load shedding. */
function isRefusal (err: FastifyError): boolean {
  return typeof err.code === 'string' && (err.code.startsWith('DS_') || err.code === 'FST_UNDER_PRESSURE')
}

/** The app's request-logging switch, when the app has one (a bare Fastify in a test has not). */
function requestLoggingOf (request: FastifyRequest): RequestLogging | undefined {
  return (request.server as unknown as { requestLogging?: RequestLogging }).requestLogging
}

function statusOf (err: FastifyError): number {
  const status = err.statusCode
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500
}

/** Installs the error and not-found handlers on the root instance. */
export function installErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler((thrown: FastifyError, request, reply) => {
    // a full database is an answer (507), not a bug: no stack, and a message saying what to do
    const err = isStorageFull(thrown) ? new StorageFullError(STORAGE_FULL_MESSAGE, { cause: thrown }) : thrown
    const body = toErrorBody(err, request)
    if (body.statusCode >= 500 && !isRefusal(err)) request.log.error({ err }, 'request failed')
    // a refused request (4xx, or a 503 such as "no model yet") is a request line, not a
    // bug: no stack, and silenced with the others by POST /debug/post/enable_logging
    else if (requestLoggingOf(request)?.enabled !== false) {
      const line = { statusCode: body.statusCode, code: body.code, message: body.message }
      if (body.statusCode >= 500) request.log.warn(line, 'request rejected')
      else request.log.info(line, 'request rejected')
    }
    // a refusal that knows when to come back says so (e.g. a door calibration in training)
    const retryAfter = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter))
    else if (body.statusCode === 503) reply.header('retry-after', String(RETRY_AFTER_S))
    return reply.code(body.statusCode).send(body)
  })
  // every route's path and methods, to tell a wrong method (405) from an unknown path (404)
  const routeTable = FindMyWay()
  const methods = new Set<string>()
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      methods.add(method)
      if (!routeTable.hasRoute(method as 'GET', route.url)) routeTable.on(method as 'GET', route.url, () => {})
    }
  })
  app.setNotFoundHandler((request, reply) => {
    const allowed = [...methods].filter((method) => routeTable.find(method as 'GET', request.url) !== null)
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      const body: ErrorBody = {
        statusCode: 405,
        error: 'Method Not Allowed',
        message: `${request.method} is not allowed on ${request.url.split('?')[0]}: it takes ${allowed.join(', ')}`,
        code: 'DS_METHOD_NOT_ALLOWED'
      }
      return reply.code(405).header('allow', allowed.join(', ')).send(body)
    }
    const body: ErrorBody = { statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}`, code: 'DS_NOT_FOUND' }
    return reply.code(404).send(body)
  })
}

/** Most unknown fields one message names. */
const MAX_UNKNOWN_NAMED = 5

/** An ajv error with `verbose: true`: the value and the schema that refused it. */
interface VerboseValidationError extends FastifySchemaValidationError {
  data?: unknown
  parentSchema?: { properties?: Record<string, unknown>, additionalProperties?: unknown }
}

/**
 * The fields of an object its schema does not know, each with the known
 * field it most likely meant: `"epoch" (did you mean "epochs"?)`, and the
 * known ones listed when a field has no close match. Undefined when none.
 */
function unknownFieldsOf (data: unknown, schema: VerboseValidationError['parentSchema']): string | undefined {
  if (schema?.additionalProperties !== false || data === null || typeof data !== 'object' || Array.isArray(data)) return undefined
  const known = Object.keys(schema.properties ?? {})
  const unknown = Object.keys(data).filter((key) => !Object.hasOwn(schema.properties ?? {}, key))
  if (unknown.length === 0) return undefined
  let unmatched = false
  const named = unknown.slice(0, MAX_UNKNOWN_NAMED).map((key) => {
    const meant = closestName(key, known)
    if (meant === undefined) unmatched = true
    return meant === undefined ? describeValue(key) : `${describeValue(key)} (did you mean "${meant}"?)`
  })
  if (unknown.length > MAX_UNKNOWN_NAMED) named.push(`and ${unknown.length - MAX_UNKNOWN_NAMED} more`)
  const takes = unmatched ? `; it takes ${known.length === 0 ? 'no fields' : known.join(', ')}` : ''
  return `unknown field${unknown.length === 1 ? '' : 's'} ${named.join(', ')}${takes}`
}

/**
 * Fastify's `schemaErrorFormatter`: ajv's errors as one message, `body/ID
 * must be <= 32767` as Fastify words them, except that unknown fields are
 * named (with a "did you mean"), also beside a missing required field, since
 * the one is often the other misspelt. Needs ajv's `verbose` (core/app.ts).
 */
export function formatValidationErrors (errors: FastifySchemaValidationError[], dataVar: string): Error {
  const messages = errors.map((error) => {
    const { data, parentSchema } = error as VerboseValidationError
    const at = dataVar + (error.instancePath || '')
    if (error.keyword === 'additionalProperties') {
      return `${at} has ${unknownFieldsOf(data, parentSchema) ?? `unknown field ${describeValue(error.params.additionalProperty)}`}`
    }
    // ajv says "must be equal to one of the allowed values": say which, and what came
    if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues)) {
      return `${at} must be one of ${error.params.allowedValues.map(String).join(', ')}, got ${describeValue(data)}`
    }
    const message = `${at} ${error.message ?? 'is not valid'}`
    const unknown = error.keyword === 'required' ? unknownFieldsOf(data, parentSchema) : undefined
    return unknown === undefined ? message : `${message}; it has ${unknown}`
  })
  return new Error(messages.join(', '))
}

import createError, { type FastifyErrorConstructor } from '@fastify/error'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import type { RequestLogging } from './logger.js'

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
export const TrainingBusyError: FastifyErrorConstructor = createError('DS_TRAINING_BUSY', '%s', 409)
export const TooFewSamplesError: FastifyErrorConstructor = createError('DS_TOO_FEW_SAMPLES', '%s', 400)
export const CalibrationRefusedError: FastifyErrorConstructor = createError('DS_CALIBRATION_REFUSED', '%s', 400)
export const CalibrationBusyError: FastifyErrorConstructor = createError('DS_CALIBRATION_BUSY', '%s', 409)
export const PayloadTooLargeError: FastifyErrorConstructor = createError('DS_PAYLOAD_TOO_LARGE', '%s', 413)
export const NoModelError: FastifyErrorConstructor = createError('DS_NO_MODEL', '%s', 503)
export const OverloadedError: FastifyErrorConstructor = createError('DS_OVERLOADED', '%s', 503)
export const UnavailableError: FastifyErrorConstructor = createError('DS_UNAVAILABLE', '%s', 503)

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
    return `unsupported Content-Type ${JSON.stringify(request.headers['content-type'] ?? '')} (JSON routes take application/json, the CSV import text/csv)`
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
  app.setErrorHandler((err: FastifyError, request, reply) => {
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
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = { statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}`, code: 'DS_NOT_FOUND' }
    return reply.code(404).send(body)
  })
}

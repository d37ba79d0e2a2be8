/**
 * The level of Fastify's own per-request lines. Apart from core/logger.ts so
 * that the CLIs importing the logger's paths do not load Fastify.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import type { RequestLogging } from './logger.js'

/** The levels the per-request lines may be logged at (LOG_REQUESTS). */
export type RequestLogLevel = 'debug' | 'info'

/**
 * Fastify's request lines ("incoming request", "request completed") at
 * `level` instead of always at info: at debug (the default) a server on
 * LOG_LEVEL=info writes nothing per successful request. A request that
 * errored is still logged at error; `logging.enabled` (POST
 * /debug/post/enable_logging) silences them all, as before.
 */
export class RequestLogController extends LogController {
  readonly #level: RequestLogLevel

  constructor (level: RequestLogLevel, logging: RequestLogging) {
    super({ disableRequestLogging: () => !logging.enabled })
    this.#level = level
  }

  override incomingRequest (request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return
    request.log[this.#level]({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else reply.log[this.#level]({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

/**
 * The level of Fastify's own per-request lines. Apart from core/logger.ts so
 * that the CLIs importing the logger's paths do not load Fastify.
 */
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import pino, { type Bindings, type ChildLoggerOptions } from 'pino'
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

/** pino's level values by name ('silent' above them all). */
const LEVEL_VALUES: Readonly<Record<string, number>> = { ...pino.levels.values, silent: Infinity }

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * A request's logger (`request.log`, `reply.log`) that makes pino's child —
 * the request id bound, at the route's own level where it has one — only once
 * a line is logged at a level it lets through. Fastify makes that child for
 * every request, and most requests log nothing (request lines are at debug on
 * an info log, LOG_REQUESTS): binding the id costs about a microsecond, a
 * route level (the liveness probe's `warn`) more, as pino rebuilds the
 * child's methods. What is logged is the same line pino's child writes.
 */
class RequestLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #child: FastifyBaseLogger | undefined

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  /** pino's child, made on first need. */
  #logger (): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  #log (level: LogLevel, args: unknown[]): void {
    if ((LEVEL_VALUES[level] ?? 0) < (LEVEL_VALUES[this.level] ?? 0)) return
    const logger = this.#logger()
    ;(logger[level] as (...line: unknown[]) => void).apply(logger, args)
  }

  get level (): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level
  }

  set level (level: string) {
    this.#logger().level = level
  }

  isLevelEnabled (level: string): boolean {
    return (LEVEL_VALUES[level] ?? Infinity) >= (LEVEL_VALUES[this.level] ?? 0)
  }

  fatal (...args: unknown[]): void { this.#log('fatal', args) }
  error (...args: unknown[]): void { this.#log('error', args) }
  warn (...args: unknown[]): void { this.#log('warn', args) }
  info (...args: unknown[]): void { this.#log('info', args) }
  debug (...args: unknown[]): void { this.#log('debug', args) }
  trace (...args: unknown[]): void { this.#log('trace', args) }
  silent (): void {}

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger().child(bindings, options)
  }

  bindings (): Bindings {
    return (this.#logger() as unknown as { bindings: () => Bindings }).bindings()
  }
}

/** Fastify's `childLoggerFactory`: each request's logger is a {@link RequestLogger}. */
export function requestLoggerFactory (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new RequestLogger(logger, bindings, options) as unknown as FastifyBaseLogger
}

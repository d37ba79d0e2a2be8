import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import sensible from '@fastify/sensible'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import { createLogger, type RequestLogging } from './logger.js'
import { RequestLogController, requestLoggerFactory } from './request-log.js'
import { formatValidationErrors, installErrorHandlers } from './errors.js'
import { acceptCompressedBodies } from './content-encoding.js'
import { installJsonBodyParser } from './json-body.js'
import { answerRouterRefusal, MAX_PATH_PARAMETER_LENGTH } from './router-errors.js'
import { strictInputKeywords } from './strict-input.js'
import { storagePlugin } from './storage-plugin.js'
import { postgresPlugin } from './postgres-plugin.js'
import { authPlugin } from './auth.js'
import { metricsPlugin } from './metrics.js'
import { idempotencyPlugin } from './idempotency.js'
import { sqliteIdempotencyStore } from './idempotency-store.js'
import { PostgresIdempotencyStore } from './idempotency-store-postgres.js'
import { openApiPlugin } from './openapi.js'
import { securityHeadersPlugin } from './security-headers.js'
import { loadSheddingPlugin } from './load-shedding.js'
import { allowedHostsPlugin } from './allowed-hosts.js'
import { clientAddressPlugin } from './client-address.js'
import { connectionLimits, installConnectionLimits, openFilesLimit } from './connection-limits.js'
import { APP_VERSION } from './project.js'
import debug from '../plugins/debug/index.js'
import rpiServers from '../plugins/rpi-servers/index.js'
import model from '../plugins/model/index.js'
import training from '../plugins/training/index.js'
import inference from '../plugins/inference/index.js'
import doors, { doorsApi } from '../plugins/doors/index.js'
import homeAssistant from '../plugins/home-assistant/index.js'
import cluster from '../plugins/cluster/index.js'
import docs from '../plugins/docs/index.js'
import dashboard from '../plugins/dashboard/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated, frozen settings (see core/config.ts). */
    config: Config
    /** Whether request/response lines are logged; POST /debug/post/enable_logging flips it. */
    requestLogging: RequestLogging
  }
}

/** The app instance type: Fastify with the TypeBox type provider. */
export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse<IncomingMessage>, FastifyBaseLogger, TypeBoxTypeProvider>

/** How often Node looks for requests past requestTimeout: a quarter of it, within 50 ms..1 s. */
export function connectionsCheckingMs (requestTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.round(requestTimeoutMs / 4)))
}

/**
 * What every request runs that bench/overhead.bench.ts leaves out, one at a
 * time, to measure what each costs: the security headers, the load-shedding
 * check, the request-duration histogram, the full-disk check on answers,
 * the Idempotency-Key prune check on answers, the per-request logger and
 * its lines, the JSON nesting check of bodies.
 */
export const PER_REQUEST_PARTS = [
  'security-headers', 'load-shedding', 'request-metrics', 'storage-full-check', 'idempotency-prune-check', 'request-log', 'json-depth'
] as const
export type PerRequestPart = typeof PER_REQUEST_PARTS[number]

/** How {@link buildApp} builds the app beyond its settings. */
export interface BuildOptions {
  /**
   * For bench/overhead.bench.ts only, never in production: the per-request
   * parts to leave out (the app is then less safe and less observable).
   */
  benchWithout?: readonly PerRequestPart[]
}

/**
 * Builds the whole service without listening: tests call `app.inject()` on it,
 * `bin/serve.ts` listens on it. The areas are registered here, explicitly and
 * in order, so this one screen shows the whole service.
 */
export async function buildApp (config: Config, options: BuildOptions = {}): Promise<App> {
  const without = new Set(options.benchWithout)
  const appLogger = await createLogger({
    level: config.LOG_LEVEL,
    dataDir: config.DATA_DIR,
    toFile: config.LOG_TO_FILE,
    retentionDays: config.LOG_RETENTION_DAYS
  })
  const requestLogging: RequestLogging = { enabled: true }
  const requestTimeoutMs = Math.max(1, Math.round(config.REQUEST_TIMEOUT_S * 1000))

  const app = Fastify({
    loggerInstance: appLogger.logger as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT,
    // a request's two lines at LOG_REQUESTS (debug by default: out of the info log)
    logController: without.has('request-log')
      ? new LogController({ disableRequestLogging: true })
      : new RequestLogController(config.LOG_REQUESTS, requestLogging),
    // each request's logger (its id bound) is made only when it logs a line its level lets through
    childLoggerFactory: without.has('request-log') ? (logger: FastifyBaseLogger) => logger : requestLoggerFactory,
    // the legacy clients post bodies whose numbers arrive as strings at times (IDs and names are
    // checked before that coercion: core/strict-input.ts); a field a schema does not take is refused
    // where it says additionalProperties: false (every new route), never silently dropped, and
    // verbose errors let the 400 name it with a "did you mean"
    ajv: { customOptions: { coerceTypes: 'array', allErrors: false, removeAdditional: false, verbose: true }, plugins: [strictInputKeywords] },
    schemaErrorFormatter: formatValidationErrors,
    // a bad percent-encoding or an over-long path parameter: a 400 from the error handler, not the router's own body
    frameworkErrors: answerRouterRefusal,
    routerOptions: { maxParamLength: MAX_PATH_PARAMETER_LENGTH },
    trustProxy: config.TRUST_PROXY,
    pluginTimeout: 60_000,
    // a client trickling its request (one byte every few seconds) is cut off with 408 instead of
    // holding a socket for ever; idle keep-alive sockets (the Pis') are a separate, longer limit
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: Math.max(1, Math.round(config.KEEP_ALIVE_TIMEOUT_S * 1000)),
    // Node enforces requestTimeout only when it is given at creation with a headersTimeout no longer
    // than it (Fastify sets it afterwards, which alone does nothing), and checks only every
    // connectionsCheckingInterval (30 s by default: up to twice the limit)
    http: {
      requestTimeout: requestTimeoutMs,
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      connectionsCheckingInterval: connectionsCheckingMs(requestTimeoutMs)
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('config', config)
  app.decorate('requestLogging', requestLogging)
  installErrorHandlers(app)
  installJsonBodyParser(app, without.has('json-depth') ? Infinity : undefined)
  // gzip and deflate bodies, decoded before any parser (a Pi on a weak link sends a fifth of the bytes)
  acceptCompressedBodies(app)
  // the log file is the last thing to close, so the areas can log while they stop
  app.addHook('onClose', async () => appLogger.close())

  try {
    await app.register(sensible)
    // CSP, nosniff, no framing: on every answer, set before any route or error handler runs
    if (!without.has('security-headers')) await app.register(securityHeadersPlugin)
    // a Host that is not this server's (DNS rebinding) is refused before anything else runs
    await app.register(allowedHostsPlugin, { allowedHosts: config.ALLOWED_HOSTS, trustProxy: config.TRUST_PROXY })
    // shed load with 503 + Retry-After before the process drowns (event loop stalled or memory near its limit)
    // (no event-loop-utilisation limit: a busy but healthy server sits near 1 under load)
    await app.register(loadSheddingPlugin, without.has('load-shedding')
      ? { maxEventLoopDelayMs: 0, maxHeapUsedBytes: 0 }
      : { maxEventLoopDelayMs: config.MAX_EVENT_LOOP_DELAY_MS, maxHeapUsedBytes: 4 * 1024 ** 3 })
    // a forwarded client address is an IP address before any route stores it
    await app.register(clientAddressPlugin, { trustProxy: config.TRUST_PROXY })
    // the metrics registry first: the storage and every area after it add their own metrics to it
    await app.register(metricsPlugin, { maxDevices: config.METRICS_MAX_DEVICES, requestDurations: !without.has('request-metrics') })
    await app.register(storagePlugin, {
      dataDir: config.DATA_DIR,
      maxMb: config.STORAGE_MAX_MB,
      reserveMb: config.STORAGE_RESERVE_MB,
      checkpointMs: config.WAL_CHECKPOINT_MS,
      noticeFullAnswers: !without.has('storage-full-check')
    })
    // DATABASE_URL: the stores that must be shared by a cluster's instances (docs/cluster.md); closes after them
    await app.register(postgresPlugin, { url: config.DATABASE_URL })
    await app.register(authPlugin, { dataDir: config.DATA_DIR, adminToken: config.ADMIN_TOKEN, deviceToken: config.DEVICE_TOKEN, host: config.HOST })
    // connections and event streams capped well below the open-files limit: a flood is turned away, not fatal
    installConnectionLimits(app, connectionLimits(config, openFilesLimit()?.soft))
    // the keys live in the app's SQLite database, in the same transactions as the data they guard; with
    // DATABASE_URL in PostgreSQL, shared by every instance (core/idempotency-store-postgres.ts)
    const idempotencyOptions = { windowMs: config.IDEMPOTENCY_WINDOW_HOURS * 3_600_000, maxBytes: config.IDEMPOTENCY_MAX_MB * 1024 * 1024 }
    const idempotencyStore = app.postgres
      ? await PostgresIdempotencyStore.open(app.postgres, idempotencyOptions)
      : sqliteIdempotencyStore(app.storage, idempotencyOptions)
    await app.register(idempotencyPlugin, { store: idempotencyStore, pruneAfterAnswers: !without.has('idempotency-prune-check') })
    await app.register(openApiPlugin, { version: APP_VERSION })

    // the model and the training area come before the areas that feed them frames
    await app.register(debug)
    await app.register(model)
    await app.register(training)
    await app.register(inference)
    // the doors (live state, announcements, streams) before the ingest that feeds them frames,
    // their /doors API once the Pi registry (rpi-servers) it lists exists
    await app.register(doors)
    // the cluster (NATS_URL) between the door states it feeds and shows and the ingest that publishes through it
    await app.register(cluster)
    await app.register(rpiServers)
    await app.register(doorsApi)
    await app.register(homeAssistant)
    await app.register(docs)
    await app.register(dashboard)
  } catch (err) {
    // a half-built app still holds the database and the log file's roll timer
    await app.close().catch(() => {})
    throw err
  }

  return app
}

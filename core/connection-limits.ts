/**
 * How many connections and event streams the server holds at once. Each
 * connection takes a file descriptor; a flood of idle ones (~20,600 from one
 * host) used to take them all, after which the database, the logs and Node
 * itself failed (the process exited within ~15 s). Capped well below the
 * open-files limit, a flood is turned away at the door (the kernel's accept,
 * then an immediate close) and what is already connected keeps being served.
 */
import { readFileSync } from 'node:fs'
import { Counter, Gauge } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { EventStreamSlots } from './event-stream.js'

/** The default cap never exceeds this: no door-sensing site needs more, and idle sockets cost memory (~1.5 KB each in Node). */
export const DEFAULT_MAX_CONNECTIONS_CEILING = 8192
/** The default event-stream cap never exceeds this (each stream may also buffer up to MAX_BUFFERED_BYTES for a slow reader). */
export const DEFAULT_MAX_EVENT_STREAMS_CEILING = 512
/** A warning about dropped connections is logged at most this often. */
const DROP_WARNING_INTERVAL_MS = 60_000

declare module 'fastify' {
  interface FastifyInstance {
    /** The event-stream slots every hub shares (MAX_EVENT_STREAMS; core/event-stream.ts). */
    eventStreamSlots: EventStreamSlots
  }
}

/** The open-files limit (soft, the one enforced; hard) of this process. */
export interface OpenFilesLimit {
  soft: number
  hard: number
}

/**
 * Reads "Max open files" from Linux's /proc/self/limits (`unlimited` is
 * Infinity); undefined where there is no /proc. Node raises the soft limit
 * to the hard one as it starts, so the soft limit read here is already as
 * high as this process may go.
 */
export function openFilesLimit (limitsText?: string): OpenFilesLimit | undefined {
  let text = limitsText
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8')
    } catch {
      return undefined
    }
  }
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text)
  if (!match) return undefined
  const value = (field: string): number => field === 'unlimited' ? Infinity : Number(field)
  const soft = value(match[1] as string)
  const hard = value(match[2] as string)
  return Number.isNaN(soft) || Number.isNaN(hard) ? undefined : { soft, hard }
}

/** The caps in force and where they came from. */
export interface ConnectionLimits {
  maxConnections: number
  maxEventStreams: number
  /** The soft open-files limit they were derived from, when known. */
  openFiles: number | undefined
  /** Why a configured cap is risky, if it is. */
  warnings: string[]
}

/**
 * The caps: MAX_CONNECTIONS, else half the open-files limit (the other half
 * is left to SQLite, the logs, the models, the worker threads and Node
 * itself), at most {@link DEFAULT_MAX_CONNECTIONS_CEILING}; MAX_EVENT_STREAMS,
 * else half the connections (so subscribers alone never take every socket
 * the Pis need), at most {@link DEFAULT_MAX_EVENT_STREAMS_CEILING}.
 */
export function connectionLimits (config: Pick<Config, 'MAX_CONNECTIONS' | 'MAX_EVENT_STREAMS'>, openFiles: number | undefined): ConnectionLimits {
  const half = openFiles === undefined ? Infinity : Math.floor(openFiles / 2)
  const maxConnections = config.MAX_CONNECTIONS ?? Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS_CEILING, half))
  const maxEventStreams = config.MAX_EVENT_STREAMS ?? Math.max(1, Math.min(DEFAULT_MAX_EVENT_STREAMS_CEILING, Math.floor(maxConnections / 2)))
  const warnings: string[] = []
  if (config.MAX_CONNECTIONS !== undefined && maxConnections > half) {
    warnings.push(`MAX_CONNECTIONS=${maxConnections} is more than half the open-files limit (${openFiles}): ` +
      'a connection flood can leave the database and the logs without file descriptors')
  }
  if (maxEventStreams >= maxConnections) {
    warnings.push(`MAX_EVENT_STREAMS=${maxEventStreams} is not below the connection cap (${maxConnections}): ` +
      'event-stream subscribers can take every connection the Pis need')
  }
  return { maxConnections, maxEventStreams, openFiles, warnings }
}

/**
 * Applies the caps to the app: `maxConnections` on its HTTP server (set
 * before listen; Node closes a connection past it as soon as it is
 * accepted), the shared event-stream slots as `eventStreamSlots`, a warning
 * (at most once a minute) and a counter for dropped connections, and a
 * server `error` listener so that a failed accept (EMFILE, should the
 * descriptors run out anyway) is logged rather than thrown as uncaught.
 * Needs `app.metrics`.
 */
export function installConnectionLimits (app: FastifyInstance, limits: ConnectionLimits): void {
  app.log.info({ openFilesLimit: limits.openFiles ?? 'unknown', maxConnections: limits.maxConnections, maxEventStreams: limits.maxEventStreams },
    `connections capped at ${limits.maxConnections}, event streams at ${limits.maxEventStreams} (open-files limit ${limits.openFiles ?? 'unknown'})`)
  for (const warning of limits.warnings) app.log.warn(warning)

  const slots = new EventStreamSlots(limits.maxEventStreams)
  app.decorate('eventStreamSlots', slots)
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_event_streams_open',
    help: 'server-sent-event streams open, all stream routes together (capped by MAX_EVENT_STREAMS)',
    registers: [app.metrics],
    collect () { this.set(slots.open) }
  })
  const dropped = new Counter({
    name: 'doorsense_connections_dropped_total',
    help: 'connections closed as soon as they were accepted because MAX_CONNECTIONS were open',
    registers: [app.metrics]
  })

  app.server.maxConnections = limits.maxConnections
  let droppedSinceWarning = 0
  let lastWarningAt = -Infinity
  app.server.on('drop', () => {
    dropped.inc()
    droppedSinceWarning++
    const now = performance.now()
    if (now - lastWarningAt < DROP_WARNING_INTERVAL_MS) return
    app.log.warn({ dropped: droppedSinceWarning, maxConnections: limits.maxConnections },
      `connection limit reached: dropped ${droppedSinceWarning} new connection(s) since the last warning (MAX_CONNECTIONS is ${limits.maxConnections})`)
    droppedSinceWarning = 0
    lastWarningAt = now
  })
  let lastAcceptErrorAt = -Infinity
  app.server.on('error', (err: NodeJS.ErrnoException) => {
    // listen errors are Fastify's to report (listen() rejects); an accept error without a listener would be uncaught
    if (err.syscall === 'listen') return
    const now = performance.now()
    if (now - lastAcceptErrorAt < DROP_WARNING_INTERVAL_MS) return
    lastAcceptErrorAt = now
    app.log.warn({ err }, 'the server could not accept a connection (logged at most once a minute)')
  })
}

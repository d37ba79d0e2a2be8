import envSchema from 'env-schema'
import { Type, type Static } from '@sinclair/typebox'
import { resolve } from 'node:path'

/**
 * Every setting doorsense reads from its environment. Keys are the env var
 * names themselves, so docs/configuration.md (a row per setting, checked by
 * test/docs/documents.test.ts), the deploy files and the code use one
 * vocabulary.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 20002, description: 'listen port (0 = any free port)' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'bind address' }),
  DATA_DIR: Type.String({ minLength: 1, default: './data', description: 'SQLite file, models, logs, pid file, admin token' }),
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'bearer token for admin routes; generated into DATA_DIR/admin-token when unset' })),
  DEVICE_TOKEN: Type.Optional(Type.String({ minLength: 8, description: 'bearer token the Pis must send on device routes; unset = open' })),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' }
  ),
  TRUST_PROXY: Type.Boolean({ default: false, description: 'take the client address from X-Forwarded-For (only behind a reverse proxy you run)' }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'mean event-loop delay (per second) above which requests get 503 + Retry-After; 0 = off'
  }),
  MAX_CONNECTIONS: Type.Optional(Type.Integer({
    minimum: 1,
    description: 'most TCP connections open at once (more are dropped as they arrive); default half the open-files limit, at most 8192'
  })),
  MAX_EVENT_STREAMS: Type.Optional(Type.Integer({
    minimum: 1,
    description: 'most server-sent-event streams open at once, all stream routes together (more get 503 + Retry-After); default half of ' +
      'MAX_CONNECTIONS, at most 512'
  })),
  ALLOWED_HOSTS: Type.Optional(Type.String({
    pattern: '^\\s*[A-Za-z0-9.:\\[\\]-]+(\\s*,\\s*[A-Za-z0-9.:\\[\\]-]+)*\\s*$',
    description: 'comma-separated host names the Host header may name (against DNS rebinding); IP addresses and localhost always pass; unset = any'
  })),
  LOG_TO_FILE: Type.Boolean({ default: true, description: 'also write a daily log file in DATA_DIR/logs' }),
  LOG_RETENTION_DAYS: Type.Integer({
    minimum: 0,
    maximum: 36500,
    default: 30,
    description: 'days of daily log files kept in DATA_DIR/logs besides today\'s; older ones are deleted at start and at each daily roll (0 = today\'s only)'
  }),
  LOG_REQUESTS: Type.Union([Type.Literal('debug'), Type.Literal('info')], {
    default: 'debug',
    description: 'level of the two lines each request gets ("incoming request", "request completed"): debug keeps them out of the ' +
      'default LOG_LEVEL=info log; info logs every request'
  }),
  TF_BACKEND: Type.Union([Type.Literal('auto'), Type.Literal('gpu'), Type.Literal('node'), Type.Literal('cpu')], { default: 'auto' }),
  STALE_AFTER_S: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 30, description: 'seconds of silence before a Pi leaves the live list' }),
  REQUEST_TIMEOUT_S: Type.Number({
    exclusiveMinimum: 0,
    maximum: 3600,
    default: 30,
    description: 'seconds a whole request (headers and body) may take to arrive; a slower client gets 408 and its socket is closed'
  }),
  KEEP_ALIVE_TIMEOUT_S: Type.Number({
    exclusiveMinimum: 0,
    maximum: 3600,
    default: 72,
    description: 'seconds an idle keep-alive socket stays open between requests (above the Pis\' 15 s keep-alives and a typical proxy\'s 60 s)'
  }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 1048576, description: 'largest JSON body in bytes (413 beyond)' }),
  IMPORT_BODY_LIMIT: Type.Integer({ minimum: 1024, default: 52428800, description: 'largest CSV import body in bytes' }),
  INFER_GATHER: Type.Union([Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')], {
    default: 'auto',
    description: 'whether a frame waits to share a model call with other requests\' frames (up to INFER_MAX_WAIT_MS): auto = on a native ' +
      'TensorFlow backend only; on the pure-JS backend a call costs too little to be worth a wait'
  }),
  INFER_MAX_BATCH: Type.Integer({ minimum: 1, maximum: 65536, default: 256, description: 'frames per model call' }),
  INFER_MAX_WAIT_MS: Type.Number({ minimum: 0, maximum: 1000, default: 2, description: 'longest a frame waits for its batch to fill' }),
  INFER_MAX_QUEUE: Type.Integer({ minimum: 1, default: 16384, description: 'frames waiting for the model before requests get 503' }),
  DOOR_WINDOW: Type.Integer({ minimum: 1, maximum: 1000, default: 15, description: 'predictions the door-state smoother averages' }),
  DOOR_HOLD: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'frames the smoothed evidence must hold before the door state changes' }),
  FRAME_RETENTION_HOURS: Type.Number({
    minimum: 0,
    maximum: 8760,
    default: 24,
    description: 'hours unlabelled frames are kept (labelled samples are kept for good); 0 = keep none past the next prune'
  }),
  IDEMPOTENCY_WINDOW_HOURS: Type.Number({
    exclusiveMinimum: 0,
    maximum: 8760,
    default: 24,
    description: 'hours an Idempotency-Key is remembered: a repeat within them gets the first answer and stores nothing'
  }),
  METRICS_MAX_DEVICES: Type.Integer({
    minimum: 0,
    maximum: 32768,
    default: 256,
    description: 'devices that get series of their own in /metrics (frames received and rejected, needs recalibration); every later one ' +
      'counts under device="other"'
  }),
  IDEMPOTENCY_MAX_MB: Type.Number({
    exclusiveMinimum: 0,
    default: 64,
    description: 'most MiB the recorded Idempotency-Key answers may take: past it the oldest keys are forgotten first, whatever their age'
  }),
  FRAME_RETENTION_PER_DEVICE: Type.Integer({ minimum: 0, default: 0, description: 'most unlabelled frames kept per device, newest first; 0 = no cap' }),
  REGISTRY_FLUSH_MS: Type.Integer({
    minimum: 0,
    maximum: 60000,
    default: 1000,
    description: 'how often the Pis\' last-seen times and keep-alive counts are written, in one transaction (a new Pi, a new name or ' +
      'address is written at once); 0 = every keep-alive at once'
  }),
  WAL_CHECKPOINT_MS: Type.Integer({
    minimum: 0,
    maximum: 60000,
    default: 1000,
    description: 'how often a worker thread checkpoints the SQLite write-ahead log, off the request path; 0 = SQLite checkpoints inside ' +
      'the commit that fills it'
  }),
  STORAGE_MAX_MB: Type.Number({
    minimum: 0,
    default: 0,
    description: 'largest the SQLite file may grow, in MiB (its write-ahead log comes on top); writes beyond get 507; 0 = no limit but the disk'
  }),
  STORAGE_RESERVE_MB: Type.Number({
    minimum: 0,
    maximum: 4096,
    default: 16,
    description: 'MiB of disk held back in DATA_DIR/doorsense.reserve and released when the disk is full, so that deletes and retention ' +
      'still run there; 0 = none'
  }),
  DOOR_CALIBRATION_FLOOR: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.9,
    description: 'open/closed balanced accuracy (on the held-out end of each calibrated angle) a door\'s own model must reach to take over the door'
  }),
  DOOR_NOVELTY_MAX_SCANS: Type.Number({
    minimum: 0,
    maximum: 1000,
    default: 10,
    description: 'most windows of one door\'s frames the global model\'s novelty check scans a second (it scans every 5th, 4 a second ' +
      'at 20 frames/s); a device sending faster is checked less often, so one flooding device cannot take the CPU; 0 = no bound'
  }),
  DOOR_EPOCHS: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 30,
    description: 'training epochs of each model a door calibration trains (its own, the held-out one, one per open angle for the ajar ' +
      'self-check); fewer calibrate faster and a little worse'
  }),
  MQTT_URL: Type.Optional(Type.String({
    pattern: '^mqtts?://[^\\s/]+',
    description: 'broker for Home Assistant (mqtt://host:1883 or mqtts://…); unset = no MQTT'
  })),
  MQTT_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  MQTT_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: 'never logged' })),
  MQTT_DISCOVERY_PREFIX: Type.String({ pattern: '^[^#+\\s]+$', default: 'homeassistant', description: 'Home Assistant\'s discovery prefix' }),
  MQTT_BASE_TOPIC: Type.String({
    pattern: '^[^#+\\s]+$',
    default: 'doorsense',
    description: 'topic prefix of doorsense\'s own states, availability and frames in'
  }),
  // default: BODY_LIMIT's default (the largest frames payload taken in) + 4 KiB of topic and header; 268435455 is MQTT's own ceiling
  MQTT_MAX_PAYLOAD: Type.Integer({
    minimum: 1024,
    maximum: 268435455,
    default: 1052672,
    description: 'largest MQTT message doorsense reads, in bytes (topic and header included); a larger one is skipped unread, never buffered'
  }),
  MQTT_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'MQTT client id; default doorsense-<random>' })),
  // the cluster (docs/cluster.md): unset = the embedded default, one process on SQLite
  DATABASE_URL: Type.Optional(Type.String({
    pattern: '^postgres(ql)?://',
    description: 'PostgreSQL for the stores that must be queried and kept (postgres://user@host:5432/db); unset = SQLite in DATA_DIR'
  })),
  NATS_URL: Type.Optional(Type.String({
    pattern: '^(nats|tls)://[^\\s/]+',
    description: 'NATS with JetStream (nats://host:4222): frames, partition ownership and door states shared by every instance; unset = one process'
  })),
  CLUSTER_NAME: Type.String({
    pattern: '^[A-Za-z0-9_-]{1,32}$',
    default: 'doorsense',
    description: 'prefix of every stream, consumer, bucket and subject, so several installations share one NATS'
  }),
  CLUSTER_PARTITIONS: Type.Integer({
    minimum: 1,
    maximum: 1024,
    default: 16,
    description: 'partitions the doors are spread over (device ID modulo this); each is owned by one instance at a time. Same on every instance'
  }),
  OWNER_TAKEOVER_S: Type.Number({
    minimum: 1,
    maximum: 300,
    default: 5,
    description: 'longest a dead instance\'s partitions stay unowned before another instance takes them'
  }),
  FRAME_STREAM_MAX_MB: Type.Number({
    minimum: 0,
    default: 1024,
    description: 'most MiB the cluster\'s frame stream keeps on the NATS server (oldest dropped first); 0 = bounded by FRAME_RETENTION_HOURS only'
  }),
  INSTANCE_URL: Type.Optional(Type.String({
    pattern: '^https?://',
    description: 'how other instances and GET /cluster name this instance (default http://HOST:PORT)'
  }))
})

/** The validated, frozen settings object passed down to every part of the app. */
export type Config = Readonly<Static<typeof ConfigSchema>>

/** Thrown when the environment does not satisfy {@link ConfigSchema}. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Validates `env` once, fills defaults, resolves DATA_DIR to an absolute path
 * and freezes the result. Nothing else in the app reads `process.env`.
 */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const data: Record<string, string> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]
    // an empty variable (FOO=) means "not set", as in most shells' intent
    if (value !== undefined && value !== '') data[key] = value
  }
  let parsed: Static<typeof ConfigSchema>
  try {
    // env-schema mutates the schema it is given, so hand it a copy
    parsed = envSchema<Static<typeof ConfigSchema>>({ schema: structuredClone(ConfigSchema), data, env: false })
  } catch (err) {
    throw new ConfigError(`invalid environment: ${describeEnvErrors(err as EnvSchemaError, data)}`)
  }
  return Object.freeze({ ...parsed, DATA_DIR: resolve(parsed.DATA_DIR) })
}

interface EnvSchemaError extends Error {
  errors?: Array<{ instancePath: string, keyword: string, message?: string }>
}

/** Variables whose value must never reach a log or a terminal, even when it is wrong. */
const SECRETS = new Set(['ADMIN_TOKEN', 'DEVICE_TOKEN', 'MQTT_PASSWORD'])

/** One line per bad variable, naming it, what it must be and what it was (secrets by length only). */
function describeEnvErrors (err: EnvSchemaError, data: Record<string, string>): string {
  if (!err.errors) return err.message
  const byVariable = new Map<string, string>()
  for (const error of err.errors) {
    const name = error.instancePath.replace(/^\//, '')
    if (error.keyword === 'const' || byVariable.has(name)) continue
    const schema = (ConfigSchema.properties as Record<string, { anyOf?: Array<{ const: string }>, type?: string }>)[name]
    const rule = schema?.anyOf
      ? `must be one of ${schema.anyOf.map((option) => option.const).join(', ')}`
      : schema?.type === 'boolean' ? 'must be true or false' : error.message
    const got = SECRETS.has(name) ? `${data[name]?.length ?? 0} characters` : JSON.stringify(data[name])
    byVariable.set(name, `${name} ${rule} (got ${got})`)
  }
  return [...byVariable.values()].join('; ')
}

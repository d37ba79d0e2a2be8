import fp from 'fastify-plugin'
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { ForbiddenError, UnauthorizedError } from './errors.js'
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js'

/** The OpenAPI `security` of a route guarded by `requireAdmin`. */
export const ADMIN_SECURITY: Array<Record<string, string[]>> = [{ admin: [] }]

/**
 * The OpenAPI `security` of a route guarded by `requireDevice`: the device
 * token or the admin token, or none at all (`{}`) while DEVICE_TOKEN is unset.
 */
export const DEVICE_SECURITY: Array<Record<string, string[]>> = [{ device: [] }, { admin: [] }, {}]

/** Where a generated admin token is kept when ADMIN_TOKEN is unset. */
export const ADMIN_TOKEN_FILE = 'admin-token'

export interface AuthOptions {
  dataDir: string
  adminToken?: string | undefined
  deviceToken?: string | undefined
  /** HOST, the bind address: beyond loopback, open device routes are worth a warning. */
  host?: string | undefined
}

/** Whether a bind address (HOST) reaches this machine only: 127.0.0.0/8, ::1 (also IPv4-mapped) or localhost. */
export function isLoopbackHost (host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (address === 'localhost' || address === '::1') return true
  const ipv4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address
  return isIP(ipv4) === 4 && ipv4.startsWith('127.')
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: the request must carry the admin bearer token (401 without, 403 with the device token). */
    requireAdmin: onRequestHookHandler
    /** onRequest hook: when DEVICE_TOKEN is set the request must carry it (the admin token also passes). */
    requireDevice: onRequestHookHandler
  }
}

/** Where the admin token came from; `tightenedFrom` is the mode a stored token file had when it let others read it (it is 0600 now). */
export interface ResolvedAdminToken {
  token: string
  source: 'env' | 'file' | 'generated'
  file?: string
  tightenedFrom?: number
}

/**
 * Returns the admin token: ADMIN_TOKEN if set, else the one stored in
 * DATA_DIR/admin-token, else a new random one written there with mode 0600.
 * A stored file that group or others may read (e.g. 0644) is set to 0600
 * before it is used, and the old mode is reported.
 */
export function resolveAdminToken (dataDir: string, configured?: string): ResolvedAdminToken {
  if (configured) return { token: configured, source: 'env' }
  const file = join(dataDir, ADMIN_TOKEN_FILE)
  try {
    const mode = statSync(file).mode & 0o777
    let tightenedFrom: number | undefined
    if ((mode & ~PRIVATE_FILE_MODE) !== 0) {
      chmodSync(file, PRIVATE_FILE_MODE)
      tightenedFrom = mode
    }
    const stored = readFileSync(file, 'utf8').trim()
    if (stored.length >= 16) {
      return tightenedFrom === undefined ? { token: stored, source: 'file', file } : { token: stored, source: 'file', file, tightenedFrom }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE })
  const token = randomBytes(32).toString('base64url')
  writeFileSync(file, token + '\n', { mode: PRIVATE_FILE_MODE })
  chmodSync(file, PRIVATE_FILE_MODE) // the mode above is masked by umask and ignored if the file existed
  return { token, source: 'generated', file }
}

/** Constant-time comparison of two tokens of any length (both are hashed first). */
export function tokensEqual (given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

/** 420 → "0644". */
function modeText (mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0')
}

function bearerOf (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (!header) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match ? match[1] : ''
}

/** Decorates `requireAdmin` and `requireDevice`, the two guards routes put in `onRequest`. */
export const authPlugin = fp<AuthOptions>(async (app, options) => {
  const admin = resolveAdminToken(options.dataDir, options.adminToken)
  // a first start without ADMIN_TOKEN is the usual case, not a problem: info, with where to read it
  if (admin.source === 'generated') app.log.info({ file: admin.file }, 'ADMIN_TOKEN is unset: generated an admin token into this file (mode 0600)')
  else if (admin.source === 'file') app.log.info({ file: admin.file }, 'ADMIN_TOKEN is unset: using the admin token stored in this file')
  if (admin.tightenedFrom !== undefined) {
    app.log.warn({ file: admin.file, mode: modeText(admin.tightenedFrom), now: modeText(PRIVATE_FILE_MODE) },
      'the admin token file was readable by other users: its mode is now 0600 (change the token if they may have read it)')
  }
  const deviceToken = options.deviceToken
  if (!deviceToken && options.host !== undefined && !isLoopbackHost(options.host)) {
    app.log.warn({ host: options.host },
      `HOST=${options.host} is not a loopback address and DEVICE_TOKEN is unset: ` +
      'the device routes (/ml/post/*, /server/post/*) are open to anyone on the network, ' +
      'who can post frames and register Pis. Set DEVICE_TOKEN (8+ characters, e.g. DEVICE_TOKEN=$(openssl rand -base64 24)) ' +
      'in the server\'s environment and give the same value to each Pi (DEVICE_TOKEN or --token)')
  }

  app.decorate('requireAdmin', async function requireAdmin (request: FastifyRequest) {
    const token = bearerOf(request)
    if (token === undefined) throw new UnauthorizedError('missing Authorization header: admin routes need "Authorization: Bearer <ADMIN_TOKEN>"')
    if (token === '') throw new UnauthorizedError('malformed Authorization header: expected "Bearer <token>"')
    if (tokensEqual(token, admin.token)) return
    if (deviceToken && tokensEqual(token, deviceToken)) throw new ForbiddenError('the device token does not grant admin routes')
    throw new UnauthorizedError('wrong admin token')
  })

  app.decorate('requireDevice', async function requireDevice (request: FastifyRequest) {
    if (!deviceToken) return
    const token = bearerOf(request)
    if (token === undefined) throw new UnauthorizedError('missing Authorization header: device routes need "Authorization: Bearer <DEVICE_TOKEN>"')
    if (token === '') throw new UnauthorizedError('malformed Authorization header: expected "Bearer <token>"')
    if (tokensEqual(token, deviceToken) || tokensEqual(token, admin.token)) return
    throw new UnauthorizedError('wrong device token')
  })
}, { name: 'auth', fastify: '5.x' })

/**
 * Compressed request bodies: `Content-Encoding: gzip`, `deflate` or `br` on any
 * route that takes a body. A Pi on a weak link sends a frame batch in a
 * fifth of its bytes; the route sees the body as if it had come plain
 * (same parsing, same validation, same Idempotency-Key fingerprint).
 *
 * The body limits hold on the decoded bytes (Fastify counts what the
 * decoder gives: a small body that inflates past the limit is a 413, and
 * the decoder stops there). A coding the server does not apply is a 415
 * before anything is read: taken as it came, gzip bytes could read as
 * frames. Answers to body routes carry `Accept-Encoding: gzip, deflate, br`
 * (RFC 7694): how a client learns that compressing is worth it here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { Readable, Transform } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { UnsupportedContentEncodingError } from './errors.js'

/** The codings a request body may carry, as answers announce them. */
export const REQUEST_ENCODINGS = 'gzip, deflate, br'

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress
}

/** What Fastify reads a preParsing stream's compressed length from (to match it against Content-Length). */
type DecodedStream = Transform & { receivedEncodedLength: number }

/** A route's preParsing hook: the payload as it came, or its decoder. */
function decodeRequestBody (request: FastifyRequest, reply: FastifyReply, payload: Readable, done: (err: Error | null, payload?: Readable) => void): void {
  reply.header('accept-encoding', REQUEST_ENCODINGS)
  const coding = request.headers['content-encoding']
  if (coding === undefined) return done(null, payload)
  const name = coding.trim().toLowerCase()
  if (name === '' || name === 'identity') return done(null, payload)
  const createDecoder = DECODERS[name]
  if (createDecoder === undefined) {
    return done(new UnsupportedContentEncodingError(`Content-Encoding ${coding}: bodies here may be sent as ${REQUEST_ENCODINGS}, or plain`))
  }
  const decoder = createDecoder() as DecodedStream
  decoder.receivedEncodedLength = 0
  payload.on('data', (chunk: Buffer) => { decoder.receivedEncodedLength += chunk.length })
  payload.on('error', (err) => decoder.destroy(err))
  // runs before the body reader's own listener, so its 400 names the coding
  decoder.on('error', (err: Error & { statusCode?: number }) => {
    err.message = `the body is not valid ${name} (Content-Encoding: ${coding}): ${err.message}`
    err.statusCode = 400
  })
  // past the body limit Fastify answers 413 and stops listening: the rest is not inflated
  reply.raw.once('close', () => { payload.unpipe(decoder); decoder.destroy() })
  done(null, payload.pipe(decoder))
}

/** Whether a route reads a request body (the methods Fastify parses one for). */
function takesBody (route: RouteOptions): boolean {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  return methods.some((method) => method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS')
}

/**
 * Gives every route registered after this call that takes a body the
 * decoding of compressed bodies (routes without one pay nothing).
 */
export function acceptCompressedBodies (app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!takesBody(route)) return
    const own = route.preParsing === undefined ? [] : Array.isArray(route.preParsing) ? route.preParsing : [route.preParsing]
    route.preParsing = [decodeRequestBody, ...own]
  })
}

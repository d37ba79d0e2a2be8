import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { DEVICE_SECURITY } from '../../core/auth.js'
import { acceptOctetStream, binaryBodyOf, bodyParameter, documentOctetStreamBody, OCTET_STREAM, refuseBodyParameters } from '../../core/binary-body.js'
import { BadFrameError, BadRequestError } from '../../core/errors.js'
import { answerOnce, checkIdempotencyKey, keyedRequestOf } from '../../core/idempotency.js'
import { decodeBinaryFrames, FrameError, type BinaryLayout } from '../../domain/frames.js'
import { errorResponses } from '../../schemas/common.js'
import { idempotencyResponses } from '../../schemas/idempotency.js'
import {
  binaryBatchHeaders, binaryBatchQuery, BinaryFramesBody, FRAME_BATCH_TYPES, FramesBody, FramesReceipt, KeepAliveBody, KnownDeviceList,
  LiveDevice, LiveDeviceList, MAX_FRAMES_PER_REQUEST, rpiServerRouteDescriptions
} from '../../schemas/rpi-servers.js'
import type { FrameBatch, FrameIngest } from './ingest.js'
import type { DeviceRegistry } from './registry.js'

export interface RpiServerRouteOptions {
  registry: DeviceRegistry
  ingest: FrameIngest
  bodyLimit: number
}

const tags = ['rpi-servers']
const device = DEVICE_SECURITY

/**
 * The original accepted the keep-alive object JSON-encoded as a string (a Pi
 * posting `json=json.dumps(…)`): decode it here, so the schema validates the
 * same object either way.
 */
async function decodeStringBody (request: FastifyRequest): Promise<void> {
  if (typeof request.body !== 'string') return
  let decoded: unknown
  try {
    decoded = JSON.parse(request.body)
  } catch {
    throw new BadRequestError('body is a string but not a JSON-encoded {"NAME", "ID"} object')
  }
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
    throw new BadRequestError('body is a string but does not encode a {"NAME", "ID"} object')
  }
  request.body = decoded
}

/** Where a binary batch names its device and layout: the query string, or a header. */
const DEVICE_PARAMETER = { query: 'ID', header: 'X-Device-Id' }
const LAYOUT_PARAMETER = { query: 'layout', header: 'X-Frame-Layout' }

/**
 * The device and frames of a POST /server/post/frames request: the JSON body's,
 * or a binary body's, decoded here (its device and layout from the query or
 * the headers). Nothing is stored yet: a bad request is refused before.
 * @throws BadRequestError (400) for a device or layout missing, or given with a JSON body
 * @throws BadFrameError (400) for a binary body that is empty, not whole frames, or more frames than one batch may hold
 */
function framesOf (request: FastifyRequest): { device: number, frames: FrameBatch, fingerprint: unknown[] } {
  const body = binaryBodyOf(request)
  if (body === undefined) {
    refuseBodyParameters(request, [DEVICE_PARAMETER, LAYOUT_PARAMETER], 'a JSON body gives its ID in the body, and each frame in any encoding')
    // validated against FramesBody as application/json; no body at all is the one thing that reaches here unvalidated
    if (request.body === undefined || request.body === null) {
      throw new BadRequestError(`body is missing: a JSON {ID, frames} object, or frames as ${OCTET_STREAM}`)
    }
    const { ID, frames } = request.body as FramesBody
    return { device: ID, frames, fingerprint: [] }
  }
  const device = bodyParameter(request, DEVICE_PARAMETER) as number | undefined
  const layout = bodyParameter(request, LAYOUT_PARAMETER) as BinaryLayout | undefined
  if (device === undefined) throw new BadRequestError(`an ${OCTET_STREAM} body needs its device: ?ID=<0..32767> (or the X-Device-Id header)`)
  if (layout === undefined) throw new BadRequestError(`an ${OCTET_STREAM} body needs its layout: ?layout=pi108 or esp128 (or the X-Frame-Layout header)`)
  try {
    const decoded = decodeBinaryFrames(body, layout, { maxFrames: MAX_FRAMES_PER_REQUEST })
    return { device, frames: { decoded }, fingerprint: [OCTET_STREAM, layout, body] }
  } catch (err) {
    if (err instanceof FrameError) throw new BadFrameError(err.message)
    throw err
  }
}

/** Keep-alives, the live list, the known list, and frame ingest. */
export const rpiServerRoutes: FastifyPluginAsyncTypebox<RpiServerRouteOptions> = async (app, { registry, ingest, bodyLimit }) => {
  // these bodies are JSON (a batch of frames may be bytes too): a text/plain body gets 415
  app.removeContentTypeParser('text/plain')
  acceptOctetStream(app)

  app.post('/server/post/keep_alive', {
    onRequest: app.requireDevice,
    // ID and NAME are checked as sent, before ajv's coercion (schemas/common.ts decimalInteger, printableText)
    preValidation: decodeStringBody,
    schema: {
      tags,
      summary: 'A Pi says it is alive; its address is recorded (legacy)',
      security: device,
      body: KeepAliveBody,
      response: { 200: LiveDevice, ...errorResponses }
    }
  }, async (request) => {
    const { device: listed, cameLive } = registry.keepAlive({ id: request.body.ID, name: request.body.NAME, addr: request.ip })
    if (cameLive) request.log.info({ device: listed }, 'Pi is live')
    return listed
  })

  app.get('/app/get/list_of_servers', {
    schema: {
      tags,
      summary: 'The live Pis: a keep-alive within STALE_AFTER_S (legacy)',
      response: { 200: LiveDeviceList }
    }
  }, async () => registry.live())

  app.get('/app/get/known_servers', {
    schema: {
      tags,
      summary: 'Every Pi ever heard from, kept across restarts, with whether it is live',
      response: { 200: KnownDeviceList }
    }
  }, async () => registry.known())

  app.post('/server/post/frames', {
    onRequest: app.requireDevice,
    preValidation: checkIdempotencyKey,
    bodyLimit,
    // the binary body is described in the document only: the route validates its length, not its bytes
    config: { swaggerTransform: documentOctetStreamBody(BinaryFramesBody) },
    schema: {
      tags,
      summary: 'A batch of a Pi\'s frames, any accepted encoding, as JSON or as bytes; bad frames are rejected one by one',
      security: device,
      description: rpiServerRouteDescriptions.frames,
      consumes: [...FRAME_BATCH_TYPES],
      headers: binaryBatchHeaders('the Pi ID of a binary body'),
      querystring: binaryBatchQuery('the Pi ID of a binary body'),
      body: { content: { 'application/json': { schema: FramesBody } } },
      response: { 200: FramesReceipt, ...errorResponses, ...idempotencyResponses }
    }
  }, async (request, reply) => {
    const { device, frames, fingerprint } = framesOf(request)
    // a binary batch is fingerprinted by its layout and the digest of its bytes (a JSON one by its parsed body): the
    // same frames sent once as JSON and once as bytes under one key are two different requests (422)
    const keyed = keyedRequestOf(request, device, ...fingerprint)
    if (!ingest.clustered) return await answerOnce(reply, keyed, (tx) => ingest.ingest(device, frames, request.ip, tx))
    // in a cluster JetStream stores a batch once per Nats-Msg-Id, whichever instance a retry reaches: the key and the
    // body's digest, so a key reused with other frames stores them rather than dropping them as a repeat
    return ingest.publish(device, frames, request.ip, keyed && `${device}/${keyed.key}/${keyed.fingerprint}`)
  })
}

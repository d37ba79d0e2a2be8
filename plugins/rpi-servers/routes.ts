import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { DEVICE_SECURITY } from '../../core/auth.js'
import { BadRequestError } from '../../core/errors.js'
import { answerOnce, checkIdempotencyKey, keyedRequestOf } from '../../core/idempotency.js'
import { errorResponses } from '../../schemas/common.js'
import { IdempotencyHeaders, idempotencyResponses } from '../../schemas/idempotency.js'
import {
  FramesBody, FramesReceipt, KeepAliveBody, KnownDeviceList, LiveDevice, LiveDeviceList, rpiServerRouteDescriptions
} from '../../schemas/rpi-servers.js'
import type { FrameIngest } from './ingest.js'
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

/** Keep-alives, the live list, the known list, and frame ingest. */
export const rpiServerRoutes: FastifyPluginAsyncTypebox<RpiServerRouteOptions> = async (app, { registry, ingest, bodyLimit }) => {
  // these bodies are JSON: a text/plain body gets 415
  app.removeContentTypeParser('text/plain')

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
    schema: {
      tags,
      summary: 'A batch of a Pi\'s frames, any accepted encoding; bad frames are rejected one by one',
      security: device,
      description: rpiServerRouteDescriptions.frames,
      headers: IdempotencyHeaders,
      body: FramesBody,
      response: { 200: FramesReceipt, ...errorResponses, ...idempotencyResponses }
    }
  }, async (request, reply) => {
    const { ID: device, frames } = request.body
    if (!ingest.clustered) return await answerOnce(reply, keyedRequestOf(request, device), (tx) => ingest.ingest(device, frames, request.ip, tx))
    // in a cluster JetStream stores a batch once per Nats-Msg-Id, whichever instance a retry reaches: the key and the
    // body's digest, so a key reused with other frames stores them rather than dropping them as a repeat
    const keyed = keyedRequestOf(request, device)
    return ingest.publish(device, frames, request.ip, keyed && `${device}/${keyed.key}/${keyed.fingerprint}`)
  })
}

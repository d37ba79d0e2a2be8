import type { FastifyError, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DEVICE_SECURITY } from '../../core/auth.js'
import { acceptOctetStream, binaryBodyOf, bodyParameter, documentOctetStreamBody, OCTET_STREAM, refuseBodyParameters } from '../../core/binary-body.js'
import { BadFrameError, BadRequestError, isStorageFull, NoModelError, NotFoundError } from '../../core/errors.js'
import {
  checkIdempotencyKey, keyedRequestOf, replyFormat, sendReplay,
  type AnswerFormat, type KeyedRequest, type StoredAnswer
} from '../../core/idempotency.js'
import { decodeBinaryFrames, FrameError, parseFrame, type BinaryLayout } from '../../domain/frames.js'
import { errorResponses } from '../../schemas/common.js'
import { idempotencyResponses } from '../../schemas/idempotency.js'
import { binaryBatchHeaders, binaryBatchQuery, BinaryFramesBody, FRAME_BATCH_TYPES } from '../../schemas/rpi-servers.js'
import { OWN_TRANSACTION, thenMaybe } from '../../core/store-transaction.js'
import type { ClassifiedFrames } from '../../schemas/inference.js'
import {
  BatchRequest, BatchResponse, InferenceRequest, InferenceResult, MAX_BATCH_FRAMES, mlRouteDescriptions,
  type BatchFrameResult
} from '../../schemas/inference.js'

/** A batch of MAX_BATCH_FRAMES frames at full float precision as text runs to ~10 MB. */
const BATCH_BODY_LIMIT = 16 * 1024 * 1024

/** Where a model comes from, said on every 503 "no model yet". */
const NO_MODEL_HINT = { DS_NO_MODEL: 'train one with POST /training/post/train' }

/** Where a binary batch names its device and layout: the query string, or a header. */
const DEVICE_PARAMETER = { query: 'ID', header: 'X-Device-Id' }
const LAYOUT_PARAMETER = { query: 'layout', header: 'X-Frame-Layout' }

/** A batch's frames as read: the readable ones, and one result slot per frame sent (an error where it could not be read). */
interface ReadBatch {
  device: number | undefined
  /** Frames sent. */
  count: number
  frames: Float32Array[]
  results: BatchFrameResult[]
  /** Position of each readable frame; undefined while every frame was readable. */
  positions: number[] | undefined
  /** What a repeat under the same Idempotency-Key must match: a binary body's type, layout and bytes; none for JSON (its parsed body). */
  fingerprint: unknown[]
}

/**
 * The frames of a POST /ml/post/batch request: the JSON body's, each read on
 * its own, or a binary body's (its device and layout from the query or the
 * headers), every one readable.
 * @throws BadRequestError (400) for a layout missing, or a device or layout given with a JSON body
 * @throws BadFrameError (400) when no frame can be read: a binary body empty, not whole frames, or too many; JSON frames none readable
 */
function readBatch (request: FastifyRequest): ReadBatch {
  const binary = binaryBodyOf(request)
  if (binary !== undefined) {
    const device = bodyParameter(request, DEVICE_PARAMETER) as number | undefined
    const layout = bodyParameter(request, LAYOUT_PARAMETER) as BinaryLayout | undefined
    if (layout === undefined) throw new BadRequestError(`an ${OCTET_STREAM} body needs its layout: ?layout=pi108 or esp128 (or the X-Frame-Layout header)`)
    let frames: Float32Array[]
    try {
      frames = decodeBinaryFrames(binary, layout, { maxFrames: MAX_BATCH_FRAMES }).map((frame) => frame.features)
    } catch (err) {
      if (err instanceof FrameError) throw new BadFrameError(err.message)
      throw err
    }
    return { device, count: frames.length, frames, results: new Array(frames.length), positions: undefined, fingerprint: [OCTET_STREAM, layout, binary] }
  }
  refuseBodyParameters(request, [DEVICE_PARAMETER, LAYOUT_PARAMETER], 'a JSON body gives its ID in the body, and each frame in any encoding')
  // validated against BatchRequest as application/json; no body at all is the one thing that reaches here unvalidated
  if (request.body === undefined || request.body === null) {
    throw new BadRequestError(`body is missing: a JSON {ID, frames} object, or frames as ${OCTET_STREAM}`)
  }
  const { frames: inputs, ID: device } = request.body as BatchRequest
  const results: BatchFrameResult[] = new Array(inputs.length)
  const frames: Float32Array[] = []
  // positions of the readable frames, only needed once a frame was rejected
  let positions: number[] | undefined
  for (let i = 0; i < inputs.length; i++) {
    try {
      const frame = parseFrame(inputs[i])
      positions?.push(i)
      frames.push(frame)
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      positions ??= Array.from({ length: frames.length }, (_, k) => k)
      results[i] = { error: `frame ${i}: ${err.message}` }
    }
  }
  if (frames.length === 0) throw new BadFrameError(`none of the ${inputs.length} frames could be read; ${results[0]?.error ?? ''}`)
  return { device, count: inputs.length, frames, results, positions, fingerprint: [] }
}

/** The /ml routes: legacy single-frame inference, batch classification, the latest prediction (the door states are plugins/doors'). */
export const inferenceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // a batch may come as bytes (raw frames back to back); every other route here answers such a body 415
  acceptOctetStream(app)

  /**
   * Queues frames for the model and, when a capture session is open for the
   * device, stores them as labelled samples too. Capture happens only once
   * the frames were accepted into the queue, so a 503 "queue full" (which the
   * client retries) never stores a frame twice.
   */
  async function classifyAndCapture (frames: Float32Array[], device: number | undefined): Promise<{ classified: ClassifiedFrames, captured: number }> {
    const pending = app.inference.classify(frames, device)
    // awaited below, or answered by the capture's error instead; handled now, since the capture may await
    pending.catch(() => {})
    const captured = device === undefined ? 0 : await app.captures.recordWithin(OWN_TRANSACTION, device, frames, 'inference')
    try {
      return { classified: await pending, captured }
    } catch (err) {
      throw sayWhatWasCaptured(err, captured)
    }
  }

  /**
   * Frames by these routes make their device known and live, as frames by
   * POST /server/post/frames do: its door appears in /doors (and in Home
   * Assistant). A full database must not fail the answer for it.
   */
  function seen (device: number | undefined, addr: string): void {
    if (device === undefined) return
    try {
      app.devices.touch(device, addr)
    } catch (err) {
      if (!isStorageFull(err)) throw err
      app.log.warn({ device, err }, 'storage is full: could not record when this Pi was last seen')
    }
  }

  /** A 503 "no model" after frames were captured says they were stored all the same. */
  function sayWhatWasCaptured (err: unknown, captured: number): unknown {
    if (captured > 0 && (err as FastifyError).code === 'DS_NO_MODEL') {
      return new NoModelError(`${(err as Error).message} (the ${captured} frame(s) were stored as labelled samples of the open capture session)`)
    }
    return err
  }

  /**
   * {@link classifyAndCapture} under an Idempotency-Key: the capture commits
   * in one transaction with the key, and the answer is recorded once the
   * model gave it — as a digest (what was captured): a repeat gets the answer
   * rebuilt by classifying the frames again with the active model, without
   * touching the door state or capturing again; one that comes while the
   * first is still being classified waits for it; one whose first attempt
   * wrote but never answered (a crash, no model) is classified again without
   * capturing.
   */
  async function classifyAndCaptureOnce<T> (
    keyed: KeyedRequest,
    format: AnswerFormat,
    frames: Float32Array[],
    device: number | undefined,
    answer: (classified: ClassifiedFrames, captured: number) => T
  ): Promise<{ body: T } | { replay: StoredAnswer }> {
    const store = app.idempotency.store
    // the answer is the model's classification of the frames (up to ~1 MB for a full batch): only
    // what it cannot be computed again from is kept, the count captured
    const rebuild = (answered: StoredAnswer): StoredAnswer => {
      if (!answered.derived) return answered
      const { captured } = JSON.parse(answered.body) as { captured: number }
      const body = answer({ ...app.model.predict(frames), device, at: Date.now() }, captured)
      return { status: answered.status, body: (format.serialize ?? JSON.stringify)(body), derived: false }
    }
    for (;;) {
      let pending: Promise<ClassifiedFrames> | undefined
      const begun = await store.begin(keyed, (tx) => {
        pending = app.inference.classify(frames, device)
        pending.catch(() => {}) // awaited below, or answered by the error that rolls the claim back
        return device === undefined ? { captured: 0 } : thenMaybe(app.captures.recordWithin(tx, device, frames, 'inference'), (captured) => ({ captured }))
      })
      if (begun.kind === 'replay') return { replay: rebuild(begun.answer) }
      if (begun.kind === 'wait') {
        await begun.settled
        continue
      }
      const { captured } = begun.partial
      try {
        const classified = await (begun.resumed ? app.inference.classify(frames, device) : pending as Promise<ClassifiedFrames>)
        const body = answer(classified, captured)
        await store.finish(keyed, body, format, { captured })
        return { body }
      } catch (err) {
        // nothing captured: forget the key, so a retry starts afresh (a capture may have opened since)
        await store.abandon(keyed, captured === 0)
        throw sayWhatWasCaptured(err, captured)
      }
    }
  }

  app.post('/ml/post/inference', {
    config: { errorHints: NO_MODEL_HINT },
    onRequest: app.requireDevice,
    schema: {
      summary: 'Classify one frame (legacy)',
      security: DEVICE_SECURITY,
      description: mlRouteDescriptions.inference,
      tags: ['ml'],
      body: InferenceRequest,
      response: { 200: InferenceResult, ...errorResponses }
    }
  }, async (request) => {
    const { payload, ID: device } = request.body
    let frame: Float32Array
    try {
      frame = parseFrame(payload)
    } catch (err) {
      if (err instanceof FrameError) throw new BadFrameError(`payload: ${err.message}`)
      throw err
    }
    const { classified } = await classifyAndCapture([frame], device)
    seen(device, request.ip)
    const prediction = classified.predictions[0]
    return {
      angle: prediction.angle,
      state: prediction.state,
      confidence: prediction.confidence,
      probabilities: prediction.probabilities,
      labels: classified.labels,
      version: classified.version,
      device,
      at: new Date(classified.at).toISOString()
    }
  })

  app.post('/ml/post/batch', {
    // the binary body is described in the document only: the route validates its length, not its bytes
    config: { errorHints: NO_MODEL_HINT, swaggerTransform: documentOctetStreamBody(BinaryFramesBody) },
    onRequest: app.requireDevice,
    bodyLimit: Math.max(app.config.BODY_LIMIT, BATCH_BODY_LIMIT),
    preValidation: checkIdempotencyKey,
    schema: {
      summary: 'Classify many frames, as JSON or as bytes',
      security: DEVICE_SECURITY,
      description: mlRouteDescriptions.batch,
      tags: ['ml'],
      consumes: [...FRAME_BATCH_TYPES],
      headers: binaryBatchHeaders('the device of a binary body (optional, as `ID` of a JSON body)'),
      querystring: binaryBatchQuery('the device of a binary body (optional, as `ID` of a JSON body)'),
      body: { content: { 'application/json': { schema: BatchRequest } } },
      response: { 200: BatchResponse, ...errorResponses, ...idempotencyResponses }
    }
  }, async (request, reply) => {
    const { device, count, frames, results, positions, fingerprint } = readBatch(request)
    // a binary batch is fingerprinted by its layout and the digest of its bytes (a JSON one by its parsed body): the
    // same frames sent once as JSON and once as bytes under one key are two different requests (422)
    const keyed = keyedRequestOf(request, device, ...fingerprint)
    const answer = (classified: ClassifiedFrames, captured: number) => {
      const { predictions } = classified
      for (let k = 0; k < predictions.length; k++) results[positions ? positions[k] : k] = predictions[k]
      return {
        version: classified.version,
        labels: classified.labels,
        device,
        accepted: frames.length,
        rejected: count - frames.length,
        captured,
        results
      }
    }
    if (!keyed) {
      const { classified, captured } = await classifyAndCapture(frames, device)
      seen(device, request.ip)
      return answer(classified, captured)
    }
    const once = await classifyAndCaptureOnce(keyed, replyFormat(reply), frames, device, answer)
    seen(device, request.ip)
    return 'replay' in once ? sendReplay(reply, once.replay) : once.body
  })

  app.get('/ml/get/inference_results', {
    schema: {
      summary: 'The latest prediction (legacy)',
      description: 'The most recent frame classified by this process, from any device; 404 before the first.',
      tags: ['ml'],
      response: { 200: InferenceResult, ...errorResponses }
    }
  }, async () => {
    const latest = app.inference.latest
    if (!latest) throw new NotFoundError('no prediction yet: nothing has been classified since the server started')
    const { prediction } = latest
    return {
      angle: prediction.angle,
      state: prediction.state,
      confidence: prediction.confidence,
      probabilities: prediction.probabilities,
      labels: latest.labels,
      version: latest.version,
      device: latest.device,
      at: new Date(latest.at).toISOString()
    }
  })
}

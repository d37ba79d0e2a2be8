import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { BadFrameError, BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../core/errors.js'
import { answerOnce, checkIdempotencyKey, keyedRequestOf } from '../../core/idempotency.js'
import { FrameError, parseFrame } from '../../domain/frames.js'
import { DeviceIdInput, errorResponses } from '../../schemas/common.js'
import { IdempotencyHeaders, idempotencyResponses } from '../../schemas/idempotency.js'
import { ModelVersionInfo, TrainingProgress, type ModelKind } from '../../schemas/model.js'
import {
  ActivateBody, CancelCaptureBody, CaptureBody, CaptureStatus, DatasetSummary, DeleteSamplesBody, DeleteSamplesResult, DeviceParams,
  EvaluationQuery, EvaluationResponse, ImportResult, KindQuery, ModelList, SamplesBody, SamplesResult, TrainAccepted, TrainBody,
  trainingRouteDescriptions, VersionParams
} from '../../schemas/training.js'
import type { CaptureSessions } from './capture-sessions.js'
import { legacyCsiRows, legacyRssiRows } from './legacy-data.js'
import { currentProgress, type ProgressStreams } from './progress-streams.js'
import { labelCounts, type NewSample, type SampleStore, type StoredTrainingSet } from '../../ml/store/sample-store.js'
import { rowsOf, type StoredSamples } from '../../ml/training-set.js'
import { readSessionUpload, storeSessionUploadWithin } from '../../ml/store/session-import.js'
import { thenMaybe } from '../../core/store-transaction.js'

export interface TrainingRouteOptions {
  samples: SampleStore
  captures: CaptureSessions
  streams: ProgressStreams
}

const TEXT = 'text/plain; charset=utf-8'
const tags = ['training']
const admin = [{ admin: [] }]
/** The files of a version that can be downloaded, and their types. */
const MODEL_FILES = {
  'model.json': 'application/json; charset=utf-8',
  'weights.bin': 'application/octet-stream',
  'meta.json': 'application/json; charset=utf-8'
} as const
const ModelFile = Type.Unknown({ description: 'the file as stored' })
const ModelWeights = Type.String({ format: 'binary', description: 'the weights as stored' })
/** The import's body, for the document only: the CSV is streamed to the handler, never validated as a whole. */
const SessionCsvText = Type.String({ description: 'the session CSV: header `Label,CH6_mag,…,CH58_phase` (107 columns), one labelled frame a line' })

/** What to do about a run in progress, and about an unknown version. */
const WAIT_FOR_TRAINING = 'wait until GET /training/get/training_status says it ended'
const LIST_VERSIONS = 'GET /training/get/models lists them'

/**
 * The training routes: samples in (CSV import, JSON samples, legacy DATA,
 * capture sessions), training and its progress, model versions and downloads.
 */
export const trainingRoutes: FastifyPluginAsyncTypebox<TrainingRouteOptions> = async (app, { samples, captures, streams }) => {
  const importLimit = app.config.IMPORT_BODY_LIMIT
  // the CSV reaches the handler as the raw stream: it is read line by line, never held whole
  app.addContentTypeParser('text/csv', (request, payload, done) => done(null, payload))

  app.post('/training/post/import', {
    onRequest: app.requireAdmin,
    // a body schema here would validate the stream itself: the document alone is given one
    config: {
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: SessionCsvText }, url }),
      errorHints: {
        DS_DUPLICATE_IMPORT: 'to import the same content again on purpose, add ?duplicate=allow',
        FST_ERR_CTP_INVALID_MEDIA_TYPE: 'e.g. curl --data-binary @session.csv -H \'content-type: text/csv\''
      }
    },
    // any other declared type is refused before its parser runs: a CSV sent as application/json
    // would otherwise meet the JSON parser (a 400 for bad JSON, or a 413 past BODY_LIMIT)
    preParsing: async (request) => {
      const type = request.headers['content-type']
      if (type !== undefined && type.split(';')[0]!.trim().toLowerCase() !== 'text/csv') throw new UnsupportedMediaTypeError(type)
    },
    preValidation: checkIdempotencyKey,
    schema: {
      tags,
      summary: 'Imports labelled frames from a session CSV (admin)',
      description: trainingRouteDescriptions.import,
      security: admin,
      consumes: ['text/csv'],
      headers: IdempotencyHeaders,
      querystring: Type.Object({
        ID: Type.Optional(DeviceIdInput),
        duplicate: Type.Optional(Type.Union([Type.Literal('refuse'), Type.Literal('allow')], {
          description: 'content already imported for this device: refuse (default, 409) or import it again'
        }))
      }, { additionalProperties: false }),
      response: { 200: ImportResult, ...errorResponses, ...idempotencyResponses }
    }
  }, async (request, reply) => {
    const body = request.body as Readable | undefined
    if (!body || typeof (body as Partial<Readable>)[Symbol.asyncIterator] !== 'function') {
      throw new BadRequestError('the import body must be the CSV itself, sent as Content-Type: text/csv')
    }
    const declared = Number(request.headers['content-length'])
    if (declared > importLimit) throw new PayloadTooLargeError(`CSV body of ${declared} bytes exceeds IMPORT_BODY_LIMIT (${importLimit} bytes); split the file`)
    const upload = await readSessionUpload(body, { byteLimit: importLimit })
    const device = request.query.ID ?? null
    const duplicate = request.query.duplicate ?? 'refuse'
    return await answerOnce(reply, keyedRequestOf(request, device, upload.contentSha256, duplicate), (tx) =>
      thenMaybe(storeSessionUploadWithin(tx, samples, upload, { source: 'import', device, duplicate }), (result) => {
        request.log.info({ imported: result.imported, importId: result.importId }, 'session CSV imported')
        return result
      }))
  })

  app.post('/training/post/samples', {
    onRequest: app.requireAdmin,
    preValidation: checkIdempotencyKey,
    bodyLimit: importLimit,
    schema: {
      tags,
      summary: 'Stores labelled frames (admin)',
      description: trainingRouteDescriptions.samples,
      security: admin,
      headers: IdempotencyHeaders,
      body: SamplesBody,
      response: { 200: SamplesResult, ...errorResponses, ...idempotencyResponses }
    }
  }, async (request, reply) => {
    const rows: NewSample[] = request.body.samples.map((sample, i) => {
      let features: Float32Array
      try {
        features = parseFrame(sample.frame)
      } catch (err) {
        if (err instanceof FrameError) throw new BadFrameError(`samples[${i}].frame: ${err.message}`)
        throw err
      }
      return { kind: 'csi', angle: sample.angle, features, device: sample.ID ?? request.body.ID ?? null, source: 'samples' }
    })
    const labels = labelCounts(rows.map((row) => row.angle))
    return await answerOnce(reply, keyedRequestOf(request, request.body.ID), (tx) =>
      thenMaybe(samples.insertWithin(tx, rows), (stored) => ({ stored, labels })))
  })

  app.post('/training/post/train', {
    config: {
      errorHints: {
        DS_TOO_FEW_SAMPLES: 'samples are added with POST /training/post/import or /training/post/samples, removed with POST /training/post/delete_samples',
        DS_TRAINING_BUSY: WAIT_FOR_TRAINING
      }
    },
    onRequest: app.requireAdmin,
    bodyLimit: importLimit,
    // the original clients may post no body at all: that means {}
    preValidation: async (request) => {
      const body = request.body
      if (body === undefined || body === null) request.body = {}
      // the original's {TYPE, DATA} ignored any other field, and still does; the options form refuses them
      else if (typeof body === 'object' && !Array.isArray(body) && ('TYPE' in body || 'DATA' in body)) {
        request.body = Object.fromEntries(Object.entries(body).filter(([field]) => Object.hasOwn(TrainBody.properties, field)))
      }
    },
    schema: {
      tags,
      summary: 'Starts a training (legacy, admin)',
      description: trainingRouteDescriptions.train,
      security: admin,
      body: TrainBody,
      response: { 202: TrainAccepted, ...errorResponses }
    }
  }, async (request, reply) => {
    const { TYPE, DATA, ...options } = request.body
    let kind: ModelKind = options.kind ?? 'csi'
    let legacyRows: NewSample[] | undefined
    let set: StoredTrainingSet | StoredSamples
    if (TYPE !== undefined || DATA !== undefined) {
      if (TYPE === undefined) throw new BadRequestError('DATA needs TYPE ("CSI" or "RSSI") saying what it holds')
      if (DATA === undefined) {
        const layout = TYPE === 'CSI' ? 'DATA[DATA_TYPE][DOOR_ANGLE][SUB_CARRIER][POINTS]' : 'DATA[DOOR_ANGLE][POINTS]'
        throw new BadRequestError(`TYPE ${TYPE} needs DATA (${layout})`)
      }
      const legacyKind: ModelKind = TYPE === 'CSI' ? 'csi' : 'rssi'
      if (options.kind !== undefined && options.kind !== legacyKind) throw new BadRequestError(`kind "${options.kind}" contradicts TYPE ${TYPE}`)
      kind = legacyKind
      const rows = TYPE === 'CSI' ? legacyCsiRows(DATA) : legacyRssiRows(DATA)
      legacyRows = rows.map((row) => ({ kind, angle: row.angle, features: row.features, source: 'legacy-train' }))
      set = { kind, features: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }
    } else {
      // counted here, read by the run itself: a large dataset held the event loop for seconds
      set = { kind, database: samples.location, labelCounts: await samples.labelCounts(kind) }
    }
    const { version } = await app.model.startTraining(set, { ...options, kind })
    // stored only once the run was accepted: a 400 or 409 leaves the dataset as it was
    if (legacyRows) await samples.insert(legacyRows)
    const accepted: TrainAccepted = { accepted: true, version, kind, samples: rowsOf(set), state: app.model.state }
    return reply.code(202).send(accepted)
  })

  app.get('/training/get/training_status', {
    schema: {
      tags,
      summary: 'The model handler state as text (legacy)',
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'MODEL_DOESNT_EXIST, START_TRAINING, TRAINING_IN_PROGRESS, FINISHED_TRAINING or TRAINING_FAILED' }) }
    }
  }, async (request, reply) => reply.type(TEXT).send(app.model.state))

  app.get('/training/get/training_time', {
    schema: {
      tags,
      summary: 'Seconds the last finished training took, as text (legacy; 0 before the first)',
      produces: ['text/plain'],
      response: { 200: Type.String() }
    }
  }, async (request, reply) => reply.type(TEXT).send(String(Math.round((app.model.lastTrainingSeconds ?? 0) * 1000) / 1000)))

  app.get('/training/get/progress', {
    schema: {
      tags,
      summary: 'Progress of the running (or the last) training: epoch, loss, accuracy, validation accuracy, ETA',
      response: { 200: TrainingProgress }
    }
  }, async () => currentProgress(app.model))

  app.get('/training/get/progress/stream', {
    schema: {
      tags,
      summary: 'Training progress as server-sent events',
      description: 'Events `progress` (a TrainingProgress, at once and after each epoch) and `state` ({state}); a comment line keeps idle streams open.',
      produces: ['text/event-stream'],
      response: { 200: Type.String({ description: 'text/event-stream' }) }
    }
  }, async (request, reply) => {
    streams.open(request, reply)
  })

  app.get('/training/get/evaluation', {
    schema: {
      tags,
      summary: 'The blocked hold-out evaluation of the active (or a named) version',
      querystring: EvaluationQuery,
      response: { 200: EvaluationResponse, ...errorResponses }
    }
  }, async (request) => {
    const { version } = request.query
    if (version !== undefined && await app.model.versionDir(version) === undefined) throw new NotFoundError(`no model version ${version}`)
    const found = await app.model.evaluation(version)
    if (!found) {
      throw new NotFoundError(version === undefined
        ? 'no model is active yet: nothing has been evaluated'
        : `model version ${version} has no evaluation (trained with holdout 0)`)
    }
    return found
  })

  app.get('/training/get/models', {
    schema: { tags, summary: 'The stored model versions, newest first, with their weights\' SHA-256', response: { 200: ModelList } }
  }, async () => {
    // a version another process activated on this DATA_DIR is loaded first, so `active` and the flags agree
    await app.model.followCatalogue()
    return { active: app.model.active?.version ?? null, versions: await app.model.versions() }
  })

  app.post('/training/post/activate', {
    config: { errorHints: { DS_NOT_FOUND: LIST_VERSIONS, DS_TRAINING_BUSY: WAIT_FOR_TRAINING } },
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Makes a stored version the active one: roll back or forward (admin)',
      description: trainingRouteDescriptions.activate,
      security: admin,
      body: ActivateBody,
      response: { 200: ModelVersionInfo, ...errorResponses }
    }
  }, async (request) => app.model.activate(request.body.version, { force: request.body.force }))

  for (const [file, type] of Object.entries(MODEL_FILES)) {
    app.get(`/training/get/model/:version/${file}`, {
      schema: {
        tags,
        summary: `Downloads a version's ${file}`,
        description: trainingRouteDescriptions.modelFile,
        params: VersionParams,
        // the file in its own type; the errors are JSON like every other route's
        response: {
          200: { description: `the version's ${file}`, content: { [type.split(';')[0]]: { schema: file === 'weights.bin' ? ModelWeights : ModelFile } } },
          ...errorResponses
        }
      }
    }, async (request, reply) => {
      const { version } = request.params
      const dir = await app.model.versionDir(version)
      const info = (await app.model.versions()).find((candidate) => candidate.version === version)
      if (!dir || !info) throw new NotFoundError(`no model version ${version} (GET /training/get/models lists them)`)
      const path = join(dir, file)
      const { size } = await stat(path)
      reply.header('x-weights-sha256', info.weightsSha256).header('content-length', size).type(type)
      if (file === 'weights.bin') {
        reply.header('repr-digest', `sha-256=:${Buffer.from(info.weightsSha256, 'hex').toString('base64')}:`).header('etag', `"${info.weightsSha256}"`)
      }
      return reply.send(createReadStream(path))
    })
  }

  app.get('/training/get/dataset', {
    schema: {
      tags,
      summary: 'What the stored dataset holds: counts per angle, source and device',
      querystring: KindQuery,
      response: { 200: DatasetSummary, ...errorResponses }
    }
  }, async (request) => await samples.summary(request.query.kind ?? 'csi'))

  app.post('/training/post/delete_samples', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Removes stored samples by angle, source and/or device (admin)',
      description: trainingRouteDescriptions.deleteSamples,
      security: admin,
      body: DeleteSamplesBody,
      response: { 200: DeleteSamplesResult, ...errorResponses }
    }
  }, async (request) => {
    const { kind = 'csi', all, ...filter } = request.body
    if (all !== true && filter.angle === undefined && filter.source === undefined && filter.device === undefined) {
      throw new BadRequestError('name the samples to delete: angle, source or device (or all: true for every sample of the kind)')
    }
    // a door's calibration that is training is read by its run: the same 409 as DELETE /doors/{id}/calibration
    const door = app.model.doorModels.trainingDevice
    if (door !== undefined && (filter.device === undefined || filter.device === door) && (filter.source === undefined || filter.source === 'calibration') &&
      await samples.countWhere(kind, { ...filter, source: 'calibration', device: door }) > 0) {
      throw new ConflictError(`door ${door}'s calibration is training (version ${app.model.doorModels.training(door)}) ` +
        'and these samples include its calibration frames; try again once it has finished')
    }
    const deleted = await samples.delete(kind, filter)
    request.log.info({ kind, ...filter, all, deleted }, 'samples deleted')
    return { deleted, dataset: await samples.summary(kind) }
  })

  app.post('/training/post/capture', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Labels a device\'s next frames with an angle for some seconds (admin)',
      description: trainingRouteDescriptions.capture,
      security: admin,
      body: CaptureBody,
      response: { 200: CaptureStatus, ...errorResponses }
    }
  }, async (request) => {
    const { ID, angle, seconds } = request.body
    const status = await captures.start(ID, angle, seconds)
    request.log.info({ device: ID, angle, seconds }, 'capture session opened')
    return status
  })

  app.post('/training/post/cancel_capture', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Ends a device\'s open capture session now (admin)',
      description: trainingRouteDescriptions.cancelCapture,
      security: admin,
      body: CancelCaptureBody,
      response: { 200: CaptureStatus, ...errorResponses }
    }
  }, async (request) => {
    const { ID, keepFrames = true } = request.body
    const status = await captures.cancel(ID, { keepFrames })
    if (!status) {
      const last = captures.status(ID)
      throw new ConflictError(last ? `device ${ID} has no open capture session (its last one is ${last.state})` : `device ${ID} has no open capture session`)
    }
    request.log.info(
      { device: ID, angle: status.angle, keepFrames, framesStored: status.framesStored, framesDropped: status.framesDropped },
      'capture session cancelled'
    )
    return status
  })

  app.get('/training/get/capture/:id', {
    schema: {
      tags,
      summary: 'A device\'s capture session: state, frames stored, seconds left',
      description: trainingRouteDescriptions.captureStatus,
      params: DeviceParams,
      response: { 200: CaptureStatus, ...errorResponses }
    }
  }, async (request) => {
    const status = captures.status(request.params.id)
    if (!status) throw new NotFoundError(`device ${request.params.id} has never had a capture session`)
    return status
  })
}

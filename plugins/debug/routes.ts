import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { APP_VERSION } from '../../core/project.js'
import { BadRequestError, ConflictError } from '../../core/errors.js'
import { errorResponses } from '../../schemas/common.js'
import {
  EchoBody, EnableLoggingBody, EnableLoggingResponse, PlainText, RedeployAccepted, TrainingFailureReport
} from '../../schemas/debug.js'
import type { RedeployLauncher } from './redeploy.js'
import { isSwitchOn, loadedModel, modelHandlerVersion, tensorflowVersion, trainingFailureReport } from './versions.js'

export interface DebugRouteOptions {
  launcher: RedeployLauncher
}

const TEXT = 'text/plain; charset=utf-8'
const tags = ['debug']
const admin = [{ admin: [] }]

/** A legacy route whose answer is a bare string: documented as text/plain. */
function textRoute (summary: string) {
  return { tags, summary, produces: ['text/plain'], response: { 200: PlainText } }
}

/**
 * The debug routes. Legacy routes that answered a bare string (exists, time,
 * versions) answer text/plain, so old clients reading the body as text keep working.
 */
export const debugRoutes: FastifyPluginAsyncTypebox<DebugRouteOptions> = async (app, { launcher }) => {
  // bodies here are JSON: a text/plain body gets 415 instead of being echoed as a string
  app.removeContentTypeParser('text/plain')

  app.post('/debug/post/echo', {
    schema: {
      tags,
      summary: 'Answers the JSON body unchanged (legacy)',
      body: EchoBody,
      response: { 200: EchoBody, ...errorResponses }
    }
  }, async (request, reply) => {
    if (request.body === undefined) throw new BadRequestError('echo needs a JSON body (Content-Type: application/json)')
    // serialized here: a bare JSON string must come back as JSON, not as text
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(request.body))
  })

  app.post('/debug/post/redeploy', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Starts bin/redeploy detached: stop, pull, install, rebuild, relaunch (legacy, admin)',
      security: admin,
      response: { 202: RedeployAccepted, ...errorResponses }
    }
  }, async (request, reply) => {
    if (launcher.isRunning()) throw new ConflictError('a redeploy is already running: wait for it to finish')
    const started = launcher.start()
    if (started.configured) request.log.warn({ pid: started.pid }, 'redeploy started on request')
    else request.log.warn('redeploy requested, but redeploy is not configured on this host: nothing was started')
    const answer: RedeployAccepted = { accepted: true, configured: started.configured }
    if (started.pid !== undefined) answer.pid = started.pid
    return reply.code(202).send(answer)
  })

  app.post('/debug/post/enable_logging', {
    onRequest: app.requireAdmin,
    schema: {
      tags,
      summary: 'Turns request logging on or off at run time (legacy, admin)',
      security: admin,
      body: EnableLoggingBody,
      response: { 200: EnableLoggingResponse, ...errorResponses }
    }
  }, async (request) => {
    const enabled = isSwitchOn(request.body.ENABLED)
    app.requestLogging.enabled = enabled
    request.log.warn({ requestLogging: enabled }, `request logging turned ${enabled ? 'on' : 'off'}`)
    return { ENABLED: enabled, message: `request logging is ${enabled ? 'on' : 'off'}` }
  })

  app.get('/debug/get/time', {
    schema: textRoute('Server time, ISO-8601 UTC (legacy)')
  }, async (_request, reply) => reply.type(TEXT).send(new Date().toISOString()))

  app.get('/debug/get/version/server', {
    schema: textRoute('The package version (legacy)')
  }, async (_request, reply) => reply.type(TEXT).send(APP_VERSION))

  app.get('/debug/get/version/tensorflow', {
    schema: textRoute('tfjs version and active backend, or "not loaded" (legacy)')
  }, async (_request, reply) => reply.type(TEXT).send(tensorflowVersion(loadedModel(app))))

  app.get('/debug/get/version/tf_model_handler', {
    schema: textRoute('Model handler version, or "not loaded" (legacy)')
  }, async (_request, reply) => reply.type(TEXT).send(modelHandlerVersion(loadedModel(app))))

  // liveness probe, called often: nothing to validate, logged only on warnings
  app.get('/debug/get/exists', {
    logLevel: 'warn',
    schema: textRoute('Liveness: answers "Success" (legacy)')
  }, async (_request, reply) => reply.type(TEXT).send('Success'))

  app.get('/debug/get/training_failure', {
    schema: {
      tags,
      summary: 'The last training error, or a placeholder (legacy)',
      response: { 200: TrainingFailureReport }
    }
  }, async () => trainingFailureReport(loadedModel(app)))
}

import type { FastifyInstance } from 'fastify'
import type { TrainingFailureReport } from '../../schemas/debug.js'

/** What the debug routes read of `fastify.model` (declared by the model area). */
type Model = FastifyInstance['model']

/** Answer of the version routes while no model handler is loaded. */
export const NOT_LOADED = 'not loaded'

/**
 * The model handler, if the model area has decorated the app. Looked up per
 * call: the model area registers after this one and may be absent in a build.
 */
export function loadedModel (app: FastifyInstance): Model | undefined {
  return app.hasDecorator('model') ? app.model : undefined
}

/** `GET /debug/get/version/tensorflow`: the tfjs version first (as the original's bare `tf.__version__`), then the backend. */
export function tensorflowVersion (model: Model | undefined): string {
  if (!model) return NOT_LOADED
  const { tfjsVersion, backend, package: provider } = model.backend
  return `${tfjsVersion} (backend ${backend}, ${provider})`
}

/** `GET /debug/get/version/tf_model_handler`. */
export function modelHandlerVersion (model: Model | undefined): string {
  return model ? model.handlerVersion : NOT_LOADED
}

/** `GET /debug/get/training_failure`: the last training error, or a placeholder. */
export function trainingFailureReport (model: Model | undefined): TrainingFailureReport {
  if (!model) return { failed: false, message: `no training has failed (model handler ${NOT_LOADED})` }
  const failure = model.lastFailure
  if (!failure) return { failed: false, message: 'no training has failed' }
  const report: TrainingFailureReport = { failed: true, message: failure.message, at: failure.at }
  if (failure.version !== undefined) report.version = failure.version
  return report
}

/** The legacy switch's value as a boolean ("True"/"False" as Python printed them, or a JSON boolean). */
export function isSwitchOn (value: 'True' | 'False' | boolean): boolean {
  return value === true || value === 'True'
}

import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import type { TrainingState } from '../../schemas/model.js'
import { chooseBackend } from '../../ml/backend.js'
import { ModelHandler, type ModelService } from '../../ml/model-handler.js'

declare module 'fastify' {
  interface FastifyInstance {
    model: ModelService
  }
}

/**
 * The model area: picks the TensorFlow.js backend (TF_BACKEND), opens the
 * version store (cleaning up after a crash), loads the active version and
 * decorates `fastify.model`. Closing the app stops a running training.
 * With DATABASE_URL (`app.postgres`) the versions' rows, the active ones and
 * the training log are the cluster's, in PostgreSQL (migrated on open); the
 * version folders stay in DATA_DIR.
 */
export default fp(async (app) => {
  const log = app.log.child({ area: 'model' })
  const backend = await chooseBackend(app.config.TF_BACKEND, log)
  const handler = await ModelHandler.open({
    storage: app.storage,
    dataDir: app.config.DATA_DIR,
    postgres: app.postgres,
    // the name the cluster knows this instance by names its runs in the shared log (default: host name and DATA_DIR)
    instance: app.config.INSTANCE_URL,
    backend,
    log,
    doorTraining: { epochs: app.config.DOOR_EPOCHS }
  })
  app.decorate('model', handler)
  app.addHook('onClose', async () => handler.close())

  // metrics: how runs end, and the current state (for alerts on TRAINING_FAILED)
  const runs = new Counter({
    name: 'doorsense_training_runs_total',
    help: 'training runs by how they ended',
    labelNames: ['outcome'] as const,
    registers: [app.metrics]
  })
  const stateGauge = new Gauge({
    name: 'doorsense_model_state',
    help: '1 for the model handler\'s current state',
    labelNames: ['state'] as const,
    registers: [app.metrics]
  })
  let previous = handler.state
  const onState = (next: TrainingState) => {
    const wasTraining = previous === 'START_TRAINING' || previous === 'TRAINING_IN_PROGRESS'
    if (wasTraining && next === 'FINISHED_TRAINING') runs.inc({ outcome: 'finished' })
    if (wasTraining && next === 'TRAINING_FAILED') runs.inc({ outcome: 'failed' })
    stateGauge.reset()
    stateGauge.set({ state: next }, 1)
    previous = next
  }
  onState(handler.state)
  handler.on('state', onState)
}, { name: 'model', fastify: '5.x', dependencies: ['storage', 'postgres'] })

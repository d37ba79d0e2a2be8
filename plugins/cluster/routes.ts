import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../../schemas/common.js'
import { ClusterStatus } from '../../schemas/cluster.js'
import type { ClusterService } from './cluster-service.js'
import type { ModelSync } from './model-sync.js'

export interface ClusterRouteOptions {
  cluster: ClusterService | null
  /** The cluster's models (null embedded). */
  models: ModelSync | null
  instanceId: string
  /** When this instance started, epoch ms. */
  startedAt: number
}

/** GET /cluster: the instances, the partitions each owns and the lag of each consumer. */
export const clusterRoutes: FastifyPluginAsyncTypebox<ClusterRouteOptions> = async (app, { cluster, models, instanceId, startedAt }) => {
  app.get('/cluster', {
    schema: {
      tags: ['cluster'],
      summary: 'The instances of the cluster, the partitions each owns and each consumer\'s lag',
      description: 'Embedded (NATS_URL unset): one instance owning every door. In a cluster: every instance with a heartbeat ' +
        'within OWNER_TAKEOVER_S, every partition with its owner (null during a takeover) and the batches its owner has not read yet, ' +
        'and the frame stream\'s size on the NATS server; the cluster\'s active model version per scope and the trainings running ' +
        '(who trains which version, how far). Any instance answers the same, up to a heartbeat\'s age.',
      response: { 200: ClusterStatus, ...errorResponses }
    }
  }, async (): Promise<ClusterStatus> => {
    if (cluster) {
      const [status, modelStatus] = await Promise.all([cluster.status(), models?.status()])
      return modelStatus ? { ...status, models: modelStatus } : status
    }
    const started = new Date(startedAt).toISOString()
    return {
      mode: 'embedded',
      cluster: null,
      instance: instanceId,
      partitions: 1,
      instances: [{ id: instanceId, url: `http://${app.config.HOST}:${app.config.PORT}`, startedAt: started, heartbeatAt: new Date().toISOString(), owned: [0], lag: 0, self: true }],
      owners: [{ partition: 0, owner: instanceId, lag: 0 }],
      stream: null
    }
  })
}

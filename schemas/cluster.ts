import { Type, type Static } from '@sinclair/typebox'
import { TrainingProgress } from './model.js'

/** One doorsense instance of a cluster, as GET /cluster lists it. */
export const ClusterInstance = Type.Object({
  id: Type.String({ description: 'the instance\'s ID (host name, port and a random part, new at each start)' }),
  url: Type.String({ description: 'its INSTANCE_URL' }),
  startedAt: Type.String({ format: 'date-time' }),
  heartbeatAt: Type.String({ format: 'date-time', description: 'its last heartbeat; an instance silent for OWNER_TAKEOVER_S drops out' }),
  owned: Type.Array(Type.Integer({ minimum: 0 }), { description: 'the partitions it owns' }),
  lag: Type.Integer({ minimum: 0, description: 'frame batches in its partitions not yet read, summed over its consumers' }),
  self: Type.Boolean({ description: 'whether this is the instance that answered' })
}, { additionalProperties: false })

/** A partition of the doors and who owns it. */
export const ClusterPartition = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  owner: Type.Union([Type.String(), Type.Null()], { description: 'the owning instance\'s ID; null while unowned (a takeover under way)' }),
  lag: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'batches its owner has not read yet (null: unowned)' })
}, { additionalProperties: false })

/** A training running in the cluster: the lease its instance holds on the scope. */
export const ClusterTraining = Type.Object({
  scope: Type.String({ description: '`global` or `door.<device>`' }),
  holder: Type.String({ description: 'the ID of the instance that trains' }),
  since: Type.Integer({ description: 'when it took the scope, epoch ms' }),
  version: Type.Optional(Type.String({ description: 'the version the run will write' })),
  progress: Type.Optional(Type.Omit(TrainingProgress, ['state'], { description: 'as of the holder\'s last renewal (every second)' }))
}, { additionalProperties: false })

/** GET /cluster: the embedded default, or the instances of a cluster and what each owns. */
export const ClusterStatus = Type.Object({
  mode: Type.Union([Type.Literal('embedded'), Type.Literal('cluster')], { description: 'embedded: one process on SQLite (NATS_URL unset)' }),
  cluster: Type.Union([Type.String(), Type.Null()], { description: 'CLUSTER_NAME in a cluster, null embedded' }),
  instance: Type.String({ description: 'the ID of the instance that answered' }),
  partitions: Type.Integer({ minimum: 1, description: 'CLUSTER_PARTITIONS (1 embedded: the process owns every door)' }),
  instances: Type.Array(ClusterInstance),
  owners: Type.Array(ClusterPartition),
  stream: Type.Union([
    Type.Object({
      messages: Type.Integer({ minimum: 0 }),
      bytes: Type.Integer({ minimum: 0 }),
      firstSeq: Type.Integer({ minimum: 0 }),
      lastSeq: Type.Integer({ minimum: 0 })
    }, { additionalProperties: false, description: 'the frame stream on the NATS server' }),
    Type.Null()
  ]),
  models: Type.Optional(Type.Object({
    active: Type.Record(Type.String(), Type.String(), { description: 'the active version per scope: `global`, `global.rssi`, `door.<device>`' }),
    trainings: Type.Array(ClusterTraining)
  }, { additionalProperties: false, description: 'in a cluster: the models every instance serves, and the trainings running' }))
}, { additionalProperties: false })
export type ClusterStatus = Static<typeof ClusterStatus>

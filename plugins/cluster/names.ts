/**
 * The names a cluster's instances agree on in NATS: one stream of frames,
 * the KV buckets and the models' Object Store bucket, all derived from the
 * cluster name, so several clusters (or test runs) share one NATS server
 * without meeting.
 */

/** A cluster name: a stream, bucket and subject token all at once, so only letters, digits, `_` and `-`. */
export const CLUSTER_NAME_PATTERN = '^[A-Za-z0-9_-]{1,32}$'

/** An instance id: it is a KV key of the instance directory, so the same characters, a little longer. */
export const INSTANCE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'

/** The highest device id (the Pi's ID field): device ids are 0..32767. */
export const MAX_DEVICE = 32767

/** What a cluster named `<c>` is made of in NATS. */
export interface ClusterNames {
  cluster: string
  /** `<c>_frames`: every frame batch published by any instance. */
  frameStream: string
  /** `<c>.frames.*.*`: `<c>.frames.<partition>.<device>`. */
  frameSubjects: string
  /** `<c>_doors`: each door's latest state (no ttl). */
  doorsBucket: string
  /** `<c>_owners`: which instance holds each partition (leases, bucket ttl). */
  ownersBucket: string
  /** `<c>_instances`: the live instances (heartbeats, bucket ttl). */
  instancesBucket: string
  /** `<c>_models`: Object Store bucket of the model versions' files, `<version>/<file>` (no ttl). */
  modelsBucket: string
  /** `<c>_active`: the active version per scope, key `global`, `global.rssi` or `door.<device>` (no ttl). */
  activeBucket: string
  /** `<c>_locks`: one training per scope, key `train.global` or `train.door.<device>` (leases, bucket ttl). */
  locksBucket: string
}

const CLUSTER_NAME = new RegExp(CLUSTER_NAME_PATTERN)

/**
 * The names of cluster `clusterName`.
 * @throws when the name does not match {@link CLUSTER_NAME_PATTERN}
 */
export function clusterNames (clusterName: string): ClusterNames {
  if (!CLUSTER_NAME.test(clusterName)) {
    throw new Error(`cluster: the cluster name ${JSON.stringify(clusterName)} must match ${CLUSTER_NAME_PATTERN}`)
  }
  return {
    cluster: clusterName,
    frameStream: `${clusterName}_frames`,
    frameSubjects: `${clusterName}.frames.*.*`,
    doorsBucket: `${clusterName}_doors`,
    ownersBucket: `${clusterName}_owners`,
    instancesBucket: `${clusterName}_instances`,
    modelsBucket: `${clusterName}_models`,
    activeBucket: `${clusterName}_active`,
    locksBucket: `${clusterName}_locks`
  }
}

/** The subject a device's frames are published on: `<c>.frames.<partition>.<device>`. */
export function frameSubject (names: ClusterNames, partition: number, device: number): string {
  return `${names.cluster}.frames.${partition}.${device}`
}

/** The subjects of one partition, a consumer's filter: `<c>.frames.<partition>.*`. */
export function partitionFilter (names: ClusterNames, partition: number): string {
  return `${names.cluster}.frames.${partition}.*`
}

/** Whether `device` is a device id (an integer 0..32767). */
export function isDevice (device: number): boolean {
  return Number.isInteger(device) && device >= 0 && device <= MAX_DEVICE
}

/**
 * The partition a device's frames belong to: `device % partitions`. The
 * publisher puts the partition in the subject, so the stream's subjects are
 * the partition map and every instance must compute the same one: a plain
 * modulo is stable and needs no state (NATS 2.9's subject-mapping partitions
 * are server configuration, not something a client can set). Device ids are
 * small dense integers, so the modulo spreads them evenly.
 * @throws RangeError for a device outside 0..32767 or a partition count below 1
 */
export function partitionOf (device: number, partitions: number): number {
  if (!isDevice(device)) throw new RangeError(`cluster: device ${device} is not an integer 0..${MAX_DEVICE}`)
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`cluster: ${partitions} partitions: must be an integer ≥ 1`)
  return device % partitions
}

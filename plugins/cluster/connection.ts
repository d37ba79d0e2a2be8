/**
 * One NATS connection per instance, shared by the frame stream, the partition
 * consumers and the three buckets: its JetStream client and manager, the KV
 * manager, and the cluster's names.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import { connect, millis, nanos, type NatsConnection } from '@nats-io/transport-node'
import { clusterNames, type ClusterNames } from './names.js'

/** An open connection to the cluster's NATS, with JetStream on. */
export interface ClusterConnection {
  nc: NatsConnection
  js: JetStreamClient
  jsm: JetStreamManager
  kvm: Kvm
  names: ClusterNames
  /** Drains (subscriptions and pending publishes finish), then closes; safe to call twice. */
  close (): Promise<void>
}

export interface ConnectClusterOptions {
  /** `nats://host:4222`; credentials in it are never quoted in an error. */
  url: string
  /** See {@link clusterNames}. */
  clusterName: string
  /** Names the connection `doorsense-<instanceId>` (the server's connz shows it). */
  instanceId: string
  /** Longest wait for the first connection. Default 5000. */
  connectTimeoutMs?: number
}

/** `url` fit for an error message: the password of `nats://user:password@host` replaced by `***`. */
export function redactNatsUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password === '') return url
    parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}

/**
 * Connects to NATS at `url` and checks JetStream answers. Once connected the
 * client reconnects forever (every 500 ms): a NATS restart must not end the
 * instance; the modules here retry their own work meanwhile.
 * @throws an Error naming the URL when the server cannot be reached or JetStream is off
 */
export async function connectCluster (options: ConnectClusterOptions): Promise<ClusterConnection> {
  const names = clusterNames(options.clusterName)
  const safeUrl = redactNatsUrl(options.url)
  let nc: NatsConnection
  try {
    nc = await connect({
      servers: options.url,
      name: `doorsense-${options.instanceId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: options.connectTimeoutMs ?? 5000
    })
  } catch (error) {
    throw new Error(`cluster: cannot connect to NATS at ${safeUrl}: ${(error as Error).message}`, { cause: error })
  }
  let jsm: JetStreamManager
  try {
    // checks the account has JetStream (an account info request)
    jsm = await jetstreamManager(nc)
  } catch (error) {
    await nc.close().catch(() => {})
    throw new Error(`cluster: NATS at ${safeUrl} has no JetStream (start nats-server with -js): ${(error as Error).message}`, { cause: error })
  }
  const js = jetstream(nc)
  let closing: Promise<void> | undefined
  return {
    nc,
    js,
    jsm,
    kvm: new Kvm(js),
    names,
    close: () => {
      closing ??= nc.isClosed() ? Promise.resolve() : nc.drain().catch(() => nc.close())
      return closing
    }
  }
}

/** Whether `error` is the JetStream API's answer `code` (see JetStreamApiCodes). */
export function isApiError (error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code
}

/**
 * Opens KV bucket `bucket` whose entries expire `ttlMs` after their last
 * write, creating it when missing. A bucket made with another ttl is brought
 * to this one (the KV client would open it as it is): the newest
 * configuration wins, so an operator can change the ttl by restarting the
 * instances.
 */
export async function openTtlBucket (conn: ClusterConnection, bucket: string, ttlMs: number): Promise<KV> {
  if (!Number.isFinite(ttlMs) || ttlMs < 100) throw new RangeError(`cluster: bucket ${bucket}: ttl ${ttlMs} ms must be ≥ 100`)
  const kv = await conn.kvm.create(bucket, { ttl: Math.round(ttlMs), history: 1 })
  const stream = `KV_${bucket}`
  const { config } = await conn.jsm.streams.info(stream)
  if (Math.round(millis(config.max_age)) !== Math.round(ttlMs)) {
    // NATS refuses a duplicate window longer than max_age (a bucket publishes no msgId: the server's default, capped)
    await conn.jsm.streams.update(stream, { max_age: nanos(Math.round(ttlMs)), duplicate_window: nanos(Math.min(Math.round(ttlMs), 120_000)) })
  }
  return kv
}

/** Deletes stream `name`; true when it was there. */
async function deleteStream (jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    return await jsm.streams.delete(name)
  } catch (error) {
    if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return false
    throw error
  }
}

/**
 * Deletes the cluster's frame stream and its buckets, whichever exist:
 * buffered frames, door states, leases, the instance directory, the models'
 * files, active versions and training locks are gone.
 * For tests and for an operator retiring a cluster; never while instances run.
 */
export async function destroyCluster (conn: ClusterConnection): Promise<void> {
  const { names, jsm } = conn
  // a KV bucket is the stream KV_<bucket>, an Object Store bucket OBJ_<bucket>
  await Promise.all([
    deleteStream(jsm, names.frameStream),
    deleteStream(jsm, `KV_${names.doorsBucket}`),
    deleteStream(jsm, `KV_${names.ownersBucket}`),
    deleteStream(jsm, `KV_${names.instancesBucket}`),
    deleteStream(jsm, `OBJ_${names.modelsBucket}`),
    deleteStream(jsm, `KV_${names.activeBucket}`),
    deleteStream(jsm, `KV_${names.locksBucket}`)
  ])
}

/**
 * What the cluster suites share: a cluster of their own on the test NATS
 * (a random name, destroyed after the test), more connections to it (the
 * other instances), and waiting for a condition.
 */
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectCluster, destroyCluster, type ClusterConnection } from '../../../plugins/cluster/connection.js'
import { randomPrefix, TEST_NATS_URL } from '../../fixtures/engines.js'

export interface TestCluster {
  clusterName: string
  /** The first instance's connection. */
  conn: ClusterConnection
  /** Another instance's connection to the same cluster, closed after the test. */
  connect: (instanceId: string) => Promise<ClusterConnection>
  /** Runs after the test, before the cluster is destroyed; the last registered runs first. */
  cleanup: (step: () => Promise<unknown> | unknown) => void
}

/** A cluster for test `t`: its stream and buckets are destroyed and its connections closed after it. */
export async function testCluster (t: TestContext): Promise<TestCluster> {
  const clusterName = randomPrefix('c')
  const connections: ClusterConnection[] = []
  const steps: Array<() => Promise<unknown> | unknown> = []
  const connect = async (instanceId: string): Promise<ClusterConnection> => {
    const conn = await connectCluster({ url: TEST_NATS_URL, clusterName, instanceId })
    connections.push(conn)
    return conn
  }
  const conn = await connect('i0')
  t.after(async () => {
    for (const step of steps.reverse()) await step()
    await destroyCluster(conn)
    await Promise.all(connections.map((connection) => connection.close()))
  })
  return { clusterName, conn, connect, cleanup: (step) => { steps.push(step) } }
}

/** Waits until `check()` is true, polling every 10 ms; returns the ms it took. */
export async function until (check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(10)
  }
  return Date.now() - started
}

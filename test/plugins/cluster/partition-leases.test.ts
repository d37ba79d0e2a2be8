import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ClusterConnection } from '../../../plugins/cluster/connection.js'
import { PartitionLeases, type PartitionLeasesOptions } from '../../../plugins/cluster/partition-leases.js'
import { engineUnavailable } from '../../fixtures/engines.js'
import { testCluster, until, type TestCluster } from './cluster.js'

const reason = await engineUnavailable('nats')

const TTL_MS = 1200
const RENEW_MS = 400
const CONTEND_MS = 150
const PARTITIONS = 8

type Step = 'acquiring' | 'acquired' | 'releasing' | 'released' | 'lost'

interface Member {
  leases: PartitionLeases
  /** Every callback, in the order they ran, with when. */
  log: Array<{ step: Step, partition: number, at: number }>
  errors: unknown[]
  share: number
}

/** An instance's leases with a share the test sets, logging every callback; onAcquired and onReleasing take `callbackMs`. */
async function member (cluster: TestCluster, conn: ClusterConnection, id: string, share: number, extra: Partial<PartitionLeasesOptions> = {},
  callbackMs = 20): Promise<Member> {
  const log: Member['log'] = []
  const errors: unknown[] = []
  const self = { log, errors, share } as Member
  self.leases = await PartitionLeases.open(conn, {
    partitions: PARTITIONS,
    instanceId: id,
    ttlMs: TTL_MS,
    renewMs: RENEW_MS,
    contendMs: CONTEND_MS,
    fairShare: () => self.share,
    onAcquired: async (partition) => {
      log.push({ step: 'acquiring', partition, at: Date.now() })
      await sleep(callbackMs)
      log.push({ step: 'acquired', partition, at: Date.now() })
    },
    onReleasing: async (partition) => {
      log.push({ step: 'releasing', partition, at: Date.now() })
      await sleep(callbackMs)
      log.push({ step: 'released', partition, at: Date.now() })
    },
    onLost: (partition) => { log.push({ step: 'lost', partition, at: Date.now() }) },
    onError: (error) => errors.push(error),
    ...extra
  })
  cluster.cleanup(() => self.leases.stop())
  return self
}

/** Watches that no partition is ever held by two of `members` at once (checked every 2 ms). */
function watchExclusive (t: { after: (fn: () => void) => void }, members: Member[]): { overlaps: string[] } {
  const overlaps: string[] = []
  const timer = setInterval(() => {
    const seen = new Map<number, number>()
    members.forEach((one, index) => {
      for (const partition of one.leases.owned()) {
        if (seen.has(partition)) overlaps.push(`partition ${partition} held by members ${seen.get(partition)} and ${index}`)
        seen.set(partition, index)
      }
    })
  }, 2)
  t.after(() => clearInterval(timer))
  return { overlaps }
}

/** Each partition's callbacks follow acquiring → acquired → (releasing → released | lost), never interleaved. */
function assertOrdered (one: Member): void {
  const next: Record<Step, Step[]> = {
    acquiring: ['acquired'], acquired: ['releasing', 'lost'], releasing: ['released'], released: ['acquiring'], lost: ['acquiring']
  }
  const last = new Map<number, Step>()
  for (const { step, partition } of one.log) {
    const before = last.get(partition)
    const allowed = before === undefined ? ['acquiring'] : next[before]
    assert.ok(allowed.includes(step), `partition ${partition}: ${step} after ${before ?? 'nothing'}`)
    last.set(partition, step)
  }
}

test('two instances split 8 partitions 4 and 4, never both holding one; a graceful stop hands its 4 over at once', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const a = await member(cluster, cluster.conn, 'a', 4)
  const b = await member(cluster, await cluster.connect('b'), 'b', 4)
  const { overlaps } = watchExclusive(t, [a, b])
  a.leases.start()
  b.leases.start()
  await until(() => a.leases.owned().length === 4 && b.leases.owned().length === 4, 5000, '4 and 4')
  assert.deepEqual([...a.leases.owned(), ...b.leases.owned()].sort(), [0, 1, 2, 3, 4, 5, 6, 7])
  await until(() => a.log.filter((entry) => entry.step === 'acquired').length === 4, 1000, 'a\'s onAcquired completed')
  await sleep(CONTEND_MS * 2)
  assert.equal(a.leases.owned().length + b.leases.owned().length, 8, 'a fair share is held, not exceeded')
  const owners = a.leases.owners()
  assert.equal(owners.size, 8)
  for (const partition of b.leases.owned()) assert.equal(owners.get(partition), 'b')
  for (const partition of a.leases.owned()) assert.equal(owners.get(partition), 'a')

  const bHeld = b.leases.owned()
  a.share = 8
  await b.leases.stop()
  assert.deepEqual(b.leases.owned(), [])
  assert.deepEqual(b.log.filter((entry) => entry.step === 'released').map((entry) => entry.partition).sort(), bHeld, 'onReleasing for each')
  const handedOver = await until(() => a.leases.owned().length === 8, 3000, 'a holds all 8')
  t.diagnostic(`a held all 8 ${handedOver} ms after b's stop() resolved`)
  // the next contention round (contendMs ± 20 %) takes them all: no wait for the ttl
  assert.ok(handedOver <= CONTEND_MS * 2 + 100, `handed over ${handedOver} ms after stop()`)
  assert.deepEqual(overlaps, [])
  assertOrdered(a)
  assertOrdered(b)
  assert.deepEqual(b.errors, [])
})

test('a newcomer gets a share: the holder releases its highest partitions, each only once acquired', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  // onAcquired takes longer than a contention round: a release must still wait for it
  const a = await member(cluster, cluster.conn, 'a', 8, {}, CONTEND_MS * 2)
  const { overlaps } = watchExclusive(t, [a])
  a.leases.start()
  await until(() => a.leases.owned().length === 8, 5000, 'a alone holds all 8')
  a.share = 5
  const b = await member(cluster, await cluster.connect('b'), 'b', 3)
  const both = watchExclusive(t, [a, b])
  b.leases.start()
  await until(() => a.leases.owned().length === 5 && b.leases.owned().length === 3, 5000, '5 and 3')
  assert.deepEqual(a.leases.owned(), [0, 1, 2, 3, 4])
  assert.deepEqual(b.leases.owned(), [5, 6, 7])
  // the highest go (one still acquiring at a round goes at a later one)
  assert.deepEqual(a.log.filter((entry) => entry.step === 'releasing').map((entry) => entry.partition).sort(), [5, 6, 7])
  await until(() => a.log.filter((entry) => entry.step === 'acquired').length === 8, 2000, 'every onAcquired completed')
  assertOrdered(a)
  assertOrdered(b)
  assert.deepEqual([...overlaps, ...both.overlaps], [])
})

test('a killed instance\'s partitions are taken over once its leases expire; it gives them up (onLost) before that', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const a = await member(cluster, cluster.conn, 'a', 4)
  const doomed = await cluster.connect('b')
  const b = await member(cluster, doomed, 'b', 4)
  const { overlaps } = watchExclusive(t, [a, b])
  a.leases.start()
  b.leases.start()
  await until(() => a.leases.owned().length === 4 && b.leases.owned().length === 4, 5000, '4 and 4')
  const bHeld = b.leases.owned()
  a.share = 8
  // the instance dies: its connection is cut, nothing is deleted
  const killedAt = Date.now()
  await doomed.nc.close()
  await until(() => a.leases.owned().length === 8, TTL_MS + 3000, 'a holds all 8')
  const tookOver = Date.now() - killedAt
  t.diagnostic(`a held all 8 ${tookOver} ms after b was killed (ttl ${TTL_MS}, contention ${CONTEND_MS})`)
  // b renewed at most RENEW_MS before the kill: its leases expire no sooner than TTL - RENEW after it
  assert.ok(tookOver >= TTL_MS - RENEW_MS - 50, `taken over ${tookOver} ms after the kill: before the leases could expire`)
  assert.ok(tookOver <= TTL_MS + 2 * CONTEND_MS + 250, `taken over ${tookOver} ms after the kill (ttl ${TTL_MS}, contention ${CONTEND_MS})`)
  // b, cut off, stopped consuming each before a started it
  const lost = b.log.filter((entry) => entry.step === 'lost')
  assert.deepEqual(lost.map((entry) => entry.partition).sort(), bHeld)
  for (const { partition, at } of lost) {
    const acquiredByA = a.log.find((entry) => entry.step === 'acquiring' && entry.partition === partition)
    assert.ok(acquiredByA !== undefined && acquiredByA.at >= at, `partition ${partition}: b gave it up before a took it`)
  }
  assert.ok(b.errors.length > 0, 'b\'s renewals failed')
  assert.deepEqual(overlaps, [])
  assertOrdered(a)
  assertOrdered(b)
})

test('a renewal that finds someone else\'s lease calls onLost at once; the partition comes back after that lease expires', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const a = await member(cluster, cluster.conn, 'a', 8)
  a.leases.start()
  await until(() => a.leases.owned().length === 8, 5000, 'a holds all 8')
  const intruder = await cluster.conn.kvm.open(cluster.conn.names.ownersBucket)
  const wroteAt = Date.now()
  await intruder.put('p3', 'intruder')
  await until(() => a.log.some((entry) => entry.step === 'lost'), RENEW_MS + 500, 'onLost')
  assert.ok(Date.now() - wroteAt <= RENEW_MS + 200)
  assert.deepEqual(a.log.filter((entry) => entry.step === 'lost').map((entry) => entry.partition), [3])
  assert.deepEqual(a.leases.owned(), [0, 1, 2, 4, 5, 6, 7])
  await sleep(CONTEND_MS * 2)
  assert.equal(a.leases.owners().get(3), 'intruder', 'not taken while the other lease lives')
  assert.ok(!a.leases.owned().includes(3))
  await until(() => a.leases.owned().includes(3), TTL_MS + 2 * CONTEND_MS + 500, 'partition 3 back after the intruder\'s lease expired')
  assert.ok(Date.now() - wroteAt >= TTL_MS - 50)
  assertOrdered(a)
})

test('an instance whose event loop stalled longer than the ttl gives its leases up (onLost), then takes them anew', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const a = await member(cluster, cluster.conn, 'a', 2, { partitions: 2 })
  a.leases.start()
  await until(() => a.log.filter((entry) => entry.step === 'acquired').length === 2, 5000, 'a holds both')
  // a synchronous stall (a long computation, a GC pause): no renewal can run, the leases expire in NATS
  const stalled = Date.now()
  while (Date.now() - stalled < TTL_MS + 100) { /* stall */ }
  await until(() => a.log.filter((entry) => entry.step === 'lost').length === 2, RENEW_MS + 500, 'onLost for both')
  assert.match(String(a.errors[0]), /went \d+ ms without renewal/)
  await until(() => a.log.filter((entry) => entry.step === 'acquired').length === 4, 3000, 'both taken again')
  assertOrdered(a)
})

test('an onAcquired that throws is reported and the lease given back; options out of range are refused', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  let failures = 1
  const a = await member(cluster, cluster.conn, 'a', 1, {
    partitions: 1,
    onAcquired: () => { if (failures-- > 0) throw new Error('no consumer today') }
  })
  a.leases.start()
  await until(() => a.errors.length === 1, 3000, 'the error')
  assert.match((a.errors[0] as Error).message, /no consumer today/)
  await until(() => a.leases.owned().length === 1 && failures < 0, 3000, 'taken again, and this time acquired')
  await assert.rejects(PartitionLeases.open(cluster.conn, { ...baseOptions(), renewMs: TTL_MS }), RangeError)
  await assert.rejects(PartitionLeases.open(cluster.conn, { ...baseOptions(), partitions: 0 }), RangeError)
  await assert.rejects(PartitionLeases.open(cluster.conn, { ...baseOptions(), ttlMs: 50 }), RangeError)
})

function baseOptions (): PartitionLeasesOptions {
  return { partitions: 2, instanceId: 'x', ttlMs: TTL_MS, onAcquired: () => {}, onReleasing: async () => {}, onLost: () => {} }
}

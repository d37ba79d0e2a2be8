import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, type AgentOptions } from '../../agent/agent.js'
import type { AgentTransport, Delivery } from '../../agent/transport.js'
import { esp32Lines as recordedEsp32Lines, rawPiLines } from '../fixtures/frames.js'

const piFrames = rawPiLines()
const esp32Lines = recordedEsp32Lines()

/** A stand-in server: records every batch and answers as `answer` says (default: all stored). */
class ScriptedTransport implements AgentTransport {
  readonly batches: string[][] = []
  /** The Idempotency-Key each batch came with. */
  readonly keys: Array<string | undefined> = []
  readonly sentAt: number[] = []
  keepAlives = 0
  keepAliveFails = false
  constructor (private readonly answer: (frames: string[], call: number) => Delivery | Promise<Delivery> =
  (frames) => ({ kind: 'stored', accepted: frames.length, rejected: [] })) {}

  async keepAlive (): Promise<void> {
    this.keepAlives++
    if (this.keepAliveFails) throw new Error('ECONNREFUSED')
  }

  async send (frames: string[], _signal?: AbortSignal, idempotencyKey?: string): Promise<Delivery> {
    this.batches.push([...frames])
    this.keys.push(idempotencyKey)
    this.sentAt.push(Date.now())
    return this.answer(frames, this.batches.length - 1)
  }

  /** Frames of the batches the script answered `stored` for, in order. */
  stored (storedCalls: number[]): string[] {
    return storedCalls.flatMap((call) => this.batches[call])
  }
}

/** An agent on `transport` with quick retries, stopped after the test even when an assertion failed. */
function agentWith (t: TestContext, transport: AgentTransport, options: Omit<AgentOptions, 'transport'> = {}): { agent: Agent, logs: string[] } {
  const logs: string[] = []
  const agent = new Agent({
    transport,
    keepAliveMs: 60_000,
    backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0.5 },
    log: (line) => logs.push(line),
    ...options
  })
  t.after(() => agent.finish(0))
  return { agent, logs }
}

test('batches by count: full batches leave at once, the rest waits for the timer or the end', async (t) => {
  const transport = new ScriptedTransport()
  const { agent } = agentWith(t, transport, { batchSize: 10, flushMs: 60_000 })
  agent.start()
  for (const line of piFrames.slice(0, 25)) agent.push(line)
  await sleep(50)
  assert.deepEqual(transport.batches.map((batch) => batch.length), [10, 10], 'two full batches sent, 5 frames waiting')
  assert.equal(agent.queued, 5)
  const summary = await agent.finish()
  assert.deepEqual(transport.batches.map((batch) => batch.length), [10, 10, 5])
  assert.deepEqual(transport.batches.flat(), piFrames.slice(0, 25).map((line) => line.trim()), 'each frame once, in input order, as the raw line')
  assert.equal(summary.sent, 25)
  assert.equal(summary.read, 25)
})

test('batches by time: a partial batch leaves flushMs after its first frame', async (t) => {
  const transport = new ScriptedTransport()
  const { agent } = agentWith(t, transport, { batchSize: 100, flushMs: 150 })
  agent.start()
  const started = Date.now()
  for (const line of piFrames.slice(0, 3)) agent.push(line)
  await sleep(60)
  assert.equal(transport.batches.length, 0, 'nothing sent before flushMs')
  await sleep(250)
  assert.deepEqual(transport.batches.map((batch) => batch.length), [3])
  const waited = transport.sentAt[0] - started
  assert.ok(waited >= 140 && waited < 1000, `sent after ${waited} ms`)
  // a second trickle starts its own wait
  agent.push(piFrames[3])
  await sleep(40)
  assert.equal(transport.batches.length, 1)
  const summary = await agent.finish()
  assert.deepEqual(transport.batches.map((batch) => batch.length), [3, 1], 'the end of input sends the partial batch at once')
  assert.equal(summary.sent, 4)
})

test('lines that are not frames are skipped and counted, not fatal; ESP32 and Pi lines both pass', async (t) => {
  const transport = new ScriptedTransport()
  const { agent, logs } = agentWith(t, transport, { batchSize: 50 })
  agent.start()
  const bad = ['I (312) wifi: boot message', '[1, 2, 3]', 'CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,11,[101 -48 5', 'not, numbers, at, all', '[1, 2, 3]']
  const input = [bad[0], ...esp32Lines.slice(0, 5), bad[1], '', '   ', ...piFrames.slice(0, 5), bad[2], bad[3], bad[4], esp32Lines[5] + '\r']
  for (const line of input) agent.push(line)
  const summary = await agent.finish()
  assert.equal(summary.read, input.filter((line) => line.trim() !== '').length, 'blank lines are not counted')
  assert.equal(summary.skipped, 5)
  assert.equal(summary.sent, 11)
  assert.deepEqual(transport.batches.flat(), [...esp32Lines.slice(0, 5), ...piFrames.slice(0, 5), esp32Lines[5]].map((line) => line.trim()))
  const reasons = new Map(summary.skippedReasons.map(({ reason, count }) => [reason, count]))
  assert.equal(reasons.get('frame must hold 106 features, 108 raw Pi values or 128 raw ESP32 values, got 3'), 2)
  assert.equal(summary.skippedReasons[0].count, 2, 'most frequent reason first')
  assert.equal(logs.filter((line) => line.includes('skipped')).length, 3, 'only the first three skipped lines are quoted')
  assert.match(logs.find((line) => line.startsWith('line 1 '))!, /I \(312\) wifi/)
})

test('a batch the server did not take is sent again after backoff, never duplicated', async (t) => {
  const transport = new ScriptedTransport((frames, call) => call < 3
    ? { kind: 'retry', reason: call === 2 ? '503 Service Unavailable' : 'ECONNREFUSED' }
    : { kind: 'stored', accepted: frames.length, rejected: [] })
  const { agent, logs } = agentWith(t, transport, { batchSize: 20 })
  agent.start()
  for (const line of piFrames.slice(0, 50)) agent.push(line)
  const summary = await agent.finish()
  const storedCalls = transport.batches.map((_, call) => call).filter((call) => call >= 3)
  assert.deepEqual(transport.stored(storedCalls), piFrames.slice(0, 50).map((line) => line.trim()), 'every frame stored exactly once, in order')
  assert.equal(summary.sent, 50)
  assert.equal(summary.retries, 3)
  assert.equal(summary.dropped, 0)
  // the gaps between attempts follow the jittered backoff: ≥ 2.5, 5, 10 ms
  const gaps = transport.sentAt.slice(1, 4).map((at, i) => at - transport.sentAt[i])
  gaps.forEach((gap, attempt) => assert.ok(gap >= 5 * 2 ** attempt * 0.5 - 1, `gap ${attempt} was ${gap} ms`))
  assert.equal(logs.filter((line) => line.startsWith('server did not take')).length, 1, 'one message per outage, not per attempt')
  assert.ok(logs.some((line) => line.startsWith('server took frames again after 3 failed attempts')))
})

test('a batch is retried whole with its Idempotency-Key; every new batch gets a new key', async (t) => {
  const transport = new ScriptedTransport((frames, call) => call < 2
    ? { kind: 'retry', reason: 'ECONNRESET' }
    : { kind: 'stored', accepted: frames.length, rejected: [] })
  const { agent } = agentWith(t, transport, { batchSize: 5, flushMs: 0, backoff: { initialMs: 30, maxMs: 30, factor: 1, jitter: 0 } })
  agent.start()
  for (const line of piFrames.slice(0, 3)) agent.push(line)
  await sleep(10) // the first attempt failed: frames arriving now must not join the batch under its key
  for (const line of piFrames.slice(3, 7)) agent.push(line)
  const summary = await agent.finish()
  const lines = piFrames.slice(0, 7).map((line) => line.trim())
  assert.deepEqual(transport.batches, [lines.slice(0, 3), lines.slice(0, 3), lines.slice(0, 3), lines.slice(3, 7)])
  const [first, ...rest] = transport.keys
  assert.match(first ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a random UUID')
  assert.deepEqual(rest.slice(0, 2), [first, first], 'the same key on each retry')
  assert.notEqual(rest[2], first, 'the next batch is another request')
  assert.equal(summary.sent, 7)
  assert.equal(summary.retries, 2)
})

test('Retry-After from the server stretches the wait', async (t) => {
  const transport = new ScriptedTransport((frames, call) => call === 0
    ? { kind: 'retry', reason: '503', retryAfterMs: 120 }
    : { kind: 'stored', accepted: frames.length, rejected: [] })
  const { agent } = agentWith(t, transport)
  agent.start()
  agent.push(piFrames[0])
  await agent.finish()
  assert.equal(transport.batches.length, 2)
  assert.ok(transport.sentAt[1] - transport.sentAt[0] >= 115, `retried after ${transport.sentAt[1] - transport.sentAt[0]} ms`)
})

test('a 4xx batch is counted as rejected and not retried; per-frame rejections are counted', async (t) => {
  const transport = new ScriptedTransport((frames, call) => call === 0
    ? { kind: 'refused', status: 401, reason: '401 wrong device token' }
    : { kind: 'stored', accepted: frames.length - 1, rejected: [{ index: 0, reason: 'frame value 3 is not a finite number' }] })
  const { agent, logs } = agentWith(t, transport, { batchSize: 10 })
  agent.start()
  for (const line of piFrames.slice(0, 30)) agent.push(line)
  const summary = await agent.finish()
  assert.equal(transport.batches.length, 3, 'the refused batch was not sent again')
  assert.equal(summary.rejected, 10 + 2)
  assert.equal(summary.sent, 18)
  assert.equal(summary.retries, 0)
  assert.ok(logs.some((line) => line.includes('401 wrong device token')))
})

test('413: the batch is split until it fits; a single frame too large is rejected', async (t) => {
  const transport = new ScriptedTransport((frames) => frames.length > 4
    ? { kind: 'too-large', reason: '413 body too large' }
    : { kind: 'stored', accepted: frames.length, rejected: [] })
  const { agent } = agentWith(t, transport, { batchSize: 16 })
  agent.start()
  for (const line of piFrames.slice(0, 20)) agent.push(line)
  const summary = await agent.finish()
  assert.equal(summary.sent, 20)
  assert.equal(summary.rejected, 0)
  const stored = transport.batches.filter((batch) => batch.length <= 4)
  assert.deepEqual(stored.flat(), piFrames.slice(0, 20).map((line) => line.trim()), 'each frame once, in order')
  assert.deepEqual(transport.batches.slice(0, 3).map((batch) => batch.length), [16, 8, 4])

  const tiny = new ScriptedTransport(() => ({ kind: 'too-large', reason: '413' }))
  const single = agentWith(t, tiny, { batchSize: 2 })
  single.agent.start()
  single.agent.push(piFrames[0])
  const refused = await single.agent.finish()
  assert.equal(refused.rejected, 1)
  assert.equal(tiny.batches.length, 1)
})

test('a full queue drops the oldest frames and counts them while the server is away', async (t) => {
  let serverUp = false
  const transport = new ScriptedTransport((frames) => serverUp
    ? { kind: 'stored', accepted: frames.length, rejected: [] }
    : { kind: 'retry', reason: 'ECONNREFUSED' })
  const { agent, logs } = agentWith(t, transport, { batchSize: 5, flushMs: 0, queueCapacity: 10, backoff: { initialMs: 20, maxMs: 20, factor: 2, jitter: 0 } })
  agent.start()
  agent.push(piFrames[0])
  await sleep(5) // the first attempt fails: the agent now knows the server is away
  for (const line of piFrames.slice(1, 40)) {
    agent.push(line)
    assert.equal(agent.room(), undefined, 'inputs never wait while the server is away')
  }
  assert.equal(agent.stats.dropped, 30)
  assert.ok(logs.some((line) => line.startsWith('queue full (10 frames)')))
  serverUp = true
  const summary = await agent.finish()
  assert.equal(summary.sent, 10)
  assert.equal(summary.dropped, 30)
  assert.equal(summary.read, summary.sent + summary.dropped)
  const delivered = transport.batches.slice(-2).flat()
  assert.deepEqual(delivered, piFrames.slice(30, 40).map((line) => line.trim()), 'the newest frames are the ones kept')
})

test('while the server takes frames, a full queue makes the input wait instead of dropping', async (t) => {
  let release: () => void = () => {}
  const transport = new ScriptedTransport(async (frames) => {
    await new Promise<void>((resolve) => { release = resolve })
    return { kind: 'stored', accepted: frames.length, rejected: [] }
  })
  const { agent } = agentWith(t, transport, { batchSize: 4, queueCapacity: 4 })
  agent.start()
  for (const line of piFrames.slice(0, 4)) agent.push(line)
  await sleep(5) // the sender took the batch; it is in flight
  for (const line of piFrames.slice(4, 8)) agent.push(line)
  const wait = agent.room()
  assert.ok(wait, 'full queue, healthy server: the input waits')
  let roomy = false
  wait.then(() => { roomy = true }, () => {})
  await sleep(5)
  assert.equal(roomy, false)
  release() // the server answers; the sender takes the next batch
  await sleep(5)
  assert.equal(roomy, true)
  release()
  const finishing = agent.finish()
  await sleep(5)
  release()
  const summary = await finishing
  assert.equal(summary.sent, 8)
  assert.equal(summary.dropped, 0)
})

test('at the end, a server that never comes back costs the queued frames after the deadline', async (t) => {
  const transport = new ScriptedTransport(() => ({ kind: 'retry', reason: 'ECONNREFUSED' }))
  const { agent } = agentWith(t, transport, { batchSize: 3 })
  agent.start()
  for (const line of piFrames.slice(0, 7)) agent.push(line)
  const started = Date.now()
  const summary = await agent.finish(150)
  const took = Date.now() - started
  assert.ok(took >= 140 && took < 1000, `gave up after ${took} ms`)
  assert.equal(summary.sent, 0)
  assert.equal(summary.abandoned, 7)
  assert.equal(summary.dropped, 7)
  assert.ok(summary.retries >= 3)
})

test('keep-alives: one at start, then every period; failures counted; the timer stops at finish', async (t) => {
  const transport = new ScriptedTransport()
  const { agent, logs } = agentWith(t, transport, { keepAliveMs: 40 })
  agent.start()
  await sleep(10)
  assert.equal(transport.keepAlives, 1, 'sent on start')
  transport.keepAliveFails = true
  await sleep(110)
  const summary = await agent.finish()
  assert.ok(transport.keepAlives >= 3, `${transport.keepAlives} keep-alives`)
  assert.equal(summary.keepAlives, 1)
  assert.equal(summary.keepAliveFailures, transport.keepAlives - 1)
  assert.equal(logs.filter((line) => line.startsWith('keep-alive failed')).length, 1, 'one message per outage')
  const after = transport.keepAlives
  await sleep(100)
  assert.equal(transport.keepAlives, after, 'no keep-alive after finish')
})

test('inference mode hands each batch\'s results on in input order; a refused batch gets one error per frame', async (t) => {
  const transport = new ScriptedTransport((frames, call) => call === 1
    ? { kind: 'refused', status: 400, reason: '400 bad ID' }
    : { kind: 'stored', accepted: frames.length, rejected: [], results: frames.map((frame) => ({ angle: frame.length })) })
  const results: unknown[] = []
  const { agent } = agentWith(t, transport, { batchSize: 2, onResults: (batch) => results.push(...batch) })
  agent.start()
  for (const line of piFrames.slice(0, 5)) agent.push(line)
  const summary = await agent.finish()
  const lengths = piFrames.slice(0, 5).map((line) => line.trim().length)
  assert.deepEqual(results, [{ angle: lengths[0] }, { angle: lengths[1] }, { error: '400 bad ID' }, { error: '400 bad ID' }, { angle: lengths[4] }])
  assert.equal(summary.sent, 3)
  assert.equal(summary.rejected, 2)
})

test('the batch size is checked against the route\'s limit', () => {
  assert.throws(() => new Agent({ transport: new ScriptedTransport(), batchSize: 0 }), /batch size must be an integer 1\.\.4096, got 0/)
  assert.throws(() => new Agent({ transport: new ScriptedTransport(), batchSize: 5000 }), RangeError)
})

test('a queue smaller than the batch size sends full queues at once instead of waiting for the timer', async (t) => {
  const transport = new ScriptedTransport()
  const { agent } = agentWith(t, transport, { batchSize: 100, queueCapacity: 8, flushMs: 60_000 })
  agent.start()
  for (const line of piFrames.slice(0, 8)) agent.push(line)
  await sleep(30)
  assert.deepEqual(transport.batches.map((batch) => batch.length), [8])
  await agent.finish()
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import { MicroBatcher, gathers, type MicroBatcherOptions } from '../../../plugins/inference/micro-batcher.js'

/**
 * A plain classify function (the batcher is generic): each frame's answer is
 * the sum of its values, so every caller can check it got its own answers.
 */
interface SumBatch { version: string, predictions: number[] }
function summing (version = 'v1') {
  const calls: number[] = []
  const classify = (frames: readonly Float32Array[]): SumBatch => {
    calls.push(frames.length)
    return { version, predictions: frames.map((frame) => frame.reduce((a, b) => a + b, 0)) }
  }
  return { calls, classify }
}

let next = 0
/** Distinct frames: frame k sums to k. */
function frames (count: number): Float32Array[] {
  return Array.from({ length: count }, () => Float32Array.of(next++))
}
const sums = (list: Float32Array[]) => list.map((frame) => frame[0])

function batcher (classify: (frames: readonly Float32Array[]) => SumBatch, options: Partial<MicroBatcherOptions> = {}) {
  return new MicroBatcher(classify, { gather: true, maxBatch: 256, maxWaitMs: 0, maxQueue: 1000, ...options })
}

test('frames submitted in one event-loop turn go to the model in one call; each caller gets its own answers in order', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify)
  const requests = [frames(1), frames(3), frames(2), frames(1)]
  const shares = await Promise.all(requests.map((request) => subject.submit(request)))
  assert.deepEqual(calls, [7])
  shares.forEach((share, i) => {
    assert.deepEqual(share.predictions, sums(requests[i]))
    assert.equal(share.batch.version, 'v1')
  })
  assert.equal(subject.pending, 0)
  assert.equal(subject.scheduled, false)
})

test('a batch is sent as soon as maxBatch frames wait, without waiting for the turn to end', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { maxBatch: 4 })
  const requests = Array.from({ length: 10 }, () => frames(1))
  const pending = requests.map((request) => subject.submit(request))
  assert.deepEqual(calls, [4, 4], 'two full batches were sent synchronously')
  assert.equal(subject.pending, 2)
  const shares = await Promise.all(pending)
  assert.deepEqual(calls, [4, 4, 2])
  shares.forEach((share, i) => assert.deepEqual(share.predictions, sums(requests[i])))
})

test('whole requests are never split: a request that would overflow the batch goes in the next one', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { maxBatch: 4 })
  const requests = [frames(3), frames(3), frames(1)]
  const shares = await Promise.all(requests.map((request) => subject.submit(request)))
  assert.deepEqual(calls, [3, 4])
  shares.forEach((share, i) => assert.deepEqual(share.predictions, sums(requests[i])))
})

test('a request larger than maxBatch is classified in maxBatch chunks within one call of the batcher', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { maxBatch: 4 })
  const small = frames(1)
  const large = frames(10)
  const [smallShare, largeShare] = await Promise.all([subject.submit(small), subject.submit(large)])
  assert.deepEqual(calls, [1, 4, 4, 2])
  assert.deepEqual(smallShare.predictions, sums(small))
  assert.deepEqual(largeShare.predictions, sums(large))
})

test('while frames keep arriving each turn the batch keeps gathering (up to maxWaitMs); with maxWaitMs 0 it goes each turn', async () => {
  for (const maxWaitMs of [1000, 0]) {
    const { calls, classify } = summing()
    const subject = batcher(classify, { maxWaitMs })
    const first = [subject.submit(frames(1)), subject.submit(frames(1))]
    // arrives in the check phase right after the batcher's own setImmediate: a turn that brought a frame
    const later = new Promise((resolve) => setImmediate(() => resolve(subject.submit(frames(1)))))
    await Promise.all([...first, later])
    assert.deepEqual(calls, maxWaitMs ? [3] : [2, 1], `maxWaitMs ${maxWaitMs}`)
  }
})

test('under continuous arrivals a batch still goes once its oldest frame waited maxWaitMs', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { maxWaitMs: 5, maxBatch: 1_000_000, maxQueue: 1_000_000 })
  const started = performance.now()
  const pending: Array<Promise<unknown>> = []
  let sentAfter: number | undefined
  while (performance.now() - started < 200) {
    // two requests per turn: the turn that armed the batch also brought another frame
    pending.push(subject.submit(frames(1)), subject.submit(frames(1)))
    await nextTurn()
    if (sentAfter === undefined && calls.length > 0) sentAfter = performance.now() - started
  }
  await Promise.all(pending)
  assert.ok(sentAfter !== undefined && sentAfter < 150, `first batch after ${sentAfter} ms of a 200 ms stream (maxWaitMs 5)`)
  assert.ok(sentAfter >= 5, `first batch after ${sentAfter} ms, before the oldest frame waited 5 ms`)
  assert.ok(calls.length > 1 && Math.max(...calls) > 2, `batches ${calls.join(',')}: several, gathered over several turns`)
})

test('a full queue refuses the request with OverloadedError (503) and leaves the accepted ones alone', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { maxQueue: 5 })
  const accepted = subject.submit(frames(3))
  assert.throws(() => subject.submit(frames(3)), (err: Error & { statusCode?: number, code?: string }) => {
    assert.equal(err.statusCode, 503)
    assert.equal(err.code, 'DS_OVERLOADED')
    assert.match(err.message, /queue is full \(3 of 5 frames waiting\)/)
    return true
  })
  assert.throws(() => subject.submit(frames(6)), /6 frames exceed the inference queue of 5/)
  const fits = subject.submit(frames(2))
  assert.equal(subject.pending, 5)
  await Promise.all([accepted, fits])
  assert.deepEqual(calls, [5])
  // room again once the batch went
  await subject.submit(frames(5))
})

test('a classify error rejects every caller of that batch, and the next batch is unaffected', async () => {
  let fail = true
  const subject = batcher((list) => {
    if (fail) throw Object.assign(new Error('no model is active'), { statusCode: 503 })
    return { version: 'v2', predictions: list.map(() => 1) }
  })
  const results = await Promise.allSettled([subject.submit(frames(1)), subject.submit(frames(2))])
  assert.deepEqual(results.map((result) => result.status), ['rejected', 'rejected'])
  for (const result of results) assert.match(String((result as PromiseRejectedResult).reason), /no model is active/)
  fail = false
  assert.deepEqual((await subject.submit(frames(2))).predictions, [1, 1])
})

test('a classify answer of the wrong length rejects instead of misaligning answers', async () => {
  const subject = batcher(() => ({ version: 'v1', predictions: [1] }))
  await assert.rejects(subject.submit(frames(2)), /classify answered 1 predictions for 2 frames/)
})

test('close() answers the queued frames, clears its setImmediate and refuses new frames', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { maxWaitMs: 1000 })
  const queued = frames(3)
  const pending = subject.submit(queued)
  assert.equal(subject.scheduled, true)
  subject.close()
  assert.equal(subject.scheduled, false)
  assert.deepEqual((await pending).predictions, sums(queued))
  assert.deepEqual(calls, [3])
  assert.throws(() => subject.submit(frames(1)), (err: Error & { statusCode?: number }) => err.statusCode === 503 && /shutting down/.test(err.message))
  await sleep(5)
  assert.deepEqual(calls, [3], 'nothing ran after close')
})

test('close() rejects the queued frames when the model can no longer answer', async () => {
  const subject = batcher(() => { throw new Error('model disposed') })
  const pending = subject.submit(frames(2))
  subject.close()
  await assert.rejects(pending, /model disposed/)
  assert.equal(subject.scheduled, false)
})

test('rejects bad options and empty submissions', () => {
  const { classify } = summing()
  assert.throws(() => batcher(classify, { maxBatch: 0 }), /maxBatch/)
  assert.throws(() => batcher(classify, { maxWaitMs: -1 }), /maxWaitMs/)
  assert.throws(() => batcher(classify, { maxQueue: 0 }), /maxQueue/)
  assert.throws(() => batcher(classify).submit([]), /at least one frame/)
})

test('not gathering, each submit is classified at once (in maxBatch chunks), nothing is scheduled, and the answers are the same', async () => {
  const { calls, classify } = summing()
  const subject = batcher(classify, { gather: false, maxBatch: 4 })
  const requests = [frames(1), frames(3), frames(10)]
  const pending = requests.map((request) => subject.submit(request))
  assert.deepEqual(calls, [1, 3, 4, 4, 2], 'classified inside submit, one request per call, a big one in maxBatch chunks')
  assert.equal(subject.scheduled, false)
  assert.equal(subject.pending, 0)
  const shares = await Promise.all(pending)
  shares.forEach((share, i) => assert.deepEqual(share.predictions, sums(requests[i])))
  subject.close()
  assert.throws(() => subject.submit(frames(1)), /shutting down/)
})

test('INFER_GATHER auto gathers on a native backend only; always and never are what they say', () => {
  assert.equal(gathers('auto', 'cpu'), false)
  assert.equal(gathers('auto', 'tensorflow'), true)
  assert.equal(gathers('always', 'cpu'), true)
  assert.equal(gathers('never', 'tensorflow'), false)
})

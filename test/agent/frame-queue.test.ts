import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FrameQueue } from '../../agent/frame-queue.js'

test('items come out oldest first, across the ring\'s wrap-around', () => {
  const queue = new FrameQueue<number>(4)
  for (const item of [1, 2, 3]) queue.push(item)
  assert.deepEqual(queue.take(2), [1, 2])
  for (const item of [4, 5, 6]) queue.push(item)
  assert.equal(queue.length, 4)
  assert.ok(queue.full)
  assert.deepEqual(queue.take(10), [3, 4, 5, 6])
  assert.equal(queue.length, 0)
  assert.deepEqual(queue.take(1), [])
  assert.equal(queue.dropped, 0)
})

test('a full queue drops its oldest item, returns it and counts it', () => {
  const queue = new FrameQueue<string>(3)
  for (const item of ['a', 'b', 'c']) assert.equal(queue.push(item), undefined)
  assert.equal(queue.push('d'), 'a')
  assert.equal(queue.push('e'), 'b')
  assert.equal(queue.dropped, 2)
  assert.deepEqual(queue.take(3), ['c', 'd', 'e'])
})

test('unshift puts a batch back in front, keeping its newest items when room is short', () => {
  const queue = new FrameQueue<number>(5)
  for (const item of [1, 2, 3, 4]) queue.push(item)
  const batch = queue.take(3)
  assert.equal(queue.unshift(batch), 0)
  assert.deepEqual(queue.take(5), [1, 2, 3, 4])

  for (const item of [1, 2, 3]) queue.push(item)
  const inFlight = queue.take(3)
  for (const item of [4, 5, 6, 7]) queue.push(item) // arrived while the batch was away
  assert.equal(queue.unshift(inFlight), 2) // room for one: the oldest two go
  assert.equal(queue.dropped, 2)
  assert.deepEqual(queue.take(5), [3, 4, 5, 6, 7])
})

test('the capacity must be a positive integer', () => {
  assert.throws(() => new FrameQueue(0), /capacity must be an integer ≥ 1, got 0/)
  assert.throws(() => new FrameQueue(2.5), RangeError)
})

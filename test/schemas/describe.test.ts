import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeValue } from '../../schemas/describe.js'

test('error messages quote values briefly and never throw', () => {
  assert.equal(describeValue([1, 2]), '[1,2]')
  assert.equal(describeValue('abc'), '"abc"')
  assert.equal(describeValue(null), 'null')
  assert.equal(describeValue('x'.repeat(100)), `"${'x'.repeat(39)}…`)
  let deep: unknown[] = []
  for (let i = 0; i < 200_000; i++) deep = [deep]
  assert.equal(describeValue(deep), 'an array')
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  assert.equal(describeValue(cycle), 'an object')
})

test('a quoted value escapes what could garble the message', () => {
  assert.equal(describeValue('a\u202Eb\u0085'), '"a\\u202eb\\u0085"')
  assert.equal(describeValue('x'.repeat(100)).length, 41)
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  assert.equal(describeValue(cycle), 'an object')
})

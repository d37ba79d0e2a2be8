import { test } from 'node:test'
import assert from 'node:assert/strict'
import { epochProgress, parseOptions, UsageError } from '../../bin/commands/command-line.js'

test('parseOptions takes named options and refuses unknown ones and positionals as usage errors', () => {
  assert.deepEqual({ ...parseOptions(['--data', 'x.csv', '--json'], { data: { type: 'string' }, json: { type: 'boolean' } }) }, { data: 'x.csv', json: true })
  assert.throws(() => parseOptions(['--nope'], { data: { type: 'string' } }), (err) => err instanceof UsageError && /--nope/.test(err.message))
  assert.throws(() => parseOptions(['stray'], { data: { type: 'string' } }), UsageError)
})

test('epochProgress writes a line per tenth off a terminal, and redraws one bar on a terminal', () => {
  let plain = ''
  const lines = epochProgress({ write: (text) => { plain += text } }, ': ')
  for (let epoch = 1; epoch <= 20; epoch++) lines.show(epoch, 20, `loss ${epoch}`)
  lines.end()
  assert.deepEqual(plain.trim().split('\n'), [2, 4, 6, 8, 10, 12, 14, 16, 18, 20].map((epoch) => `epoch ${epoch}/20: loss ${epoch}`))

  let tty = ''
  const bar = epochProgress({ write: (text) => { tty += text }, isTTY: true })
  bar.show(1, 2, 'a')
  bar.show(2, 2, 'b')
  bar.end()
  assert.equal(tty, `\r[${'#'.repeat(15)}${'.'.repeat(15)}] epoch 1/2 a\x1b[K\r[${'#'.repeat(30)}] epoch 2/2 b\x1b[K\n`)
})

test('epochProgress off a terminal still writes a line when a polled run skips the epoch that ends a tenth', () => {
  let plain = ''
  const lines = epochProgress({ write: (text) => { plain += text } })
  for (const epoch of [3, 4, 7, 20]) lines.show(epoch, 20, 'x')
  assert.deepEqual(plain.trim().split('\n'), ['epoch 3/20 x', 'epoch 4/20 x', 'epoch 7/20 x', 'epoch 20/20 x'])
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { jsonNesting, MAX_JSON_DEPTH } from '../../core/json-body.js'
import { ADMIN, buildTestApp } from '../helper.js'

const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)

test('nesting is counted on the raw text, strings and escapes skipped, and stops counting past the limit', () => {
  assert.equal(jsonNesting('{"a":[1,[2,{"b":3}]]}'), 4)
  assert.equal(jsonNesting('["[[[", "\\"[[[", "\\\\"]'), 1, 'brackets inside strings do not count, nor do escaped quotes end them')
  assert.equal(jsonNesting('12'), 0)
  assert.equal(jsonNesting(nested(100_000), MAX_JSON_DEPTH), MAX_JSON_DEPTH + 1, 'it gives up as soon as the limit is passed')
})

/** The nesting count as it was first written, a character at a time: what the faster scan must agree with. */
function nestingByCharacter (text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return deepest
}

test('the scan from bracket to bracket counts what a scan of every character counts, on any text (strings, escapes, unterminated ones)', () => {
  const piece = fc.constantFrom('[', ']', '{', '}', '"', '\\', '\\"', '\\\\', 'a', '1,', ' ', '[[[', '"x"', ':')
  fc.assert(fc.property(fc.array(piece, { maxLength: 80 }).map((pieces) => pieces.join('')), fc.integer({ min: 0, max: 6 }), (text, limit) => {
    assert.equal(jsonNesting(text, limit), nestingByCharacter(text, limit), text)
  }), { numRuns: 5000 })
  for (const text of ['{"a":"\\\\"}[', '"\\\\\\"[', '["\\u005b", [[]]]', '"unterminated [[[']) assert.equal(jsonNesting(text), nestingByCharacter(text), text)
})

test('a body nested thousands of levels deep is a 400 naming the problem on every JSON route, never a 500', async (t) => {
  const app = await buildTestApp(t)
  const deep = nested(100_000)
  const cases = [
    { url: '/server/post/frames', payload: `{"ID":1,"frames":[${deep}]}` },
    { url: '/ml/post/batch', payload: `{"ID":1,"frames":[${deep}]}` },
    { url: '/ml/post/inference', payload: `{"ID":1,"payload":${deep}}` },
    { url: '/training/post/samples', payload: `{"samples":[{"angle":0,"frame":${deep}}]}` },
    { url: '/debug/post/echo', payload: deep },
    { url: '/doors/1/calibration/capture', payload: `{"angle":${deep}}` }
  ]
  for (const { url, payload } of cases) {
    const response = await app.inject({ method: 'POST', url, headers: { ...ADMIN, 'content-type': 'application/json' }, payload })
    assert.equal(response.statusCode, 400, `${url}: ${response.body.slice(0, 200)}`)
    assert.match(response.json().message, new RegExp(`more than ${MAX_JSON_DEPTH} levels deep`), url)
  }
  // the deepest real body, the legacy train DATA[type][angle][subcarrier][points], still parses
  const legacy = await app.inject({ method: 'POST', url: '/debug/post/echo', payload: { DATA: [[[[1]]]] } })
  assert.equal(legacy.statusCode, 200)
  // and a frame nested just under the limit is a frame error that quotes it briefly
  const shallow = await app.inject({
    method: 'POST',
    url: '/server/post/frames',
    payload: `{"ID":1,"frames":[${nested(30)}]}`,
    headers: { 'content-type': 'application/json' }
  })
  assert.equal(shallow.statusCode, 400)
  assert.ok(shallow.json().message.length < 300, shallow.json().message)
})

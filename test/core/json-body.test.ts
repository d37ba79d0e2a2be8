import { test } from 'node:test'
import assert from 'node:assert/strict'
import { jsonNesting, MAX_JSON_DEPTH } from '../../core/json-body.js'
import { ADMIN, buildTestApp } from '../helper.js'

const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)

test('nesting is counted on the raw text, strings and escapes skipped, and stops counting past the limit', () => {
  assert.equal(jsonNesting('{"a":[1,[2,{"b":3}]]}'), 4)
  assert.equal(jsonNesting('["[[[", "\\"[[[", "\\\\"]'), 1, 'brackets inside strings do not count, nor do escaped quotes end them')
  assert.equal(jsonNesting('12'), 0)
  assert.equal(jsonNesting(nested(100_000), MAX_JSON_DEPTH), MAX_JSON_DEPTH + 1, 'it gives up as soon as the limit is passed')
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

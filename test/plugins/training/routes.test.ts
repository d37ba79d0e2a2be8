import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import type { App } from '../../../core/app.js'
import type { DatasetSummary } from '../../../schemas/training.js'
import { ADMIN, buildTestApp, RPI_RAW_FRAMES, SESSION_A_CSV } from '../../helper.js'
import { sessionCsv, sessionSlice } from '../../fixtures/training.js'
import { OWN_TRANSACTION } from '../../../core/store-transaction.js'

const CSV = { ...ADMIN, 'content-type': 'text/csv' }

async function dataset (app: App): Promise<DatasetSummary> {
  return (await app.inject({ method: 'GET', url: '/training/get/dataset' })).json<DatasetSummary>()
}

test('POST /training/post/import stores a session CSV in one go and answers the counts', async (t) => {
  const app = await buildTestApp(t)
  const slice = sessionSlice(12)
  const response = await app.inject({ method: 'POST', url: '/training/post/import?ID=7', headers: CSV, payload: sessionCsv(slice) })
  assert.equal(response.statusCode, 200, response.body)
  const { importId, contentSha256, ...counts } = response.json()
  assert.deepEqual(counts, {
    imported: 84,
    lines: 85,
    labels: [0, 15, 30, 45, 60, 75, 90].map((angle) => ({ angle, count: 12 }))
  })
  assert.equal(importId, 1)
  assert.match(contentSha256, /^[0-9a-f]{64}$/)
  const summary = await dataset(app)
  assert.equal(summary.total, 84)
  assert.deepEqual(summary.sources, [{ source: 'import', count: 84 }])
  assert.deepEqual(summary.devices, [{ device: 7, count: 84 }])
  // the stored features are the file's, bit for bit, in file order
  const stored = app.storage.db.prepare('SELECT angle, features FROM training_samples ORDER BY id').all() as Array<{ angle: number, features: Buffer }>
  assert.deepEqual(stored.map((row) => row.angle), slice.map((row) => row.angle))
  assert.deepEqual(new Float32Array(new Uint8Array(stored[5].features).buffer), slice[5].features)

  // CRLF line ends and a streamed body (no content-length) read the same
  const crlf = Readable.from([sessionCsv(sessionSlice(2)).replace(/\n/g, '\r\n')])
  const streamed = await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: crlf })
  assert.equal(streamed.statusCode, 200, streamed.body)
  assert.equal(streamed.json().imported, 14)
  assert.equal((await dataset(app)).total, 98)
})

test('a CSV with bad lines is rejected naming each line, and nothing of it is stored', async (t) => {
  const app = await buildTestApp(t)
  const lines = sessionCsv(sessionSlice(3)).split('\n')
  lines[4] = lines[4].replace(/^(\d+),([\d.]+),/, '$1,oops,')
  lines[9] = lines[9].split(',').slice(0, 50).join(',')
  lines[13] = lines[13].replace(/^\d+,/, '120,')
  lines[16] = lines[16].replace(/,[^,]+$/, ',1e20')
  const response = await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: lines.join('\n') })
  assert.equal(response.statusCode, 400)
  const { message, code } = response.json<{ message: string, code: string }>()
  assert.equal(code, 'DS_BAD_REQUEST')
  assert.match(message, new RegExp(
    String.raw`nothing imported: 4 bad lines: line 5: CH6_mag is not a finite number \(got "oops"\); line 10: expected 107 values, got 50; ` +
    String.raw`line 14: Label: angle must lie in 0\.\.90 degrees, got 120; ` +
    String.raw`line 17: CH58_phase is 100000000000000000000: phases lie in -3\.142\.\.3\.142 radians`
  ))
  assert.equal((await dataset(app)).total, 0)

  const many = sessionCsv(sessionSlice(3)).split('\n').map((line, i) => i > 0 && line !== '' ? `x${line}` : line)
  const manyBad = await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: many.join('\n') })
  assert.equal(manyBad.statusCode, 400)
  assert.match(manyBad.json().message, /21 bad lines: line 2: .*; and 11 more$/)

  const header = await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: 'Label,foo\n0,1\n' })
  assert.match(header.json().message, /line 1: header must have 107 columns/)
  // a column dropped from the header is named
  const [head, ...body] = sessionCsv(sessionSlice(1)).split('\n')
  const dropped = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: CSV,
    payload: [head!.replace(',CH30_phase', ''), ...body].join('\n')
  })
  assert.match(dropped.json().message, /line 1: header must have 107 columns \(.*\), got 106: missing CH30_phase$/)
  const label = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: CSV,
    payload: [head, body[0]!.replace(/^\d+,/, 'closed,')].join('\n')
  })
  assert.match(label.json().message, /line 2: Label must be the door angle in degrees \(0 = closed … 90 = wide open\), got "closed"$/)
  const empty = await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: '' })
  assert.equal(empty.statusCode, 400)
  assert.match(empty.json().message, /file is empty/)
  assert.equal((await dataset(app)).total, 0)
})

test('the import wants text/csv, an admin token, and a body within IMPORT_BODY_LIMIT', async (t) => {
  const app = await buildTestApp(t, { IMPORT_BODY_LIMIT: '20000' })
  const csv = sessionCsv(sessionSlice(5))
  assert.ok(Buffer.byteLength(csv) > 20000)
  const tooLarge = await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: csv })
  assert.equal(tooLarge.statusCode, 413)
  assert.match(tooLarge.json().message, /exceeds IMPORT_BODY_LIMIT \(20000 bytes\)/)
  const tooLargeStreamed = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: CSV,
    payload: Readable.from([csv.slice(0, 15000), csv.slice(15000)])
  })
  assert.equal(tooLargeStreamed.statusCode, 413)
  assert.equal((await dataset(app)).total, 0)

  const small = sessionCsv(sessionSlice(1))
  const noToken = await app.inject({ method: 'POST', url: '/training/post/import', headers: { 'content-type': 'text/csv' }, payload: small })
  assert.equal(noToken.statusCode, 401)
  // any other type is a 415 naming the one to send, whatever the body's size: a CSV sent as JSON
  // met the JSON parser (a 400 for bad JSON, or a misleading 413 past BODY_LIMIT)
  const wrongTypes: Array<[string, Record<string, string>, string | object]> = [
    ['a JSON body', ADMIN, { csv: small }],
    ['a small CSV as JSON', { ...ADMIN, 'content-type': 'application/json' }, small],
    ['session A as JSON (past BODY_LIMIT)', { ...ADMIN, 'content-type': 'application/json' }, readFileSync(SESSION_A_CSV, 'utf8')],
    ['a CSV as text/plain', { ...ADMIN, 'content-type': 'text/plain' }, small]
  ]
  for (const [what, headers, payload] of wrongTypes) {
    const wrong = await app.inject({ method: 'POST', url: '/training/post/import', headers, payload })
    assert.equal(wrong.statusCode, 415, what)
    assert.equal(wrong.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', what)
    assert.match(wrong.json().message, new RegExp(
      String.raw`^unsupported Content-Type "(application\/json|text\/plain)": POST \/training\/post\/import takes text\/csv ` +
      String.raw`\(e\.g\. curl --data-binary @session\.csv -H 'content-type: text\/csv'\)$`
    ), what)
  }
  // the token is checked first
  assert.equal((await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { 'content-type': 'application/json' },
    payload: small
  })).statusCode, 401)
  // text/csv with a charset is text/csv
  const charset = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv; charset=utf-8' },
    payload: small
  })
  assert.equal(charset.statusCode, 200, charset.body)
  assert.equal((await dataset(app)).total, charset.json().imported)
})

test('POST /training/post/samples takes labelled frames in every encoding, all or nothing', async (t) => {
  const app = await buildTestApp(t)
  const [row] = sessionSlice(1, 50)
  const rawPi = JSON.parse(readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n')[0]) as number[]
  const ok = await app.inject({
    method: 'POST',
    url: '/training/post/samples',
    headers: ADMIN,
    payload: {
      ID: 3,
      samples: [
        { angle: 0, frame: Array.from(row.features) },
        { angle: 15, frame: `[${Array.from(row.features).join(', ')}]` },
        { angle: 90, frame: rawPi, ID: 4 }
      ]
    }
  })
  assert.equal(ok.statusCode, 200, ok.body)
  assert.deepEqual(ok.json(), { stored: 3, labels: [{ angle: 0, count: 1 }, { angle: 15, count: 1 }, { angle: 90, count: 1 }] })
  const summary = await dataset(app)
  assert.deepEqual(summary.devices, [{ device: 3, count: 2 }, { device: 4, count: 1 }])
  assert.deepEqual(summary.sources, [{ source: 'samples', count: 3 }])

  const bad = await app.inject({
    method: 'POST',
    url: '/training/post/samples',
    headers: ADMIN,
    payload: { samples: [{ angle: 30, frame: Array.from(row.features) }, { angle: 30, frame: Array.from(row.features).slice(0, 104) }] }
  })
  assert.equal(bad.statusCode, 400)
  assert.equal(bad.json().code, 'DS_BAD_FRAME')
  assert.match(bad.json().message, /^samples\[1\]\.frame: frame must hold 106 features.*got 104/)
  const badAngle = await app.inject({
    method: 'POST',
    url: '/training/post/samples',
    headers: ADMIN,
    payload: { samples: [{ angle: 135, frame: Array.from(row.features) }] }
  })
  assert.equal(badAngle.statusCode, 400)
  assert.match(badAngle.json().message, /angle/)
  assert.equal((await dataset(app)).total, 3)
})

test('a capture session labels one device\'s next frames until its time is up', async (t) => {
  const app = await buildTestApp(t)
  const frames = sessionSlice(1, 80).map((row) => row.features)
  assert.equal(await app.captures.recordWithin(OWN_TRANSACTION, 5, frames, 'frames'), 0, 'no session: nothing stored')
  const missing = await app.inject({ method: 'GET', url: '/training/get/capture/5' })
  assert.equal(missing.statusCode, 404)

  const noToken = await app.inject({ method: 'POST', url: '/training/post/capture', payload: { ID: 5, angle: 45, seconds: 1 } })
  assert.equal(noToken.statusCode, 401)
  const opened = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: { ID: 5, angle: 45, seconds: 0.6 } })
  assert.equal(opened.statusCode, 200, opened.body)
  assert.equal(opened.json().active, true)
  assert.equal(opened.json().framesStored, 0)
  const again = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: { ID: 5, angle: 60, seconds: 5 } })
  assert.equal(again.statusCode, 409)
  assert.match(again.json().message, /device 5 is already being captured at 45°/)

  assert.equal(await app.captures.recordWithin(OWN_TRANSACTION, 5, frames, 'frames'), 7)
  assert.equal(await app.captures.recordWithin(OWN_TRANSACTION, 6, frames, 'frames'), 0, 'another device is not captured')
  // through the Pi's own route too
  const posted = await app.inject({
    method: 'POST',
    url: '/server/post/frames',
    payload: { ID: 5, frames: frames.slice(0, 2).map((frame) => Array.from(frame)) }
  })
  assert.equal(posted.statusCode, 200, posted.body)
  const progress = await app.inject({ method: 'GET', url: '/training/get/capture/5' })
  assert.equal(progress.json().framesStored, 9)
  assert.ok(progress.json().secondsLeft > 0 && progress.json().secondsLeft <= 0.6)

  await new Promise((resolve) => setTimeout(resolve, 700))
  assert.equal(await app.captures.recordWithin(OWN_TRANSACTION, 5, frames, 'frames'), 0, 'the session is over')
  const ended = (await app.inject({ method: 'GET', url: '/training/get/capture/5' })).json()
  assert.equal(ended.active, false)
  assert.equal(ended.secondsLeft, 0)
  assert.equal(ended.framesStored, 9)
  const summary = await dataset(app)
  assert.deepEqual(summary.labels, [{ angle: 45, count: 9 }])
  assert.deepEqual(summary.devices, [{ device: 5, count: 9 }])
  assert.deepEqual(summary.sources, [{ source: 'frames', count: 9 }])
  // a new session may start once the old one is over
  const next = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: { ID: 5, angle: 60, seconds: 30 } })
  assert.equal(next.statusCode, 200)
})

/** A legacy CSI DATA block for `rows`: DATA[type][angle index][subcarrier][point]. */
function legacyCsi (perAngle: number, angles = 7): number[][][][] {
  const slice = sessionSlice(perAngle)
  const data: number[][][][] = [[], []]
  for (let a = 0; a < angles; a++) {
    const rows = slice.filter((row) => row.angle === a * 15)
    data[0].push(Array.from({ length: 53 }, (_, k) => rows.map((row) => row.features[53 + k])))
    data[1].push(Array.from({ length: 53 }, (_, k) => rows.map((row) => row.features[k])))
  }
  return data
}

test('legacy DATA that breaks the layout is a 400 naming the spot, and nothing is stored or trained', async (t) => {
  const app = await buildTestApp(t)
  const train = (payload: unknown) => app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: payload as object })
  const cases: Array<[string, (data: number[][][][]) => unknown, RegExp]> = [
    ['52 subcarriers', (data) => { data[1][2].pop(); return data }, /DATA\[1\]\[2\] must hold 53 subcarriers \(CH6 … CH58\), got 52/],
    ['one data type', (data) => [data[0]], /DATA must hold 2 data types \(0 = phase, 1 = amplitude\)/],
    ['angles without subcarriers (one level missing)', (data) => [data[0].map((angle) => angle[0]), data[1].map((angle) => angle[0])],
      /DATA\[0\]\[0\] must hold 53 subcarriers/],
    ['points as numbers (wrong nesting)', (data) => { (data[0][1] as unknown[])[4] = 1.5; return data }, /DATA\[0\]\[1\]\[4\] must be a list.*wrong nesting\?/],
    ['a NaN (null in JSON)', (data) => { (data[1][3][10] as unknown[])[2] = null; return data }, /DATA\[1\]\[3\]\[10\]\[2\] must be a finite number, got null/],
    ['a "NaN" string', (data) => { (data[0][0][0] as unknown[])[0] = 'NaN'; return data }, /DATA\[0\]\[0\]\[0\]\[0\] must be a finite number, got "NaN"/],
    ['ragged points', (data) => { data[0][5][7].pop(); return data }, /DATA\[0\]\[5\]\[7\] holds 11 points but DATA\[0\]\[5\]\[0\] holds 12/],
    ['phase and amplitude of different lengths', (data) => { data[1].pop(); return data },
      /DATA\[0\] \(phase\) holds 7 door angles but DATA\[1\] \(amplitude\) holds 6/],
    ['8 angles', (data) => { data[0].push(data[0][0]); data[1].push(data[1][0]); return data }, /holds 8 door angles; index i means i × 15°, so at most 7/]
  ]
  for (const [name, breakIt, expected] of cases) {
    const response = await train({ TYPE: 'CSI', DATA: breakIt(legacyCsi(12)) })
    assert.equal(response.statusCode, 400, `${name}: ${response.body}`)
    assert.match(response.json().message, expected, name)
  }
  const rssi = await train({ TYPE: 'RSSI', DATA: [[-40, -41], -42] })
  assert.equal(rssi.statusCode, 400)
  assert.match(rssi.json().message, /DATA\[1\] must be a list \(layout DATA\[DOOR_ANGLE\]\[POINTS\]\)/)
  const noType = await train({ DATA: [[1]] })
  assert.match(noType.json().message, /DATA needs TYPE/)
  const noData = await train({ TYPE: 'CSI' })
  assert.match(noData.json().message, /TYPE CSI needs DATA/)
  const wrongType = await train({ TYPE: 'WIFI', DATA: [] })
  assert.equal(wrongType.statusCode, 400)
  const contradiction = await train({ TYPE: 'RSSI', kind: 'csi', DATA: [[1]] })
  assert.match(contradiction.json().message, /kind "csi" contradicts TYPE RSSI/)
  // Python's json.dumps writes a bare NaN, which is not JSON
  const bareNaN = await app.inject({
    method: 'POST',
    url: '/training/post/train',
    headers: { ...ADMIN, 'content-type': 'application/json' },
    payload: '{"TYPE": "RSSI", "DATA": [[NaN]]}'
  })
  assert.equal(bareNaN.statusCode, 400)
  // too few points per angle: the layout is right, the dataset too small
  const tooFew = await train({ TYPE: 'CSI', DATA: legacyCsi(3) })
  assert.equal(tooFew.statusCode, 400)
  assert.match(tooFew.json().message, /at least 10 samples per door angle/)

  assert.equal((await dataset(app)).total, 0)
  assert.equal(app.model.state, 'MODEL_DOESNT_EXIST')
})

test('training on the stored dataset needs enough samples and an admin; status and the other reads answer before any training', async (t) => {
  const app = await buildTestApp(t)
  const noToken = await app.inject({ method: 'POST', url: '/training/post/train', payload: {} })
  assert.equal(noToken.statusCode, 401)
  const empty = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN })
  assert.equal(empty.statusCode, 400)
  assert.match(empty.json().message, /at least 2 door angles; the csi dataset has no samples: add samples of the door closed \(0°\) and open \(e\.g\. 90°\)/)
  await app.inject({ method: 'POST', url: '/training/post/import', headers: CSV, payload: sessionCsv(sessionSlice(12).filter((row) => row.angle < 30)) })
  const badOption = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { epochs: 0 } })
  assert.equal(badOption.statusCode, 400)
  assert.match(badOption.json().message, /epochs/)
  const unknownOption = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { architecture: 'transformer' } })
  assert.equal(unknownOption.statusCode, 400)

  const status = await app.inject({ method: 'GET', url: '/training/get/training_status' })
  assert.equal(status.statusCode, 200)
  assert.match(status.headers['content-type'] as string, /^text\/plain/)
  assert.equal(status.body, 'MODEL_DOESNT_EXIST')
  assert.equal((await app.inject({ method: 'GET', url: '/training/get/training_time' })).body, '0')
  assert.deepEqual((await app.inject({ method: 'GET', url: '/training/get/progress' })).json(),
    { state: 'MODEL_DOESNT_EXIST', epoch: 0, epochs: 0, elapsedSeconds: 0 })
  assert.deepEqual((await app.inject({ method: 'GET', url: '/training/get/models' })).json(), { active: null, versions: [] })
  const evaluation = await app.inject({ method: 'GET', url: '/training/get/evaluation' })
  assert.equal(evaluation.statusCode, 404)
  assert.match(evaluation.json().message, /no model is active yet/)
  const activate = await app.inject({ method: 'POST', url: '/training/post/activate', headers: ADMIN, payload: { version: 'csi-20250101-000000-000' } })
  assert.equal(activate.statusCode, 404)
  const download = await app.inject({ method: 'GET', url: '/training/get/model/csi-20250101-000000-000/model.json' })
  assert.equal(download.statusCode, 404)
  const traversal = await app.inject({ method: 'GET', url: '/training/get/model/..%2F..%2Fetc/model.json' })
  assert.equal(traversal.statusCode, 400)
  const rssiDataset = (await app.inject({ method: 'GET', url: '/training/get/dataset?kind=rssi' })).json()
  assert.deepEqual(rssiDataset, { kind: 'rssi', total: 0, labels: [], sources: [], devices: [] })
})

test('a stray label blocks training until POST /training/post/delete_samples removes it; deletes need a filter and an admin', async (t) => {
  const app = await buildTestApp(t)
  const imported = await app.inject({ method: 'POST', url: '/training/post/import?ID=3', headers: CSV, payload: sessionCsv(sessionSlice(12)) })
  assert.equal(imported.statusCode, 200, imported.body)
  const stray = sessionSlice(1)[0]
  const posted = await app.inject({
    method: 'POST',
    url: '/training/post/samples',
    headers: ADMIN,
    payload: { ID: 4, samples: [{ angle: 33, frame: Array.from(stray.features) }] }
  })
  assert.equal(posted.statusCode, 200, posted.body)

  const blocked = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: {} })
  assert.equal(blocked.statusCode, 400)
  assert.match(blocked.json().message, new RegExp(
    String.raw`too few for 33° \(1\): add at least 9 more of 33°, or remove that angle's samples ` +
    String.raw`\(samples are added with POST \/training\/post\/import or \/training\/post\/samples, removed with POST \/training\/post\/delete_samples\)$`
  ))

  const unauthorised = await app.inject({ method: 'POST', url: '/training/post/delete_samples', payload: { angle: 33 } })
  assert.equal(unauthorised.statusCode, 401)
  const unfiltered = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: {} })
  assert.equal(unfiltered.statusCode, 400)
  assert.match(unfiltered.json().message, /angle, source or device/)
  const badSource = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { source: 'nowhere' } })
  assert.equal(badSource.statusCode, 400)
  assert.equal((await dataset(app)).total, 85)

  // filters combine: angle 33 from device 3 matches nothing
  const none = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { angle: 33, device: 3 } })
  assert.equal(none.json().deleted, 0)
  const removed = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { angle: 33 } })
  assert.equal(removed.statusCode, 200, removed.body)
  assert.equal(removed.json().deleted, 1)
  assert.deepEqual(removed.json<{ dataset: DatasetSummary }>().dataset.labels.map((label) => label.angle), [0, 15, 30, 45, 60, 75, 90])

  const bySource = await app.inject({
    method: 'POST',
    url: '/training/post/delete_samples',
    headers: ADMIN,
    payload: { source: 'import', device: 3, angle: 90 }
  })
  assert.equal(bySource.json().deleted, 12)
  const everything = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { all: true } })
  assert.equal(everything.json().deleted, 72)
  assert.equal((await dataset(app)).total, 0)
})

test('training on the stored dataset reads its samples in the run, not in the route: the answer counts them, the run reads what is there when it starts', async (t) => {
  const app = await buildTestApp(t)
  const csv = (perLabel: number, skip: number) => app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(perLabel, skip))
  })
  assert.equal((await csv(30, 0)).statusCode, 200)
  const train = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { epochs: 2, seed: 1 } })
  assert.equal(train.statusCode, 202, train.body)
  assert.equal(train.json().samples, 7 * 30, 'counted in the route')
  // the run's worker takes a moment to load TensorFlow.js: samples stored meanwhile are read by it
  assert.equal((await csv(10, 100)).statusCode, 200)
  await app.model.waitForTraining()
  assert.equal(app.model.state, 'FINISHED_TRAINING', app.model.lastFailure?.message)
  const evaluation = (await app.model.evaluation())?.evaluation
  assert.ok(evaluation)
  assert.equal(evaluation.trainRows + evaluation.testRows, 7 * 40, 'the run read the rows itself, when it started')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { InjectOptions } from 'fastify'
import type { App } from '../../core/app.js'
import { closestName, editDistance } from '../../core/did-you-mean.js'
import { checkDecimalInteger, checkPrintableText } from '../../core/strict-input.js'
import { describeValue } from '../../schemas/describe.js'
import { stringified } from '../fixtures/frames.js'
import { sessionSlice } from '../fixtures/training.js'
import { ADMIN, buildTestApp } from '../helper.js'

const row = sessionSlice(1)[0]
const frame = Array.from(row.features)

/** Rows of every table, so "nothing was stored" holds whatever table a route writes. */
function tableCounts (app: App): Record<string, number> {
  const tables = app.storage.db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'")
    .all() as Array<{ name: string }>
  return Object.fromEntries(tables.map(({ name }) => [name, (app.storage.db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n]))
}

/** The message of a 400, after checking the status and the one error shape. */
async function refused (app: App, options: InjectOptions, what: string): Promise<string> {
  const response = await app.inject(options)
  assert.equal(response.statusCode, 400, `${what}: ${response.body}`)
  const body = response.json() as { statusCode: number, message: string }
  assert.equal(body.statusCode, 400)
  return body.message
}

/** Values an ID must not be read as: hex, exponent, spaces, a sign, a fraction, an array, the types coercion turns into numbers. */
const BAD_ID_FORMS: unknown[] = ['0x10', '1e3', ' 7', '7 ', '+7', '-1', '7.0', '', 'seven', '\u0667', [7], ['7'], null, true, false, {}, 2.5]

test('a device ID is a JSON integer or its decimal digits, nothing else, in every request body that takes one; nothing is stored', async (t) => {
  const app = await buildTestApp(t)
  const before = tableCounts(app)
  const bodies: Array<{ url: string, field: string, body: (id: unknown) => unknown }> = [
    { url: '/server/post/keep_alive', field: 'body/ID', body: (ID) => ({ NAME: 'pi', ID }) },
    { url: '/server/post/frames', field: 'body/ID', body: (ID) => ({ ID, frames: [frame] }) },
    { url: '/ml/post/inference', field: 'body/ID', body: (ID) => ({ payload: stringified(row), ID }) },
    { url: '/ml/post/batch', field: 'body/ID', body: (ID) => ({ ID, frames: [frame] }) },
    { url: '/training/post/samples', field: 'body/ID', body: (ID) => ({ ID, samples: [{ angle: 0, frame }] }) },
    { url: '/training/post/samples', field: 'body/samples/0/ID', body: (ID) => ({ samples: [{ angle: 0, frame, ID }] }) },
    { url: '/training/post/capture', field: 'body/ID', body: (ID) => ({ ID, angle: 0, seconds: 5 }) }
  ]
  for (const { url, field, body } of bodies) {
    for (const id of BAD_ID_FORMS) {
      const message = await refused(app, { method: 'POST', url, headers: ADMIN, payload: body(id) as object }, `${url} ${field} = ${JSON.stringify(id)}`)
      assert.ok(message.startsWith(`${field} must be an integer 0..32767 (`), `${url}: ${message}`)
      assert.ok(message.endsWith(`got ${describeValue(id)}`), `${url}: ${message}`)
    }
    for (const [id, words] of [[40000, 'must be <= 32767, got 40000'], ['32768', 'must be <= 32767, got "32768"'], [-1, 'must be >= 0, got -1']] as const) {
      assert.equal(await refused(app, { method: 'POST', url, headers: ADMIN, payload: body(id) as object }, `${url} ${id}`), `${field} ${words}`)
    }
  }
  // null is "samples without a device" there; anything else loose is refused all the same
  for (const device of BAD_ID_FORMS.filter((id) => id !== null)) {
    const message = await refused(
      app,
      { method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { device } },
      `device = ${JSON.stringify(device)}`
    )
    assert.ok(message.startsWith('body/device must be an integer 0..32767 (') && message.includes('or null'), message)
  }
  assert.deepEqual(tableCounts(app), before)
  assert.deepEqual((await app.inject('/app/get/known_servers')).json(), [])
  assert.equal((await app.inject('/training/get/dataset')).json().total, 0)
  assert.equal((await app.inject('/training/get/capture/7')).statusCode, 404, 'no capture was opened')
})

test('a device ID in a path or a query string is decimal digits only', async (t) => {
  const app = await buildTestApp(t)
  await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'pi', ID: 16 } })
  const before = tableCounts(app)
  const badInPath = ['0x10', '1e3', '%207', '7%20', '+7', '-1', '7.0', 'seven', '16abc']
  for (const id of badInPath) {
    const shown = describeValue(decodeURIComponent(id))
    for (const [method, url] of [
      ['GET', `/doors/${id}`],
      ['DELETE', `/doors/${id}`],
      ['POST', `/doors/${id}/calibration/finish`],
      ['GET', `/training/get/capture/${id}`]
    ] as const) {
      const message = await refused(app, { method, url, headers: ADMIN }, `${method} ${url}`)
      assert.equal(message, `params/id must be an integer 0..32767 (a JSON number, or its decimal digits in a string such as "7"), got ${shown}`)
    }
    const csv = { ...ADMIN, 'content-type': 'text/csv' }
    const message = await refused(app, { method: 'POST', url: `/training/post/import?ID=${id}`, headers: csv, payload: 'Label\n' }, `import ?ID=${id}`)
    assert.match(message, /^querystring\/ID must be an integer 0\.\.32767 /)
    // a query string reads + as a space
    assert.ok(message.endsWith(`got ${describeValue(new URLSearchParams(`ID=${id}`).get('ID'))}`), message)
  }
  const twice = await refused(
    app,
    { method: 'POST', url: '/training/post/import?ID=7&ID=8', headers: { ...ADMIN, 'content-type': 'text/csv' }, payload: 'Label\n' },
    'ID twice'
  )
  assert.match(twice, /^querystring\/ID must be an integer .*got \["7","8"\]$/)
  assert.deepEqual(tableCounts(app), before, 'device 16 is still there and nothing else was written')
  assert.equal((await app.inject('/doors/16')).json().device, 16)
  assert.equal((await app.inject('/doors/016')).json().device, 16, 'leading zeros are still decimal digits')
})

test('the legacy decimal-string ID still works and is stored as a number', async (t) => {
  const app = await buildTestApp(t)
  const keepAlive = await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'pi', ID: '7' } })
  assert.equal(keepAlive.statusCode, 200, keepAlive.body)
  assert.equal(keepAlive.json().id, 7)
  const encoded = await app.inject({
    method: 'POST',
    url: '/server/post/keep_alive',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(JSON.stringify({ NAME: 'pi8', ID: '8' }))
  })
  assert.equal(encoded.statusCode, 200, encoded.body)
  const frames = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: '7', frames: [frame] } })
  assert.equal(frames.statusCode, 200, frames.body)
  assert.equal(frames.json().accepted, 1)
  assert.deepEqual((await app.inject('/app/get/list_of_servers')).json().map((pi: { id: unknown }) => pi.id), [7, 8])
  const stored = app.storage.db.prepare('SELECT device, typeof(device) AS type FROM rpi_frames').all()
  assert.deepEqual(stored, [{ device: 7, type: 'integer' }])
})

test('a name is printable text, trimmed: control, bidirectional-control and other format characters are refused, named and never echoed', async (t) => {
  const app = await buildTestApp(t)
  const before = tableCounts(app)
  const bad: Array<[string, string]> = [
    ['front\u0000door', 'character 6 is U+0000, a control character'],
    ['\u001b[31mred\u001b[0m', 'character 1 is U+001B, a control character'],
    ['pi\r\nX-Injected: 1', 'character 3 is U+000D, a control character'],
    ['a\tb', 'character 2 is U+0009, a control character'],
    ['door\u007f', 'character 5 is U+007F, a control character'],
    ['nel\u0085x', 'character 4 is U+0085, a control character'],
    ['invoice\u202Etxt.exe', 'character 8 is U+202E, a bidirectional-text control'],
    ['\u2066isolated\u2069', 'character 1 is U+2066, a bidirectional-text control'],
    ['a\u200Fb', 'character 2 is U+200F, a bidirectional-text control'],
    ['line\u2028break', 'character 5 is U+2028, a line or paragraph separator'],
    // format characters: invisible, and two names that look alike could differ by one
    ['\u200B', 'character 1 is U+200B, an invisible format character'],
    ['front\u2060door', 'character 6 is U+2060, an invisible format character'],
    ['soft\u00ADhyphen', 'character 5 is U+00AD, an invisible format character'],
    ['tag\u{E0041}', 'character 4 is U+E0041, an invisible format character'],
    ['\u200D', 'character 1 is U+200D, an invisible format character'],
    ['pi\u200C', 'character 3 is U+200C, an invisible format character'],
    ['lone\ud800', 'character 5 is U+D800, half of a surrogate pair']
  ]
  for (const [NAME, problem] of bad) {
    const message = await refused(app, { method: 'POST', url: '/server/post/keep_alive', payload: { NAME, ID: 7 } }, JSON.stringify(NAME))
    assert.equal(message, `body/NAME must be printable text: ${problem}`)
    const encoded = JSON.stringify(JSON.stringify({ NAME, ID: 7 }))
    assert.equal(await refused(
      app,
      { method: 'POST', url: '/server/post/keep_alive', headers: { 'content-type': 'application/json' }, payload: encoded },
      'string form'
    ), message)
  }
  for (const [NAME, message] of [
    [7, 'body/NAME must be a string, got 7'],
    [null, 'body/NAME must be a string, got null'],
    [['pi'], 'body/NAME must be a string, got ["pi"]'],
    ['   ', 'body/NAME must NOT have fewer than 1 characters'],
    ['x'.repeat(65), 'body/NAME must NOT have more than 64 characters']
  ] as const) {
    assert.equal(await refused(app, { method: 'POST', url: '/server/post/keep_alive', payload: { NAME, ID: 7 } }, JSON.stringify(NAME)), message)
  }
  assert.deepEqual(tableCounts(app), before)
  assert.deepEqual((await app.inject('/app/get/known_servers')).json(), [])

  // what passes is served back trimmed, everywhere the name shows
  const names: Array<[number, string, string]> = [
    [1, '  front door \n', 'front door'],
    [2, 'Tür 2 – Küche', 'Tür 2 – Küche'],
    [3, 'דלת אחורית', 'דלת אחורית'],
    [4, 'family 👨‍👩‍👧', 'family 👨‍👩‍👧']
  ]
  for (const [ID, NAME] of names) {
    assert.equal((await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME, ID } })).statusCode, 200, NAME)
  }
  const served = (path: string) => app.inject(path).then((response) => response.json() as Array<{ id: number, name: string }>)
  const expected = names.map(([id, , name]) => ({ id, name }))
  assert.deepEqual((await served('/app/get/list_of_servers')).map(({ id, name }) => ({ id, name })), expected)
  assert.deepEqual((await served('/app/get/known_servers')).map(({ id, name }) => ({ id, name })).sort((a, b) => a.id - b.id), expected)
  assert.equal((await app.inject('/doors/1')).json().name, 'front door')
})

test('new routes refuse fields they do not take, naming them with a "did you mean"; nothing is started or stored', async (t) => {
  const app = await buildTestApp(t)
  const stored = await app.inject({ method: 'POST', url: '/training/post/samples', headers: ADMIN, payload: { ID: 3, samples: [{ angle: 33, frame }] } })
  assert.equal(stored.statusCode, 200, stored.body)
  const before = tableCounts(app)
  const json = (url: string, payload: unknown): InjectOptions => ({ method: 'POST', url, headers: ADMIN, payload: payload as object })
  const cases: Array<[InjectOptions, string]> = [
    [json('/training/post/train', { epoch: 5 }), 'body has unknown field "epoch" (did you mean "epochs"?)'],
    [json('/training/post/train', { learning_rate: 0.1, epochs: 1 }), 'body has unknown field "learning_rate" (did you mean "learningRate"?)'],
    [json('/server/post/frames', { ID: 3, frames: [frame], batch: 1 }),
      'body has unknown field "batch"; it takes ID, frames'],
    [json('/server/post/frames', { id: 3, frames: [frame] }), 'body must have required property \'ID\'; it has unknown field "id" (did you mean "ID"?)'],
    [json('/ml/post/batch', { ID: 3, frame: [frame] }), 'body must have required property \'frames\'; it has unknown field "frame" (did you mean "frames"?)'],
    [json('/training/post/samples', { samples: [{ angle: 33, frame, lable: 'x' }] }),
      'body/samples/0 has unknown field "lable"; it takes angle, frame, ID'],
    [json('/training/post/capture', { ID: 3, angle: 0, seconds: 5, secs: 5 }), 'body has unknown field "secs"; it takes ID, angle, seconds'],
    [json('/training/post/delete_samples', { angel: 33 }), 'body has unknown field "angel" (did you mean "angle"?)'],
    [json('/training/post/delete_samples', { angle: 33, dry_run: true, force: 1 }),
      'body has unknown fields "dry_run", "force"; it takes kind, angle, source, device, all'],
    [json('/training/post/activate', { version: 'csi-1', forced: true }), 'body has unknown field "forced" (did you mean "force"?)'],
    [json('/doors/3/calibration/finish', { acceptAjarAsClosd: true }), 'body has unknown field "acceptAjarAsClosd" (did you mean "acceptAjarAsClosed"?)'],
    [json('/doors/3/calibration/capture', { angle: 0, frame: 10 }), 'body has unknown field "frame" (did you mean "frames"?)'],
    [{ method: 'GET', url: '/training/get/dataset?knd=rssi' }, 'querystring has unknown field "knd" (did you mean "kind"?)'],
    [{ method: 'GET', url: '/training/get/evaluation?versoin=csi-1' }, 'querystring has unknown field "versoin" (did you mean "version"?)'],
    [{ method: 'POST', url: '/training/post/import?ID=3&devcie=4', headers: { ...ADMIN, 'content-type': 'text/csv' }, payload: 'Label\n' },
      'querystring has unknown field "devcie"']
  ]
  for (const [options, message] of cases) {
    const got = await refused(app, options, `${options.method} ${options.url}`)
    assert.ok(got.startsWith(message), `${options.url}: ${got}`)
  }
  const many = await refused(app, json('/training/post/activate', Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`field${i}`, i]))), 'many')
  assert.match(many, new RegExp(
    String.raw`^body must have required property 'version'; ` +
    String.raw`it has unknown fields "field0", "field1", "field2", "field3", "field4", and 4 more; it takes version, force$`
  ))
  const sneaky = await refused(app, json('/training/post/capture', { ID: 3, angle: 0, seconds: 5, 'x\u202Ey': 1 }), 'a field name with a bidi override')
  assert.ok(!sneaky.includes('\u202E') && sneaky.includes('"x\\u202ey"'), sneaky)

  assert.deepEqual(tableCounts(app), before, 'nothing stored, nothing deleted')
  assert.equal(app.model.state, 'MODEL_DOESNT_EXIST', 'no training started')
  assert.equal((await app.inject('/training/get/capture/3')).statusCode, 404, 'no capture opened')
})

test('legacy routes keep taking what the original took: fields they do not know are ignored', async (t) => {
  const app = await buildTestApp(t)
  const keepAlive = await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'pi', ID: 7, uptime: 12 } })
  assert.equal(keepAlive.statusCode, 200, keepAlive.body)
  const inference = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(row), ID: 7, rssi: -40 } })
  assert.equal(inference.statusCode, 503, `no model yet, but the body was taken: ${inference.body}`)
  const logging = await app.inject({ method: 'POST', url: '/debug/post/enable_logging', headers: ADMIN, payload: { ENABLED: 'True', by: 'ops' } })
  assert.equal(logging.statusCode, 200, logging.body)
  // the original {TYPE, DATA} form: the extra field passes validation, the empty DATA is what is refused
  const legacyTrain = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { TYPE: 'CSI', DATA: [], comment: 'x' } })
  assert.equal(legacyTrain.statusCode, 400)
  assert.equal(legacyTrain.json().code, 'DS_BAD_REQUEST')
  assert.match(legacyTrain.json().message, /^DATA must hold/)
})

test('every device ID and name a request takes is read strictly, and every new JSON body refuses unknown fields (from the OpenAPI document)', async (t) => {
  const app = await buildTestApp(t)
  type Schema = Record<string, unknown> & { properties?: Record<string, Schema>, items?: Schema, type?: string }
  type Operation = { parameters?: Array<{ name: string, schema: Schema }>, requestBody?: { content: Record<string, { schema: Schema }> } }
  const document = app.swagger() as { paths: Record<string, Record<string, Operation>> }
  // docs/api.md's legacy routes: their bodies are the original's, unknown fields included
  const legacy = new Set([
    'post /debug/post/echo',
    'post /debug/post/enable_logging',
    'post /server/post/keep_alive',
    'post /ml/post/inference',
    'post /training/post/train'
  ])
  const problems: string[] = []
  let fields = 0
  const checkField = (where: string, name: string, schema: Schema) => {
    if (['ID', 'id', 'device', 'NAME'].includes(name)) fields++
    if (['ID', 'id', 'device'].includes(name) && !('x-decimal-integer' in schema)) problems.push(`${where}: ${name} is not a strict device ID`)
    if (name === 'NAME' && !('x-printable-text' in schema)) problems.push(`${where}: NAME is not printable text`)
  }
  const walk = (where: string, schema: Schema, strict: boolean) => {
    if (schema.type === 'object' && schema.properties) {
      if (strict && schema.additionalProperties !== false) problems.push(`${where} takes unknown fields`)
      for (const [name, property] of Object.entries(schema.properties)) {
        checkField(where, name, property)
        walk(`${where}/${name}`, property, strict)
      }
    }
    if (schema.items) walk(`${where}/items`, schema.items, strict)
  }
  let bodies = 0
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const where = `${method} ${path}`
      for (const parameter of operation.parameters ?? []) checkField(where, parameter.name, parameter.schema)
      const body = operation.requestBody?.content['application/json']?.schema
      if (body) {
        bodies++
        walk(where, body, !legacy.has(where))
      }
    }
  }
  assert.ok(bodies >= 10, `found ${bodies} JSON bodies`)
  assert.ok(fields >= 15, `found ${fields} ID and name fields`)
  assert.deepEqual(problems, [])
})

test('the strict readers and the name suggester, on their own', () => {
  const range = { minimum: 0, maximum: 32767 }
  assert.deepEqual(checkDecimalInteger(7, range), { ok: true, value: 7 })
  assert.deepEqual(checkDecimalInteger('0', range), { ok: true, value: 0 })
  assert.deepEqual(checkDecimalInteger('32767', range), { ok: true, value: 32767 })
  assert.deepEqual(checkDecimalInteger(null, { ...range, nullable: true }), { ok: true, value: null })
  for (const value of ['0x10', '1e3', ' 7', '0b1', '0o7', 'Infinity', 'NaN', '1'.repeat(16), [7], null, undefined, 7.5]) {
    assert.equal(checkDecimalInteger(value, range).ok, false, String(value))
  }
  assert.deepEqual(checkDecimalInteger('99999', range), { ok: false, problem: 'must be <= 32767, got "99999"' })

  assert.deepEqual(checkPrintableText('  pi \n'), { ok: true, value: 'pi' })
  assert.equal(checkPrintableText('a\u2069').ok, false)
  assert.equal(checkPrintableText('a\u200Db').ok, true, 'a zero-width joiner is part of emoji and scripts')

  assert.equal(editDistance('epoch', 'epochs'), 1)
  assert.equal(editDistance('lable', 'label'), 1, 'a swap of neighbours is one edit')
  assert.equal(editDistance('kitten', 'sitting'), 3)
  assert.equal(editDistance('a', 'abcdefgh', 2), 3, 'stops past the limit')
  assert.equal(closestName('epoch', ['kind', 'epochs', 'seed']), 'epochs')
  assert.equal(closestName('batch_size', ['batchSize', 'seed']), 'batchSize')
  assert.equal(closestName('Id', ['ID', 'frames']), 'ID')
  assert.equal(closestName('foo', ['ID', 'frames']), undefined)
  assert.equal(closestName('zzzz', ['seed']), undefined, 'four letters apart is no suggestion')
  assert.equal(closestName('force', ['source']), undefined, 'two edits in five letters is another word')
  assert.equal(closestName('versoin', ['version']), 'version')
})

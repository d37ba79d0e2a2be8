import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { openApiProblems } from '../../bin/lib/openapi-validation.js'
import { toOpenApi30Dialect } from '../../core/openapi.js'
import { APP_VERSION, OPENAPI_FILE } from '../../core/project.js'
import { ADMIN, buildTestApp } from '../helper.js'

interface OpenApiOperation {
  responses?: Record<string, { content?: Record<string, unknown> }>
  security?: Array<Record<string, unknown>>
  requestBody?: { content: Record<string, { schema: { type?: string } }> }
}

interface OpenApiDocument {
  openapi: string
  info: { title: string, version: string }
  paths: Record<string, Record<string, OpenApiOperation>>
  components: { securitySchemes: Record<string, { type: string, scheme: string }> }
}

test('GET /openapi.json is an OpenAPI 3 document built from the routes', async (t) => {
  const app = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/openapi.json' })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^application\/json/)
  const document = response.json<OpenApiDocument>()
  assert.match(document.openapi, /^3\.\d+\.\d+$/)
  assert.equal(document.info.title, 'doorsense')
  assert.equal(document.info.version, APP_VERSION)
  assert.equal(document.components.securitySchemes.admin.scheme, 'bearer')
  // the routes of the app are documented, with their responses
  const documented = Object.keys(document.paths)
  assert.ok(documented.length > 0, 'no path documented')
  for (const path of documented) {
    for (const [method, operation] of Object.entries(document.paths[path])) {
      assert.ok(operation.responses && Object.keys(operation.responses).length > 0, `${method} ${path} documents no response`)
    }
  }
  // the plumbing routes are hidden
  assert.ok(!documented.includes('/metrics'))
  assert.ok(!documented.includes('/openapi.json'))
  assert.ok(!documented.some((path) => path.startsWith('/documentation')))
  // the same document as the app holds
  assert.deepEqual(document, JSON.parse(JSON.stringify(app.swagger())))
})

test('every documented route is a route of the app', async (t) => {
  const app = await buildTestApp(t)
  const document = (await app.inject('/openapi.json')).json<OpenApiDocument>()
  for (const [path, operations] of Object.entries(document.paths)) {
    // OpenAPI writes /a/{id}, fastify /a/:id
    const url = path.replace(/\{([^}]+)\}/g, ':$1')
    for (const method of Object.keys(operations)) {
      assert.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url }), `${method} ${path} is not routed`)
    }
  }
})

test('Swagger UI answers at /documentation', async (t) => {
  const app = await buildTestApp(t)
  let response = await app.inject({ method: 'GET', url: '/documentation' })
  if (response.statusCode >= 300 && response.statusCode < 400) {
    response = await app.inject({ method: 'GET', url: new URL(String(response.headers.location), 'http://localhost/documentation').pathname })
  }
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^text\/html/)
  assert.match(response.body, /swagger-ui/i)
  const spec = await app.inject({ method: 'GET', url: '/documentation/json' })
  assert.equal(spec.statusCode, 200)
  assert.match(spec.json<OpenApiDocument>().openapi, /^3\./)
})

test('the served document and the committed openapi.json are valid OpenAPI (the official 3.0 JSON Schema)', async (t) => {
  const app = await buildTestApp(t)
  assert.deepEqual(await openApiProblems(app.swagger()), [])
  assert.deepEqual(await openApiProblems(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'))), [])
  // and the validator does catch what 3.0 forbids: the draft-7 numeric exclusiveMinimum the schemas hold
  const draft7 = structuredClone(app.swagger()) as unknown as OpenApiDocument
  const train = draft7.paths['/training/post/train'].post.requestBody as unknown as {
    content: Record<string, { schema: { properties: Record<string, unknown> } }>
  }
  train.content['application/json'].schema.properties.learningRate = { type: 'number', exclusiveMinimum: 0 }
  const problems = await openApiProblems(draft7)
  assert.equal(problems.length, 1, problems.join('\n'))
  assert.match(problems[0], /learningRate\/exclusiveMinimum must be boolean/)
})

test('exclusive bounds are written in the OpenAPI 3.0 form; a stricter inclusive bound wins', () => {
  assert.deepEqual(toOpenApi30Dialect({ type: 'number', exclusiveMinimum: 0, maximum: 1 }), { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1 })
  assert.deepEqual(toOpenApi30Dialect({ exclusiveMaximum: 10 }), { maximum: 10, exclusiveMaximum: true })
  assert.deepEqual(toOpenApi30Dialect({ minimum: 5, exclusiveMinimum: 0 }), { minimum: 5 })
  assert.deepEqual(toOpenApi30Dialect({ minimum: -5, exclusiveMinimum: 0 }), { minimum: 0, exclusiveMinimum: true })
  // nested anywhere, arrays too; everything else untouched, the input left as it was
  const input = { paths: { a: [{ schema: { exclusiveMinimum: 1, description: 'x' } }] }, exclusiveMinimum: 'not a schema bound' }
  assert.deepEqual(toOpenApi30Dialect(input), {
    paths: { a: [{ schema: { minimum: 1, exclusiveMinimum: true, description: 'x' } }] },
    exclusiveMinimum: 'not a schema bound'
  })
  assert.deepEqual(input.paths.a[0].schema, { exclusiveMinimum: 1, description: 'x' })
  // the served document has no numeric exclusive bound left
  assert.doesNotMatch(readFileSync(OPENAPI_FILE, 'utf8'), /"exclusive(Minimum|Maximum)": -?\d/)
})

test('the contract says what the routes answer: model-file errors are JSON, the import takes text/csv, device routes show their token', async (t) => {
  const app = await buildTestApp(t, { DEVICE_TOKEN: 'fuzz-device-token-42' })
  const document = app.swagger() as unknown as OpenApiDocument
  // a model file is its own type, its errors JSON, as the route answers them
  const weights = document.paths['/training/get/model/{version}/weights.bin'].get
  assert.deepEqual(Object.keys(weights.responses?.['200'].content ?? {}), ['application/octet-stream'])
  assert.deepEqual(Object.keys(weights.responses?.['404'].content ?? {}), ['application/json'])
  const missing = await app.inject({ method: 'GET', url: '/training/get/model/csi-nope/weights.bin' })
  assert.equal(missing.statusCode, 404)
  assert.match(String(missing.headers['content-type']), /^application\/json/)
  // the import documents the CSV body it streams
  const importOperation = document.paths['/training/post/import'].post
  assert.equal(importOperation.requestBody?.content['text/csv'].schema.type, 'string')
  const imported = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: 'Label,CH6_mag\n'
  })
  assert.equal(imported.statusCode, 400, 'the CSV reached the importer (a bad header), not a 415')
  // the routes behind requireDevice list the device token, the admin token, or none while DEVICE_TOKEN is unset
  for (const path of ['/ml/post/inference', '/ml/post/batch', '/server/post/frames', '/server/post/keep_alive']) {
    assert.deepEqual(document.paths[path].post.security, [{ device: [] }, { admin: [] }, {}], path)
    const anonymous = await app.inject({ method: 'POST', url: path, payload: {} })
    assert.equal(anonymous.statusCode, 401, `${path} without the configured device token`)
  }
})

test('every operation lists what any route may answer before it runs: 503 (load shedding) with Retry-After, and 421 (ALLOWED_HOSTS) but on liveness', async (t) => {
  const app = await buildTestApp(t)
  const served = app.swagger() as unknown as OpenApiDocument
  const committed = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as OpenApiDocument
  for (const document of [served, committed]) {
    let operations = 0
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        operations++
        const responses = operation.responses as Record<string, {
          description?: string,
          headers?: Record<string, unknown>,
          content?: Record<string, { schema: { title?: string } }>
        }>
        const shed = responses['503']
        assert.ok(shed, `${method} ${path} lists no 503`)
        assert.match(shed.description ?? '', /shedding load/, `${method} ${path}`)
        assert.ok(shed.headers?.['Retry-After'], `${method} ${path}: 503 without Retry-After`)
        assert.equal(shed.content?.['application/json']?.schema.title, 'ErrorResponse', `${method} ${path}: 503 body`)
        if (path === '/debug/get/exists') {
          assert.equal(responses['421'], undefined, 'liveness answers under any Host')
        } else {
          assert.equal(responses['421']?.content?.['application/json']?.schema.title, 'ErrorResponse', `${method} ${path} lists no 421`)
        }
      }
    }
    assert.ok(operations > 40)
  }
})

test('load shedding answers as the contract says, also on routes whose own schema lists no 503', async (t) => {
  const app = await buildTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: '50' })
  const document = app.swagger() as unknown as OpenApiDocument
  const blockUntil = Date.now() + 1500
  while (Date.now() < blockUntil) {
    // a synchronous stall, as a runaway handler would cause
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  for (const url of ['/debug/get/exists', '/debug/get/time', '/doors']) {
    const shed = await app.inject({ method: 'GET', url })
    assert.equal(shed.statusCode, 503, `${url}: ${shed.body}`)
    assert.ok(document.paths[url]?.get?.responses?.['503'], `${url} lists the 503 it answered`)
    assert.equal(shed.headers['retry-after'], '1')
    assert.deepEqual(Object.keys(shed.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  }
})

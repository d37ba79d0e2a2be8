import { test } from 'node:test'
import assert from 'node:assert/strict'
import { APP_VERSION } from '../../core/project.js'
import { buildTestApp } from '../helper.js'

interface OpenApiDocument {
  openapi: string
  info: { title: string, version: string }
  paths: Record<string, Record<string, { responses?: Record<string, unknown>, security?: unknown[] }>>
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

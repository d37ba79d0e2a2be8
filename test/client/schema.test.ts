import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { OpenAPI3 } from 'openapi-typescript'
import { renderClientSchema } from '../../bin/generate-client.js'
import { CLIENT_SCHEMA_FILE, OPENAPI_FILE } from '../../core/project.js'

test('client/schema.d.ts is what openapi.json gives (run `npm run client` after `npm run openapi`)', async () => {
  const rendered = await renderClientSchema()
  assert.ok(rendered === readFileSync(CLIENT_SCHEMA_FILE, 'utf8'), 'client/schema.d.ts is stale: run `npm run client`')
})

test('the generated types follow the document: every path of openapi.json is a key of `paths`', async () => {
  const document = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as OpenAPI3
  const rendered = await renderClientSchema(document)
  const paths = Object.keys(document.paths ?? {})
  assert.ok(paths.length > 30, `${paths.length} paths`)
  for (const path of paths) assert.ok(rendered.includes(`    ${JSON.stringify(path)}: {`), path)
  // and a route the document lacks is not invented
  const trimmed = structuredClone(document)
  delete trimmed.paths?.['/server/post/frames']
  assert.ok(!(await renderClientSchema(trimmed)).includes('"/server/post/frames"'))
})

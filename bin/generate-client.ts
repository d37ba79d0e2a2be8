#!/usr/bin/env -S node --import tsx
/**
 * `npm run client`: regenerates client/schema.d.ts (the typed client's
 * types) from openapi.json with openapi-typescript. Run it after
 * `npm run openapi`. `npm run client -- --check` writes nothing and exits 1
 * when client/schema.d.ts differs from what openapi.json gives.
 * Exit codes: 0 written / up to date, 1 drift (with --check), 2 failure.
 */
import { readFileSync } from 'node:fs'
import { CLIENT_SCHEMA_FILE, OPENAPI_FILE } from '../core/project.js'
import { generatedFileCommand } from './lib/generated-file.js'
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript'

/** client/schema.d.ts as openapi.json gives it. */
export async function renderClientSchema (document: OpenAPI3 = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as OpenAPI3): Promise<string> {
  // the document is passed as an object so openapi-typescript reads no file and fetches nothing
  const nodes = await openapiTS(document, { silent: true, alphabetize: true })
  return COMMENT_HEADER.replace(' */', ' * Regenerate it with `npm run openapi && npm run client`.\n */') + astToString(nodes)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await generatedFileCommand({ name: 'client', file: CLIENT_SCHEMA_FILE, render: renderClientSchema, fix: 'npm run client', source: 'openapi.json' })
}

#!/usr/bin/env -S node --import tsx
/**
 * `npm run openapi`: writes openapi.json at the project root from the same
 * TypeBox schemas the routes use, by building the app (without listening) on
 * a throwaway data directory. `npm run openapi -- --check` writes nothing and
 * exits 1 when the committed file differs from what the schemas give. Either
 * way the document is first validated against the OpenAPI JSON Schemas: an
 * invalid one is never written and fails the check (exit 2, naming where).
 * Exit codes: 0 written / up to date, 1 drift (with --check), 2 failure.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../core/app.js'
import { OPENAPI_FILE } from '../core/project.js'
import { loadConfig } from '../core/config.js'
import { generatedFileCommand } from './lib/generated-file.js'
import { openApiProblems } from './lib/openapi-validation.js'

/** The OpenAPI document as the schemas give it, formatted as committed; throws when it is not valid OpenAPI. */
export async function renderOpenApi (): Promise<string> {
  const document = await buildOpenApiDocument()
  const problems = await openApiProblems(document)
  if (problems.length) throw new Error(`the document is not valid OpenAPI:\n  ${problems.slice(0, 20).join('\n  ')}`)
  return JSON.stringify(document, null, 2) + '\n'
}

/** The OpenAPI document the app serves, built on a throwaway data directory. */
async function buildOpenApiDocument (): Promise<unknown> {
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-openapi-'))
  try {
    const app = await buildApp(loadConfig({
      DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
      LOG_TO_FILE: 'false',
      // a fixed token so no token file is generated for a throwaway run
      ADMIN_TOKEN: 'openapi-generation-only-token',
      TF_BACKEND: 'cpu'
    }))
    try {
      await app.ready()
      return app.swagger()
    } finally {
      await app.close()
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await generatedFileCommand({ name: 'openapi', file: OPENAPI_FILE, render: renderOpenApi, fix: 'npm run openapi && npm run client', source: 'the schemas' })
}

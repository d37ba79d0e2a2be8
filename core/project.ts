/**
 * Where the project lives and what it generates, defined once. Paths come
 * from `fileURLToPath`, so a checkout under a folder with spaces works.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project root (the folder holding package.json). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The version in package.json, reported by /debug/get/version/server and to Home Assistant. */
export const APP_VERSION: string = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** The OpenAPI document `npm run openapi` writes from the schemas. */
export const OPENAPI_FILE = join(PROJECT_ROOT, 'openapi.json')

/** The typed client's types `npm run client` writes from openapi.json. */
export const CLIENT_SCHEMA_FILE = join(PROJECT_ROOT, 'client', 'schema.d.ts')

/** The typedoc site `npm run docs` writes and the server serves at /docs/. */
export const DOCS_SITE_DIR = join(PROJECT_ROOT, 'docs-site')

/** The real CSI recordings the tests and benchmarks read (with their README of facts). */
export const RECORDINGS_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'csi')

/**
 * The convention for SQLite tables (core/storage.ts, `AreaSchema`), held over
 * the source tree: each area declares its tables once, as `<AREA>_SCHEMA` in
 * `<area>-schema.ts`; exactly one module migrates it; any other module that
 * queries those tables names the schema they come from.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { declaredSchemas, SCHEMA_FILE, sourceFiles } from '../fixtures/area-schemas.js'

const DDL = /\b(?:CREATE|ALTER|DROP)\s+(?:UNIQUE\s+)?(?:VIRTUAL\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\b/g
/** A table a statement reads or writes, as the code writes SQL (keywords in capitals). */
const TABLE_USE = /\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z_][a-z0-9_]*)\b/g
/** Where the service and its CLI query tables (benchmarks seed theirs through a server, test/ builds its own). */
const QUERYING_DIRS = /^(?:core|ml|plugins|bin)\//

test('tables and indexes are created, altered and dropped only in the schema files', () => {
  const elsewhere = sourceFiles()
    .filter((file) => !SCHEMA_FILE.test(file.path))
    .flatMap((file) => [...file.text.matchAll(DDL)].map((match) => `${file.path}: ${file.text.slice(match.index, match.index + 60).split('\n')[0]}`))
  // the one exception: the record of every area's versions, which exists before any area migrates
  assert.deepEqual(elsewhere, ['core/storage.ts: CREATE TABLE IF NOT EXISTS schema_migrations ('])
})

test('each schema file exports one schema, named after its area; no two areas share a name or a table', async () => {
  const declared = await declaredSchemas()
  assert.ok(declared.length > 0, 'no schema file found')
  const files = new Set(declared.map((entry) => entry.file))
  for (const file of files) {
    const exports = declared.filter((entry) => entry.file === file)
    assert.equal(exports.length, 1, `${file} exports ${exports.map((entry) => entry.name).join(', ')}`)
    const [{ name, schema }] = exports
    const area = SCHEMA_FILE.exec(file)![1]
    assert.equal(schema.area, area, `${file} declares area ${schema.area}`)
    assert.equal(name, `${area.toUpperCase().replaceAll('-', '_')}_SCHEMA`, file)
    assert.ok(Array.isArray(schema.migrations) && schema.migrations.length > 0, `${file} has no migrations`)
  }
  const areas = declared.map((entry) => entry.schema.area)
  assert.equal(new Set(areas).size, areas.length, `areas: ${areas.join(', ')}`)
  const tables = [...tableOwners(declared).entries()].filter(([, owners]) => owners.length > 1)
  assert.deepEqual(tables, [], 'a table created by two areas')
})

test('each schema is migrated by exactly one module, and migrate() is given nothing but a schema', async () => {
  const names = new Set((await declaredSchemas()).map((entry) => entry.name))
  const migratedBy = new Map<string, string[]>([...names].map((name) => [name, []]))
  for (const file of sourceFiles()) {
    for (const [, argument] of file.text.matchAll(/\.migrate\(([^)]*)\)/g)) {
      assert.ok(names.has(argument), `${file.path} migrates ${argument}, not an area's schema`)
      migratedBy.get(argument)!.push(file.path)
    }
  }
  for (const [name, files] of migratedBy) assert.equal(files.length, 1, `${name} is migrated by ${files.length === 0 ? 'no module' : files.join(', ')}`)
})

test('a module that queries an area\'s tables names the schema they come from', async () => {
  const owners = tableOwners(await declaredSchemas())
  const unnamed: string[] = []
  for (const file of sourceFiles().filter((file) => QUERYING_DIRS.test(file.path) && !SCHEMA_FILE.test(file.path))) {
    const used = new Set([...file.text.matchAll(TABLE_USE)].map(([, table]) => table))
    for (const table of used) {
      const schema = owners.get(table)?.[0]
      if (schema !== undefined && !file.text.includes(schema)) unnamed.push(`${file.path} queries ${table} without naming ${schema}`)
    }
  }
  assert.deepEqual(unnamed, [])
})

/** Each table the schemas create, with the schemas (by export name) that create it. */
function tableOwners (declared: Awaited<ReturnType<typeof declaredSchemas>>): Map<string, string[]> {
  const owners = new Map<string, string[]>()
  for (const { name, schema } of declared) {
    for (const migration of schema.migrations) {
      if (typeof migration !== 'string') continue
      for (const [, table] of migration.matchAll(/\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)/g)) {
        owners.set(table, [...owners.get(table) ?? [], name])
      }
    }
  }
  return owners
}

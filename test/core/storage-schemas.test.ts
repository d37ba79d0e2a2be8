/**
 * The convention for SQLite tables (core/storage.ts, `AreaSchema`), held over
 * the source tree: each area declares its tables once, as `<AREA>_SCHEMA` in
 * `<area>-schema.ts`; exactly one module migrates it; any other module that
 * queries those tables names the schema they come from. An area's PostgreSQL
 * tables (core/postgres.ts, `PgAreaSchema`) follow it in the same file, as
 * `<AREA>_PG_SCHEMA`, under the same rules.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { declaredSchemas, SCHEMA_FILE, sourceFiles, type DeclaredSchema } from '../fixtures/area-schemas.js'

const DDL = /\b(?:CREATE|ALTER|DROP)\s+(?:UNIQUE\s+)?(?:VIRTUAL\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\b/g
/** A table a statement reads or writes, as the code writes SQL (keywords in capitals). */
const TABLE_USE = /\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z_][a-z0-9_]*)\b/g
/** Where the service and its CLI query tables (benchmarks seed theirs through a server, test/ builds its own). */
const QUERYING_DIRS = /^(?:core|ml|plugins|bin)\//
/** A module that queries PostgreSQL: it is handed core/postgres.ts's pool. */
const USES_POSTGRES = /from '[./]*\/?core\/postgres\.js'|from '\.\/postgres\.js'/

test('tables and indexes are created, altered and dropped only in the schema files', () => {
  const elsewhere = sourceFiles()
    .filter((file) => !SCHEMA_FILE.test(file.path))
    .flatMap((file) => [...file.text.matchAll(DDL)].map((match) => `${file.path}: ${file.text.slice(match.index, match.index + 60).split('\n')[0]}`))
  // the exceptions: the record of every area's versions, in each engine, which exists before any area migrates
  assert.deepEqual(elsewhere, [
    'core/postgres.ts: CREATE TABLE IF NOT EXISTS doorsense_migrations (',
    'core/storage.ts: CREATE TABLE IF NOT EXISTS schema_migrations ('
  ])
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

test('a schema file may export its area\'s PostgreSQL schema beside the SQLite one: named after the area, SQL text only, no table shared', async () => {
  const sqlite = new Map((await declaredSchemas()).map((entry) => [entry.file, entry.schema.area]))
  const declared = await declaredSchemas('postgres')
  for (const { file, name, schema } of declared) {
    assert.equal(declared.filter((entry) => entry.file === file).length, 1, `${file} exports more than one PostgreSQL schema`)
    assert.equal(schema.area, sqlite.get(file), `${file}: ${name} declares area ${schema.area}, its SQLite schema ${sqlite.get(file)}`)
    assert.equal(name, `${schema.area.toUpperCase().replaceAll('-', '_')}_PG_SCHEMA`, file)
    assert.ok(Array.isArray(schema.migrations) && schema.migrations.length > 0, `${file}: ${name} has no migrations`)
    for (const migration of schema.migrations) assert.equal(typeof migration, 'string', `${file}: ${name} has a migration that is not SQL text`)
  }
  const tables = [...tableOwners(declared).entries()].filter(([, owners]) => owners.length > 1)
  assert.deepEqual(tables, [], 'a PostgreSQL table created by two areas')
})

test('each schema is migrated by exactly one module, and migrate() is given nothing but a schema', async () => {
  const names = new Set([...await declaredSchemas(), ...await declaredSchemas('postgres')].map((entry) => entry.name))
  const migratedBy = new Map<string, string[]>([...names].map((name) => [name, []]))
  for (const file of sourceFiles()) {
    for (const [, argument] of file.text.matchAll(/\.migrate\(([^)]*)\)/g)) {
      assert.ok(names.has(argument), `${file.path} migrates ${argument}, not an area's schema`)
      migratedBy.get(argument)!.push(file.path)
    }
  }
  for (const [name, files] of migratedBy) assert.equal(files.length, 1, `${name} is migrated by ${files.length === 0 ? 'no module' : files.join(', ')}`)
})

test('a module that queries an area\'s tables names the schema they come from (PostgreSQL\'s too, where it is handed the pool)', async () => {
  const owners = tableOwners(await declaredSchemas())
  const pgOwners = tableOwners(await declaredSchemas('postgres'))
  const unnamed: string[] = []
  for (const file of sourceFiles().filter((file) => QUERYING_DIRS.test(file.path) && !SCHEMA_FILE.test(file.path))) {
    const used = new Set([...file.text.matchAll(TABLE_USE)].map(([, table]) => table))
    const ownerMaps = USES_POSTGRES.test(file.text) ? [owners, pgOwners] : [owners]
    for (const table of used) {
      for (const schema of ownerMaps.map((map) => map.get(table)?.[0])) {
        if (schema !== undefined && !file.text.includes(schema)) unnamed.push(`${file.path} queries ${table} without naming ${schema}`)
      }
    }
  }
  assert.deepEqual(unnamed, [])
})

/** Each table the schemas create, with the schemas (by export name) that create it. */
function tableOwners (declared: ReadonlyArray<DeclaredSchema<{ readonly migrations: readonly unknown[] }>>): Map<string, string[]> {
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

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import Database from 'better-sqlite3'
import { PROJECT_ROOT } from '../../core/project.js'
import { DATABASE_FILE } from '../../core/storage.js'
import { run } from '../../bin/commands/import.js'
import { run as train } from '../../bin/commands/train.js'
import { ADMIN_TOKEN, tempDir } from '../helper.js'
import { listen } from '../fixtures/live-server.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'
import type { ImportResult } from '../../schemas/training.js'

/** Captures what a command writes. */
function io (env: Record<string, string>) {
  const out = { stdout: '', stderr: '' }
  return {
    out,
    io: { stdout: { write: (text: string) => { out.stdout += text } }, stderr: { write: (text: string) => { out.stderr += text } }, env }
  }
}

function storedSamples (dataDir: string): Array<{ angle: number, source: string, device: number | null }> {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true })
  try {
    return db.prepare('SELECT angle, source, device FROM training_samples ORDER BY id').all() as Array<{ angle: number, source: string, device: number | null }>
  } finally {
    db.close()
  }
}

test('doorsense import stores a session CSV in DATA_DIR and prints the counts (the real command line)', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'slice.csv')
  writeFileSync(file, sessionCsv(sessionSlice(10)))
  const dataDir = join(dir, 'data')
  const result = await execa(process.execPath, ['--import', 'tsx', 'bin/doorsense.ts', 'import', '--data', file], {
    cwd: PROJECT_ROOT, env: { DATA_DIR: dataDir, LOG_LEVEL: 'silent' }, reject: false
  })
  assert.equal(result.exitCode, 0, result.stderr)
  assert.equal(result.stdout, `imported 70 samples from ${file} (71 lines)\n0°: 10, 15°: 10, 30°: 10, 45°: 10, 60°: 10, 75°: 10, 90°: 10`)
  const samples = storedSamples(dataDir)
  assert.equal(samples.length, 70)
  assert.deepEqual(samples.map((sample) => sample.angle), sessionSlice(10).map((row) => row.angle))
  assert.ok(samples.every((sample) => sample.source === 'import' && sample.device === null))
})

test('import --json prints one JSON object; --id records the device', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'slice.csv')
  writeFileSync(file, sessionCsv(sessionSlice(2)))
  const { out, io: commandIo } = io({ DATA_DIR: join(dir, 'data') })
  assert.equal(await run(['--data', file, '--json', '--id', '12'], commandIo), 0, out.stderr)
  const { importId, contentSha256, ...counts } = JSON.parse(out.stdout) as ImportResult
  assert.deepEqual(counts, { imported: 14, lines: 15, labels: [0, 15, 30, 45, 60, 75, 90].map((angle) => ({ angle, count: 2 })) })
  assert.equal(importId, 1)
  assert.equal(contentSha256, createHash('sha256').update(sessionCsv(sessionSlice(2))).digest('hex'), 'the hash of the lines, each with its newline')
  assert.ok(storedSamples(join(dir, 'data')).every((sample) => sample.device === 12))
})

test('a bad file is rejected with its line numbers and nothing is stored', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'bad.csv')
  const lines = sessionCsv(sessionSlice(2)).split('\n')
  lines[3] = lines[3].replace(/,[^,]+$/, ',NaN')
  writeFileSync(file, lines.join('\n'))
  const dataDir = join(dir, 'data')
  const { out, io: commandIo } = io({ DATA_DIR: dataDir })
  assert.equal(await run(['--data', file], commandIo), 1)
  assert.match(out.stderr, /bad\.csv: CSV rejected, nothing imported: 1 bad line: line 4: CH58_phase is not a finite number \(got "NaN"\)/)
  assert.equal(out.stdout, '')
  assert.deepEqual(storedSamples(dataDir), [])
})

test('usage mistakes exit 1 and say what is wrong', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[string[], RegExp]> = [
    [[], /--data FILE\.csv is required/],
    [['--data'], /argument missing|option '--data <value>'/],
    [['--data', 'x.csv', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--data', 'x.csv', '--id', 'pi-3'], /--id must be a Pi ID 0\.\.32767, got "pi-3"/],
    // read as the HTTP routes read an ID: decimal digits, nothing Number() would also take
    [['--data', 'x.csv', '--id', '0x10'], /--id must be a Pi ID 0\.\.32767, got "0x10"/],
    [['--data', 'x.csv', '--id', '1e3'], /--id must be a Pi ID 0\.\.32767, got "1e3"/],
    [['--data', 'x.csv', '--id', ' 7'], /--id must be a Pi ID 0\.\.32767, got " 7"/],
    [['--data', 'x.csv', '--id', '40000'], /--id must be a Pi ID 0\.\.32767, got "40000"/],
    [['--data', join(dir, 'missing.csv')], /missing\.csv: ENOENT/]
  ]
  for (const [argv, expected] of cases) {
    const { out, io: commandIo } = io({ DATA_DIR: join(dir, 'data') })
    assert.equal(await run(argv, commandIo), 1, argv.join(' '))
    assert.match(out.stderr, expected, argv.join(' '))
  }
  const { out, io: commandIo } = io({ DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'loud' })
  assert.equal(await run(['--data', 'x.csv'], commandIo), 1)
  assert.match(out.stderr, /LOG_LEVEL must be one of/)
  const help = io({})
  assert.equal(await run(['--help'], help.io), 0)
  assert.match(help.out.stdout, /^usage: doorsense import --data FILE\.csv/)
})

test('the same file twice for the same device is refused, naming the earlier import; --allow-duplicate imports it again', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'slice.csv')
  writeFileSync(file, sessionCsv(sessionSlice(2)))
  const dataDir = join(dir, 'data')
  const first = io({ DATA_DIR: dataDir })
  assert.equal(await run(['--data', file, '--id', '4'], first.io), 0, first.out.stderr)

  const again = io({ DATA_DIR: dataDir })
  assert.equal(await run(['--data', file, '--id', '4'], again.io), 1)
  assert.match(again.out.stderr, new RegExp(
    String.raw`^doorsense import: .*slice\.csv: this CSV \(sha256 [0-9a-f]{12}…\) was imported for device 4 already: import 1 at \d{4}-[^,]+, 14 rows; ` +
    String.raw`nothing imported; pass --allow-duplicate to import it again\n$`
  ))
  assert.equal(again.out.stdout, '')
  assert.equal(storedSamples(dataDir).length, 14)

  // another device is another recording; the flag imports the same one again on purpose
  assert.equal(await run(['--data', file, '--id', '5'], io({ DATA_DIR: dataDir }).io), 0)
  const forced = io({ DATA_DIR: dataDir })
  assert.equal(await run(['--data', file, '--id', '4', '--allow-duplicate'], forced.io), 0, forced.out.stderr)
  assert.equal(storedSamples(dataDir).length, 42)
})

test('train --data FILE does not import a file imported already: it says so and trains on the stored samples', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'closed.csv')
  // one angle only: the training then stops at its first check, which is all this test needs
  writeFileSync(file, sessionCsv(sessionSlice(2).filter((row) => row.angle === 0)))
  const dataDir = join(dir, 'data')
  assert.equal(await run(['--data', file], io({ DATA_DIR: dataDir }).io), 0)
  const { out, io: trainIo } = io({ DATA_DIR: dataDir, TF_BACKEND: 'cpu' })
  assert.equal(await train(['--data', file, '--epochs', '1'], trainIo), 1)
  assert.match(out.stderr, new RegExp(
    String.raw`closed\.csv: this CSV \(sha256 [0-9a-f]{12}…\) was imported without a device already: import 1 at [^,]+, 2 rows; ` +
    String.raw`nothing imported: training on the stored samples\n`
  ))
  assert.match(out.stderr, /training needs samples of at least 2 door angles/)
  assert.equal(storedSamples(dataDir).length, 2, 'not imported twice')
})

test('through a server (--server) the duplicate is refused the same way, and --allow-duplicate passes it', async (t) => {
  const { app, url } = await listen(t)
  const dir = tempDir(t)
  const file = join(dir, 'slice.csv')
  writeFileSync(file, sessionCsv(sessionSlice(1)))
  const env = { DATA_DIR: join(dir, 'elsewhere'), ADMIN_TOKEN }
  assert.equal(await run(['--data', file, '--id', '6', '--server', url], io(env).io), 0)
  const again = io(env)
  assert.equal(await run(['--data', file, '--id', '6', '--server', url], again.io), 1)
  assert.match(again.out.stderr, new RegExp(
    String.raw`409 this CSV \(sha256 [0-9a-f]{12}…\) was imported for device 6 already: import 1 at [^,]+, 7 rows; ` +
    String.raw`nothing imported; pass --allow-duplicate to import it again\n$`
  ))
  assert.equal(await run(['--data', file, '--id', '6', '--server', url, '--allow-duplicate'], io(env).io), 0)
  assert.equal((app.storage.db.prepare('SELECT COUNT(*) AS n FROM training_samples WHERE device = 6').get() as { n: number }).n, 14)
})

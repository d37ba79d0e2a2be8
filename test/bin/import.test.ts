import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import Database from 'better-sqlite3'
import { PROJECT_ROOT } from '../../core/project.js'
import { DATABASE_FILE } from '../../core/storage.js'
import { run } from '../../bin/commands/import.js'
import { tempDir } from '../helper.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'

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
  assert.deepEqual(JSON.parse(out.stdout), { imported: 14, lines: 15, labels: [0, 15, 30, 45, 60, 75, 90].map((angle) => ({ angle, count: 2 })) })
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

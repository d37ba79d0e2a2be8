import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../core/project.js'
import { formatSummary, run, type TrainSummary } from '../../bin/commands/train.js'
import { buildTestApp, tempDir } from '../helper.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'

function io (env: Record<string, string>) {
  const out = { stdout: '', stderr: '' }
  return {
    out,
    io: { stdout: { write: (text: string) => { out.stdout += text } }, stderr: { write: (text: string) => { out.stderr += text } }, env }
  }
}

test('doorsense train --data imports, trains and activates (the real command line); the server then starts on that version', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'slice.csv')
  writeFileSync(file, sessionCsv(sessionSlice(25)))
  const dataDir = join(dir, 'data')
  const result = await execa(process.execPath, ['--import', 'tsx', 'bin/doorsense.ts', 'train', '--data', file, '--epochs', '5', '--json'], {
    cwd: PROJECT_ROOT, env: { DATA_DIR: dataDir, TF_BACKEND: 'cpu' }, reject: false
  })
  assert.equal(result.exitCode, 0, result.stderr)
  const summary = JSON.parse(result.stdout) as TrainSummary
  assert.equal(result.stdout.trim().split('\n').length, 1, 'exactly one JSON line on stdout')
  assert.equal(summary.imported, 175)
  assert.equal(summary.samples, 175)
  assert.equal(summary.backend, 'cpu')
  assert.ok(summary.trainingSeconds > 0)
  assert.equal(summary.evaluation?.testRows, 35)
  assert.equal(summary.dir, join(dataDir, 'models', summary.version))
  for (const name of ['model.json', 'weights.bin', 'meta.json']) assert.ok(existsSync(join(summary.dir, name)), name)
  assert.match(result.stderr, /imported 175 samples/)
  assert.match(result.stderr, /epoch 5\/5: loss \d/)

  // the text form of the same summary
  assert.match(formatSummary(summary), new RegExp(
    `^trained and activated ${summary.version} on 175 samples in [\\d.]+ s \\(cpu backend\\)\\n` +
    `files: ${summary.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n` +
    'blocked hold-out \\(35 rows\\): accuracy [\\d.]+, open/closed accuracy [\\d.]+, F1 \\(closed\\) [\\d.]+\\n$'))

  // the server starts on the version the CLI activated
  const app = await buildTestApp(t, {}, { dataDir })
  assert.equal(app.model.state, 'FINISHED_TRAINING')
  assert.equal(app.model.active?.version, summary.version)
  assert.deepEqual((await app.model.versions()).map((v) => v.version), [summary.version])
  assert.equal(app.model.predict(sessionSlice(1, 100).map((row) => row.features)).predictions.length, 7)
})

test('train without enough samples, with bad options or an unloadable backend exits 1 and says why', async (t) => {
  const dir = tempDir(t)
  const dataDir = join(dir, 'data')
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [[], {}, /training needs samples of at least 2 door angles; the csi dataset has no samples/],
    [['--epochs', '0'], {}, /--epochs must be an integer 1\.\.1000, got "0"/],
    [['--epochs', 'many'], {}, /--epochs must be an integer/],
    [['--data', join(dir, 'missing.csv')], {}, /missing\.csv: ENOENT/],
    [['--bogus'], {}, /Unknown option '--bogus'/],
    [[], { TF_BACKEND: 'node' }, /TF_BACKEND=node but @tensorflow\/tfjs-node cannot be loaded/]
  ]
  for (const [argv, env, expected] of cases) {
    const { out, io: commandIo } = io({ DATA_DIR: dataDir, TF_BACKEND: 'cpu', ...env })
    assert.equal(await run(argv, commandIo), 1, `${argv.join(' ')}: ${out.stderr}`)
    assert.match(out.stderr, expected)
    assert.equal(out.stdout, '')
  }
  const help = io({})
  assert.equal(await run(['-h'], help.io), 0)
  assert.match(help.out.stdout, /^usage: doorsense train/)
})

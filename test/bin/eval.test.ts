import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Value } from '@sinclair/typebox/value'
import type { CommandIo } from '../../bin/commands/command-line.js'
import { run } from '../../bin/commands/eval.js'
import { loadConfig } from '../../core/config.js'
import { PROJECT_ROOT } from '../../core/project.js'
import { Evaluation } from '../../schemas/model.js'
import { SESSION_A_CSV, tempDir } from '../helper.js'

const sessionLines = readFileSync(SESSION_A_CSV, 'utf8').split('\n').filter((line) => line.trim() !== '')

/** A session CSV with the first `perLabel` rows of each of `labels`, in file order. */
function writeSlice (dir: string, name: string, labels: number[], perLabel: number): string {
  const taken = new Map<number, number>()
  const rows = sessionLines.slice(1).filter((line) => {
    const angle = Number(line.slice(0, line.indexOf(',')))
    if (!labels.includes(angle) || (taken.get(angle) ?? 0) >= perLabel) return false
    taken.set(angle, (taken.get(angle) ?? 0) + 1)
    return true
  })
  const file = join(dir, name)
  writeFileSync(file, [sessionLines[0], ...rows].join('\n') + '\n')
  return file
}

/** Runs eval in this process, capturing what it writes. */
async function evalInProcess (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io: CommandIo = { stdout: { write: (text) => { stdout += text } }, stderr: { write: (text) => { stderr += text } } }
  const code = await run(argv, io)
  return { code, stdout, stderr }
}

test('eval --json prints exactly one JSON object on stdout, progress on stderr', async (t) => {
  const file = writeSlice(tempDir(t), 'slice.csv', [0, 15, 30, 45, 60, 75, 90], 20)
  const { stdout, stderr } = await promisify(execFile)(process.execPath,
    ['--import', 'tsx', 'bin/doorsense.ts', 'eval', '--data', file, '--holdout', '0.2', '--json', '--epochs', '5', '--seed', '3', '--backend', 'cpu'],
    { cwd: PROJECT_ROOT, timeout: 60_000 })
  const report = JSON.parse(stdout) as Record<string, unknown> & Evaluation
  assert.equal(stdout.trim().split('\n').length, 1, 'one line, one object, nothing else')
  assert.equal(typeof report.accuracy, 'number')
  assert.ok(report.accuracy >= 0 && report.accuracy <= 1)
  assert.ok(Value.Check(Evaluation, report), 'the evaluation fields match the Evaluation schema')
  assert.deepEqual(Object.keys(report.openClosed).sort(), ['accuracy', 'f1'])
  assert.deepEqual(report.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(report.testRows, 7 * 4)
  assert.equal(report.trainRows, 7 * 16)
  assert.equal(report.confusion.length, 7)
  assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), 28)
  assert.equal(report.perClass.length, 7)
  assert.deepEqual((report.options as { epochs: number, seed: number }).epochs, 5)
  assert.deepEqual((report.options as { epochs: number, seed: number }).seed, 3)
  assert.match(stderr, /epoch 5\/5 loss/)
  // the server's smoother, with the server's defaults
  const defaults = loadConfig({})
  assert.deepEqual(report.smoothed, { window: defaults.DOOR_WINDOW, hold: defaults.DOOR_HOLD, openClosedAccuracy: (report.smoothed as { openClosedAccuracy: number }).openClosedAccuracy })
  assert.equal(typeof report.smoothedAccuracy, 'number')
  // 4 test rows per label are fewer than the 5 the smoother must see before it decides: nothing is decided yet
  assert.equal(report.smoothedAccuracy, 0)
})

test('eval prints a text report: accuracy, per-class table, confusion matrix, openClosed', async (t) => {
  const file = writeSlice(tempDir(t), 'pair.csv', [15, 30], 30)
  const { code, stdout, stderr } = await evalInProcess(['--data', file, '--epochs', '20', '--seed', '1', '--backend', 'cpu'])
  assert.equal(code, 0, stderr)
  assert.match(stdout, /^accuracy: [01]\.\d{3} \(2 classes\)$/m)
  assert.match(stdout, /^openClosed: accuracy 1\.000/m, 'no closed class: every row is open and said open')
  assert.match(stdout, /^ +15° +\d\.\d{3} +\d\.\d{3} +\d\.\d{3} +6$/m)
  assert.match(stdout, /confusion \(rows = true angle, columns = predicted angle\):\n +15° +30°\n +15° +\d+ +\d+\n +30° +\d+ +\d+\n$/)
  assert.match(stderr, /epoch 20\/20/)
})

test('bad arguments and unreadable or invalid files exit 1 naming the problem; a failed training exits 2', async (t) => {
  const dir = tempDir(t)
  const good = writeSlice(dir, 'good.csv', [0, 90], 20)

  let result = await evalInProcess([])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /--data FILE.csv is required/)
  assert.equal(result.stdout, '')

  result = await evalInProcess(['--data', good, '--colour', 'red'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /colour/)

  for (const [argv, message] of [
    [['--holdout', '0'], /--holdout must be above 0/],
    [['--holdout', 'x'], /--holdout must be a number, got "x"/],
    [['--holdout', '0.7'], /--holdout/],
    [['--epochs', '0'], /--epochs/],
    [['--batch-size', '2.5'], /--batch-size/],
    [['--architecture', 'transformer'], /--architecture/],
    [['--backend', 'tpu'], /--backend must be auto, gpu, node or cpu/]
  ] as const) {
    result = await evalInProcess(['--data', good, ...argv])
    assert.equal(result.code, 1, `${argv.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
  }

  result = await evalInProcess(['--data', join(dir, 'missing.csv')])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /cannot read .*missing\.csv/)

  const broken = join(dir, 'broken.csv')
  writeFileSync(broken, [sessionLines[0], sessionLines[1], sessionLines[2].replace(/,[^,]*$/, ',oops')].join('\n'))
  result = await evalInProcess(['--data', broken])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /line 3: CH58_phase is not a finite number/)

  const oneLabel = writeSlice(dir, 'one-label.csv', [45], 30)
  result = await evalInProcess(['--data', oneLabel, '--epochs', '1', '--backend', 'cpu'])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /training failed: .*at least 2 door angles/)
  assert.equal(result.stdout, '')

  result = await evalInProcess(['--help'])
  assert.equal(result.code, 0)
  assert.match(result.stdout, /usage: doorsense eval/)
})

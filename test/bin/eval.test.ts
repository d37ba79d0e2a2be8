import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Value } from '@sinclair/typebox/value'
import type { CommandIo } from '../../bin/commands/command-line.js'
import { formatReport, readShifted, run, type EvalReport } from '../../bin/commands/eval.js'
import { loadConfig } from '../../core/config.js'
import { PROJECT_ROOT } from '../../core/project.js'
import { DEFAULT_DOOR_TRAINING } from '../../ml/door/train.js'
import { DoorStateEvaluation, Evaluation } from '../../schemas/model.js'
import { RPI_RAW_FRAMES, SESSION_A_CSV, tempDir } from '../helper.js'

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
  assert.deepEqual(Object.keys(report.openClosed).sort(), ['accuracy', 'balancedAccuracy', 'closedF1', 'f1'])
  assert.equal(report.openClosed.f1, report.openClosed.closedF1)
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
  assert.deepEqual(report.smoothed, {
    window: defaults.DOOR_WINDOW,
    hold: defaults.DOOR_HOLD,
    openClosedAccuracy: (report.smoothed as { openClosedAccuracy: number }).openClosedAccuracy
  })
  assert.equal(typeof report.smoothedAccuracy, 'number')
  // 4 test rows per label are fewer than the 5 the smoother must see before it decides: nothing is decided yet
  assert.equal(report.smoothedAccuracy, 0)
  // 20 rows per label cannot calibrate a door: no doorState (and no novelty), and the report says why
  assert.equal(report.doorState, undefined)
  assert.equal(report.novelty, undefined)
  assert.match((report as unknown as EvalReport).doorModel.skipped ?? '', /each angle needs at least \d+ rows .*got 20 for 0°/)
  assert.match(stderr, /door state not evaluated/)
})

test('eval on session A: per-frame balanced accuracy and closed F1, the door state over the replayed tails (floors), novelty against rpi-raw-frames', async () => {
  const started = performance.now()
  const { code, stdout, stderr } = await evalInProcess([
    '--data', SESSION_A_CSV, '--holdout', '0.2', '--json', '--epochs', '20', '--door-epochs', '10', '--seed', '1',
    '--backend', 'cpu', '--shifted', RPI_RAW_FRAMES
  ])
  const seconds = (performance.now() - started) / 1000
  assert.equal(code, 0, stderr)
  const report = JSON.parse(stdout) as EvalReport
  assert.ok(Value.Check(Evaluation, report), [...Value.Errors(Evaluation, report)].map((err) => `${err.path}: ${err.message}`).join('; '))
  // per frame (the global model), as before plus the honest figures
  assert.equal(report.testRows, 570)
  assert.ok(report.openClosed.balancedAccuracy >= 0 && report.openClosed.balancedAccuracy <= 1)
  assert.equal(report.openClosed.f1, report.openClosed.closedF1)
  assert.equal(typeof report.smoothedAccuracy, 'number')
  // the door state: the windowed door model, each tail replayed as the server runs a calibrated door
  const d = report.doorState
  assert.ok(d, `no doorState: ${report.doorModel.skipped}`)
  assert.ok(Value.Check(DoorStateEvaluation, d))
  const say = `door ${d.accuracy.toFixed(3)}, balanced ${d.openClosed.balancedAccuracy.toFixed(3)}, closed F1 ${d.openClosed.closedF1.toFixed(3)}, ` +
    `novelty AUC ${report.novelty?.auc.toFixed(3)} (${seconds.toFixed(1)} s)`
  assert.ok(d.accuracy >= 0.5, `doorState.accuracy below .50: ${say}`)
  assert.ok(d.openClosed.balancedAccuracy >= 0.65, `doorState.openClosed.balancedAccuracy below .65: ${say}`)
  assert.deepEqual(Object.keys(d.openClosed).sort(), ['accuracy', 'balancedAccuracy', 'closedF1'])
  assert.equal(d.window, DEFAULT_DOOR_TRAINING.window)
  assert.ok(d.window <= 25)
  assert.equal(d.latencyFrames, DEFAULT_DOOR_TRAINING.window - 1 + DEFAULT_DOOR_TRAINING.hysteresis.enter, 'no tail is delayed past the nominal latency')
  assert.equal((d.confusion ?? []).flat().reduce((a, b) => a + b, 0), report.doorModel.frames)
  assert.equal(report.doorModel.seed, 1)
  // a third of the default epochs (the self-check trains one more model per open angle): the floors hold all the same
  assert.equal(report.doorModel.epochs, 10)
  // novelty: another recording's windows are told from session A's held-out ones
  assert.ok(report.novelty, 'novelty with --shifted')
  assert.ok(report.novelty.auc >= 0.9, `novelty.auc below .9: ${say}`)
  assert.deepEqual(Object.keys(report.novelty), ['auc'])
  assert.equal(report.doorModel.novelty?.shifted, RPI_RAW_FRAMES)
  assert.ok((report.doorModel.novelty?.windows ?? 0) > 0)
  // the door's own held-out windows are familiar, and the ajar self-check says what session A cannot tell apart
  assert.equal(report.doorModel.heldOutNovelShare, 0)
  assert.deepEqual(report.doorModel.perAngle?.map((r) => r.angle), [0, 15, 30, 45, 60, 75, 90])
  const selfCheck = report.doorModel.selfCheck
  assert.ok(selfCheck)
  assert.equal(selfCheck.ajarAngle, 15)
  assert.deepEqual(selfCheck.checks.map((c) => [c.angle, c.model]), [
    [15, 'held-out'], [30, 'left-out'], [45, 'left-out'], [60, 'left-out'], [75, 'left-out'], [90, 'left-out']
  ])
  assert.equal(selfCheck.passed, selfCheck.checks.every((c) => c.closedShare <= selfCheck.limit))

  // the text report prints the same figures
  const text = formatReport(report)
  assert.match(text, /^openClosed: accuracy \d\.\d{3}, balanced accuracy \d\.\d{3}, closed F1 \d\.\d{3} \(per frame\)$/m)
  assert.match(text, new RegExp(
    `^door state \\(windowed door model .*k 25.*\\): accuracy ${d.accuracy.toFixed(3)}, openClosed: accuracy ${d.openClosed.accuracy.toFixed(3)}, ` +
    `balanced accuracy ${d.openClosed.balancedAccuracy.toFixed(3)}, closed F1 ${d.openClosed.closedF1.toFixed(3)}; latency ${d.latencyFrames} frames`,
    'm'
  ))
  assert.match(text, new RegExp(`^novelty: AUC ${report.novelty.auc.toFixed(3)} \\(`, 'm'))
  assert.match(text, new RegExp(
    String.raw`^ajar self-check \(ajar 15°, at most 10\.0 % may read closed\): ` +
    String.raw`(passes|FAILS: this recording cannot tell ajar from closed): 15° held-out read closed \d+\.\d %`,
    'm'
  ))
  assert.match(text, /^novelty: the door's own held-out windows flagged 0\.0 %$/m)
})

test('--shifted reads a session CSV (one stream per contiguous label run) or one frame per line', (t) => {
  const dir = tempDir(t)
  const slice = readShifted(writeSlice(dir, 'other.csv', [0, 45], 30), 25)
  assert.deepEqual(slice.runs.map((run) => run.length), [30, 30])
  const frames = readShifted(RPI_RAW_FRAMES, 25)
  assert.equal(frames.runs.length, 1)
  assert.ok(frames.runs[0].length > 25)
  assert.equal(frames.runs[0][0].length, 106)
})

test('eval prints a text report: accuracy, per-class table, confusion matrix, openClosed', async (t) => {
  const file = writeSlice(tempDir(t), 'pair.csv', [15, 30], 30)
  const { code, stdout, stderr } = await evalInProcess(['--data', file, '--epochs', '20', '--seed', '1', '--backend', 'cpu'])
  assert.equal(code, 0, stderr)
  assert.match(stdout, /^accuracy: [01]\.\d{3} \(2 classes\)$/m)
  assert.match(stdout, /^openClosed: accuracy 1\.000/m, 'no closed class: every row is open and said open')
  assert.match(stdout, /^door state \(windowed door model.*\): not evaluated: a door model needs rows of the closed door \(0°\)/m)
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
    [['--backend', 'tpu'], /--backend must be auto, gpu, node or cpu/],
    [['--door-epochs', '0'], /--door-epochs must be an integer in 1\.\.1000, got 0/],
    [['--shifted', ''], /--shifted needs a file/]
  ] as const) {
    result = await evalInProcess(['--data', good, ...argv])
    assert.equal(result.code, 1, `${argv.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
  }

  result = await evalInProcess(['--data', join(dir, 'missing.csv')])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /cannot read .*missing\.csv/)

  // --shifted is read before any training: unreadable, bad frames, too short for a window
  result = await evalInProcess(['--data', good, '--shifted', join(dir, 'missing.txt')])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /--shifted: cannot read .*missing\.txt/)
  const badFrames = join(dir, 'bad-frames.txt')
  const rpiLines = readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n').filter((line) => line.trim() !== '')
  writeFileSync(badFrames, [rpiLines[0], '[1, 2, 3]', ...rpiLines.slice(1, 40)].join('\n'))
  result = await evalInProcess(['--data', good, '--shifted', badFrames])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /--shifted: .*bad-frames\.txt is neither .*\n {2}line 2: frame must hold 106 features/)
  const shortFrames = join(dir, 'short-frames.txt')
  writeFileSync(shortFrames, rpiLines.slice(0, 10).join('\n'))
  result = await evalInProcess(['--data', good, '--shifted', shortFrames])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /--shifted: .*short-frames\.txt needs at least 25 consecutive frames for one window, got 10/)
  assert.equal(result.stdout, '')

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

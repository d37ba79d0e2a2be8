import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { execa } from 'execa'
import { EXIT, exitCodeOf, formatSummary, parseAgentArgs, run as runAgent } from '../../bin/commands/agent.js'
import { PROJECT_ROOT } from '../../core/project.js'
import { readSessionCsv } from '../../domain/session-csv.js'
import { ESP32_LINES, RPI_RAW_FRAMES, SESSION_A_CSV } from '../helper.js'
import { framesReceived, getJson, listen } from '../fixtures/live-server.js'

const esp32Lines = readFileSync(ESP32_LINES, 'utf8').split('\n').filter((line) => line.trim() !== '')
const piFrames = readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n').filter((line) => line.trim() !== '')
const required = ['--server', 'http://127.0.0.1:20002', '--name', 'pi-door', '--id', '7']

/** `npm run -s doorsense -- agent …` without npm in between. */
function agentProcess (args: string[], options: { input?: string, env?: Record<string, string> } = {}) {
  return execa('node', ['--import', 'tsx', 'bin/doorsense.ts', 'agent', ...args], {
    cwd: PROJECT_ROOT,
    reject: false,
    timeout: 60_000,
    env: { DEVICE_TOKEN: '', ...options.env },
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'pipe' })
  })
}

test('arguments: defaults, DEVICE_TOKEN from the environment, the server URL normalised', () => {
  const args = parseAgentArgs([...required, '--stdin'], { DEVICE_TOKEN: 'from-env-123' })
  assert.deepEqual(args, {
    server: 'http://127.0.0.1:20002',
    name: 'pi-door',
    id: 7,
    source: { kind: 'stdin' },
    infer: false,
    token: 'from-env-123',
    batchSize: 100,
    flushMs: 1000,
    queueCapacity: 10000,
    keepAliveMs: 15000,
    timeoutMs: 10000,
    drainMs: 30000
  })
  const serial = parseAgentArgs(
    [...required, '--serial', '/dev/ttyUSB0', '--token', 'cli-token', '--infer', '--batch', '20', '--queue', '500'],
    { DEVICE_TOKEN: 'from-env-123' }
  )
  assert.deepEqual(serial.source, { kind: 'serial', path: '/dev/ttyUSB0', baudRate: 921600 })
  assert.equal(serial.token, 'cli-token')
  assert.equal(serial.infer, true)
  assert.equal(serial.batchSize, 20)
  assert.equal(serial.queueCapacity, 500)
  assert.equal(parseAgentArgs([...required, '--serial', '/dev/ttyS0', '--baud', '115200'], {}).source.kind === 'serial' &&
    (parseAgentArgs([...required, '--serial', '/dev/ttyS0', '--baud', '115200'], {}).source as { baudRate: number }).baudRate, 115200)
  assert.equal(parseAgentArgs(['--server', 'http://pi-server.local:20002/', '--name', 'a', '--id', '0', '--stdin'], {}).server, 'http://pi-server.local:20002')
  assert.equal(parseAgentArgs([...required, '--stdin'], { DEVICE_TOKEN: '' }).token, undefined)
})

test('arguments: each mistake is named', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--name', 'a', '--id', '1', '--stdin'], /--server URL is required/],
    [['--server', 'pi-server:20002', '--name', 'a', '--id', '1', '--stdin'], /--server must be an http:\/\/ or https:\/\/ URL, got "pi-server:20002"/],
    [['--server', 'not a url', '--name', 'a', '--id', '1', '--stdin'], /--server must be a URL/],
    [['--server', 'http://h', '--id', '1', '--stdin'], /--name NAME is required/],
    [['--server', 'http://h', '--name', 'x'.repeat(65), '--id', '1', '--stdin'], /--name must be 1\.\.64 characters, got 65/],
    [['--server', 'http://h', '--name', 'a', '--stdin'], /--id ID is required/],
    [['--server', 'http://h', '--name', 'a', '--id', '32768', '--stdin'], /--id must be an integer 0\.\.32767, got "32768"/],
    [['--server', 'http://h', '--name', 'a', '--id=-1', '--stdin'], /--id must be an integer 0\.\.32767, got "-1"/],
    [[...required], /give exactly one input: --stdin or --serial PATH/],
    [[...required, '--stdin', '--serial', '/dev/ttyUSB0'], /give exactly one input/],
    [[...required, '--stdin', '--baud', '9600'], /--baud applies to --serial only/],
    [[...required, '--stdin', '--batch', '5000'], /--batch must be an integer 1\.\.4096, got "5000"/],
    [[...required, '--stdin', '--queue', '0'], /--queue must be an integer 1\.\.10000000, got "0"/],
    [[...required, '--stdin', '--flush-ms', '1.5'], /--flush-ms must be an integer/],
    [[...required, '--stdin', '--colour'], /Unknown option '--colour'/]
  ]
  for (const [argv, message] of cases) assert.throws(() => parseAgentArgs(argv, {}), message, argv.join(' '))
})

test('the summary is one line, with the skip reasons', () => {
  const counts = { read: 10, sent: 6, rejected: 1, dropped: 2, skipped: 1, retries: 3, keepAlives: 2, keepAliveFailures: 1 }
  const line = formatSummary({ ...counts, abandoned: 2, skippedReasons: [{ reason: 'frame is empty', count: 1 }] })
  assert.equal(line, 'agent: read 10, sent 6, rejected 1, dropped 2, skipped 1 (retries 3, keep-alives 2 ok / 1 failed); ' +
    'gave up on 2 queued frames at the end; skipped: 1× frame is empty')
  assert.ok(!line.includes('\n'))
})

test('CLI end to end: stdin to a real server exits 0 with one summary line; to no server, exits 3 (unsent) after --drain-ms', async (t) => {
  const { url } = await listen(t, { DEVICE_TOKEN: 'the-device-token' })
  const input = ['boot: ESP32-CSI-Tool', ...esp32Lines, '', ...piFrames].join('\n') + '\n'
  // both at once: each child spends seconds starting up
  const [run, down] = await Promise.all([
    agentProcess(['--server', url, '--name', 'pi-cli', '--id', '21', '--stdin', '--batch', '50'], { input, env: { DEVICE_TOKEN: 'the-device-token' } }),
    agentProcess(['--server', 'http://127.0.0.1:1', '--name', 'a', '--id', '1', '--stdin', '--drain-ms', '300'], { input: piFrames.slice(0, 3).join('\n') })
  ])
  assert.equal(run.exitCode, 0, run.stderr)
  const summary = run.stderr.split('\n').filter((line) => line.startsWith('agent: read'))
  assert.equal(summary.length, 1)
  assert.match(summary[0], new RegExp(
    String.raw`^agent: read 333, sent 332, rejected 0, dropped 0, skipped 1 \(retries \d+, keep-alives \d+ ok \/ \d+ failed\); ` +
    String.raw`skipped: 1× frame value 0 is not a finite number`
  ))
  assert.equal(run.stdout, '')
  assert.equal(await framesReceived(url, 21), 332)

  assert.equal(down.exitCode, EXIT.unsent, down.stderr)
  assert.match(down.stderr, /agent: read 3, sent 0, rejected 0, dropped 3, skipped 0 .*gave up on 3 queued frames at the end/)
  assert.match(down.stderr, /agent: exit 3: 3 frames were not delivered/)
})

test('CLI: SIGTERM sends what is queued, then exits 0', async (t) => {
  const { url } = await listen(t)
  // a long flush interval and a large batch keep the frames queued until the signal
  const child = agentProcess(['--server', url, '--name', 'pi-sig', '--id', '22', '--stdin', '--batch', '4096', '--flush-ms', '600000'])
  t.after(() => { child.kill('SIGKILL') }) // only matters when an assertion failed before the SIGTERM
  child.stdin!.write(piFrames.slice(0, 40).join('\n') + '\n')
  // wait until the agent is up (its keep-alive puts it on the live list)
  for (let i = 0; i < 200; i++) {
    const live = await getJson<unknown[]>(`${url}/app/get/list_of_servers`)
    if (live.length > 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(await framesReceived(url, 22), 0, 'still queued')
  child.kill('SIGTERM')
  const run = await child
  assert.equal(run.exitCode, 0, run.stderr)
  assert.match(run.stderr, /agent: SIGTERM: stopping; sending what is queued/)
  assert.match(run.stderr, /agent: read 40, sent 40, rejected 0, dropped 0, skipped 0/)
  assert.equal(await framesReceived(url, 22), 40)
})

test('CLI --infer prints one JSON result per frame on stdout', async (t) => {
  const { app, url } = await listen(t)
  const { rows } = readSessionCsv(readFileSync(SESSION_A_CSV, 'utf8'))
  const slice = rows.filter((_, i) => i % 10 === 0)
  await app.model.startTraining({ kind: 'csi', features: slice.map((row) => row.features), angles: slice.map((row) => row.angle) }, { epochs: 3 })
  await app.model.waitForTraining()

  const input = [...esp32Lines, 'garbage', ...piFrames.slice(0, 20)].join('\n')
  const run = await agentProcess(['--server', url, '--name', 'pi-infer', '--id', '23', '--stdin', '--infer', '--batch', '16'], { input })
  assert.equal(run.exitCode, 0, run.stderr)
  const results = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { angle: number, state: string })
  assert.equal(results.length, 33)
  for (const result of results) assert.ok(app.model.active!.labels.includes(result.angle))
  assert.match(run.stderr, /agent: read 34, sent 33, rejected 0, dropped 0, skipped 1/)
  assert.equal(await framesReceived(url, 23), 0, 'classified, not stored')
})

test('CLI: a usage mistake exits 1 and says what was wrong', async (t) => {
  const printed = t.mock.method(console, 'error', () => {})
  assert.equal(await runAgent(['--server', 'http://127.0.0.1:1', '--name', 'a', '--id', 'seven', '--stdin']), EXIT.usage)
  const message = String(printed.mock.calls[0].arguments[0])
  assert.match(message, /^doorsense agent: --id must be an integer 0\.\.32767, got "seven"/)
  assert.match(message, /usage: doorsense agent/)
})

test('exit codes: 0 all accepted, 2 some rejected, 3 some unsent (which wins), 1 a failed input, 4 no line was a frame', () => {
  assert.deepEqual(EXIT, { ok: 0, usage: 1, rejected: 2, unsent: 3, noFrames: 4 })
  const run = { read: 20, skipped: 0 }
  assert.equal(exitCodeOf({ ...run, rejected: 0, dropped: 0 }), 0)
  assert.equal(exitCodeOf({ ...run, rejected: 13, dropped: 0 }), 2)
  assert.equal(exitCodeOf({ ...run, rejected: 0, dropped: 1 }), 3)
  assert.equal(exitCodeOf({ ...run, rejected: 5, dropped: 1 }), 3)
  assert.equal(exitCodeOf({ ...run, rejected: 0, dropped: 0 }, true), 1)
  // every line skipped: nothing was sent
  assert.equal(exitCodeOf({ read: 50, skipped: 50, rejected: 0, dropped: 0 }), 4)
  assert.equal(exitCodeOf({ read: 50, skipped: 50, rejected: 0, dropped: 0 }, true), 1)
  // some lines skipped, the rest sent: fine; no input at all: nothing to do
  assert.equal(exitCodeOf({ read: 50, skipped: 49, rejected: 0, dropped: 0 }), 0)
  assert.equal(exitCodeOf({ read: 0, skipped: 0, rejected: 0, dropped: 0 }), 0)
})

test('CLI: a session CSV piped in (no line a frame) exits 4 and says what to use instead', async (t) => {
  const { url } = await listen(t)
  const csv = readFileSync(SESSION_A_CSV, 'utf8').split('\n').slice(0, 50).join('\n') + '\n'
  const run = await agentProcess(['--server', url, '--name', 'pi-csv', '--id', '27', '--stdin'], { input: csv })
  assert.equal(run.exitCode, EXIT.noFrames, run.stderr)
  assert.match(run.stderr, /agent: read 50, sent 0, rejected 0, dropped 0, skipped 50 /)
  assert.match(run.stderr, new RegExp(
    'agent: exit 4: none of the 50 lines read was a frame, so nothing was sent; ' +
    '.*a session CSV is imported with doorsense import --data FILE'
  ))
  assert.equal(await framesReceived(url, 27), 0)
})

test('CLI: frames the server rejects exit 2 — a wrong base path (sent 0, rejected 13) and a wrong token', async (t) => {
  const { url } = await listen(t, { DEVICE_TOKEN: 'the-device-token' })
  const input = esp32Lines.join('\n') + '\n'
  const [wrongPath, wrongToken, right] = await Promise.all([
    agentProcess(['--server', `${url}/doorsense`, '--name', 'pi-path', '--id', '24', '--stdin'], { input, env: { DEVICE_TOKEN: 'the-device-token' } }),
    agentProcess(['--server', url, '--name', 'pi-token', '--id', '25', '--stdin'], { input, env: { DEVICE_TOKEN: 'not-the-device-token' } }),
    agentProcess(['--server', url, '--name', 'pi-right', '--id', '26', '--stdin'], { input, env: { DEVICE_TOKEN: 'the-device-token' } })
  ])
  assert.equal(esp32Lines.length, 13)
  assert.equal(wrongPath.exitCode, EXIT.rejected, wrongPath.stderr)
  assert.match(wrongPath.stderr, /agent: read 13, sent 0, rejected 13, dropped 0, skipped 0/)
  assert.match(wrongPath.stderr, /server refused a batch of 13 frames \(404 /)
  assert.match(wrongPath.stderr, /agent: exit 2: the server rejected 13 frames/)
  assert.equal(wrongToken.exitCode, EXIT.rejected, wrongToken.stderr)
  assert.match(wrongToken.stderr, /agent: read 13, sent 0, rejected 13, dropped 0/)
  assert.match(wrongToken.stderr, /\(401 wrong device token\)/)
  assert.equal(right.exitCode, EXIT.ok, right.stderr)
  assert.equal(await framesReceived(url, 24) + await framesReceived(url, 25), 0)
  assert.equal(await framesReceived(url, 26), 13)
})

test('CLI --help lists the exit codes', async () => {
  const help = await agentProcess(['--help'])
  assert.equal(help.exitCode, 0)
  assert.match(help.stdout, new RegExp(
    String.raw`Exit status:\n {2}0 {2}input ended .* accepted every frame\n {2}1 {2}bad usage.*\n {2}2 {2}the server rejected frames.*\n` +
    String.raw` {2}3 {2}frames were left unsent.*\n.*\n {2}4 {2}lines were read but none was a frame`
  ))
})

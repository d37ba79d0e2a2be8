import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parseFrame } from '../../../domain/frames.js'
import type { Door } from '../../../schemas/doors.js'
import { admin, door, postFrames, recordAngle, splitByAngle, waitForDoor } from '../../fixtures/doors.js'
import { listen } from '../../fixtures/live-server.js'
import { sessionRows } from '../../fixtures/training.js'
import { RPI_RAW_FRAMES } from '../../helper.js'

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

/** Frames of another recording: another room as far as a door's model is concerned. */
const otherRoom = () => readFileSync(RPI_RAW_FRAMES, 'utf8').trim().split('\n').map((line) => parseFrame(line))

// The gate judges a model on the last fifth of what was captured of each angle. On session A every
// calibration that includes 15° fails the ajar self-check (its held-out 15° reads closed), and that
// stretch (64–80 % of each angle's rows) is where its closed frames look most like open ones
// (balanced accuracy .41 there, against .85 on the real tails): the gate refuses this calibration,
// rightly by its own measure. An admin activates it anyway (force) to follow the workflow through;
// the verdict itself is tested in test/ml/door/calibration.test.ts and test/plugins/doors/ajar.test.ts.

test('all seven angles of session A, calibrated on the first 80 % of each: refused by the self-check, activated by force, then its own tails read, and another room is unknown', async (t) => {
  // a third of the default epochs: seven models train (the door's, the held-out one, five left out)
  const { url } = await listen(t, { DOOR_EPOCHS: '10' })
  const device = 5
  await fetch(`${url}/server/post/keep_alive`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ NAME: 'front door', ID: device })
  })
  assert.equal((await door(url, device)).model, null, 'no model answers yet')
  assert.equal((await door(url, device)).reason?.code, 'no-model')

  const angles = splitByAngle(sessionRows())
  for (const { angle, head } of angles) {
    const recorded = await recordAngle(url, device, angle, head.map((row) => row.features))
    assert.equal(recorded.calibration.captured[String(angle)], head.length, `every frame of ${angle}° was captured, none twice`)
  }

  const finish = await admin(url, 'POST', `/doors/${device}/calibration/finish`)
  assert.equal(finish.status, 202, await finish.clone().text())
  const accepted = await finish.json() as { version: string, status: string }
  assert.equal(accepted.status, 'training')
  assert.match(accepted.version, /^door5-/)
  const again = await admin(url, 'POST', `/doors/${device}/calibration/finish`)
  assert.equal(again.status, 409, 'a second finish while the first trains is refused')
  assert.ok(Number(again.headers.get('retry-after')) > 0, 'with a Retry-After')

  const refused = await waitForDoor(url, device, (d) => d.calibration.status !== 'training')
  assert.equal(refused.calibration.status, 'failed', JSON.stringify(refused.calibration))
  const result = refused.calibration.result
  assert.ok(result?.selfCheck)
  assert.equal(result.activated, false)
  // the held-out 15°, then each other open angle through a model calibrated without it
  assert.deepEqual(result.selfCheck.checks.map((c) => [c.angle, c.model]), [
    [15, 'held-out'], [30, 'left-out'], [45, 'left-out'], [60, 'left-out'], [75, 'left-out'], [90, 'left-out']
  ])
  assert.equal(result.selfCheck.checks[0].passed, false)
  assert.match(refused.calibration.reasons[0], /^15° read closed on \d+ % of its held-out frames/)
  assert.equal(result.confusion.counts.length, 2)
  assert.deepEqual(result.perAngle.map((r) => r.angle), [0, 15, 30, 45, 60, 75, 90])
  t.diagnostic(`all seven: self-check ${result.selfCheck.checks.map((c) => `${c.angle}° ${(c.closedShare * 100).toFixed(0)} %`).join(', ')}; ` +
    `balanced ${result.doorState.openClosed.balancedAccuracy.toFixed(2)}`)

  // the admin insists
  const forced = await admin(url, 'POST', '/training/post/activate', { version: accepted.version, force: true })
  assert.equal(forced.status, 200, await forced.clone().text())
  assert.equal((await forced.json() as { forced?: boolean }).forced, true)
  const ready = await door(url, device)
  assert.equal(ready.calibration.status, 'failed', 'the last calibration still says it was refused, and why')
  assert.deepEqual(ready.model, { version: accepted.version, scope: 'door' })
  assert.equal(ready.reason?.code, 'closed-or-ajar', 'the angles it cannot tell from closed read closed-or-ajar')

  // each angle's held-out tail, posted as the Pi would, 10 frames a batch; the door is read after
  // every batch once the window has filled with the tail's frames (k = 25, plus the leave count)
  const said: Array<{ angle: number, states: string[], recalibration: boolean }> = []
  for (const { angle, tail } of angles) {
    const states: string[] = []
    let recalibration = false
    for (let i = 0; i < tail.length; i += 10) {
      await postFrames(url, device, tail.slice(i, i + 10).map((row) => row.features))
      const now = await door(url, device)
      if (i + 10 >= 30) states.push(now.state)
      recalibration ||= now.needsRecalibration
    }
    said.push({ angle, states, recalibration })
  }
  const share = (angle: number, states: string[]) => states.filter((state) => angle === 0 ? state === 'closedOrAjar' : state === 'open').length / states.length
  const report = said.map(({ angle, states }) => `${angle}°: ${share(angle, states).toFixed(2)}`).join(', ')
  t.diagnostic(`tails read right: ${report}`)
  assert.ok(said.every(({ states }) => !states.includes('closed')), 'a door that cannot tell ajar from closed never says a plain closed')
  assert.ok(share(0, said[0].states) >= 0.5, `the closed tail reads closed-or-ajar most of the time (${report})`)
  assert.ok(said.slice(1).filter(({ angle, states }) => share(angle, states) >= 0.5).length >= 1, `some open tails read open (${report})`)
  assert.ok(said.every(({ recalibration }) => !recalibration), 'the door\'s own tails never raise needsRecalibration')

  // another room's frames: sustained novelty → needs recalibration, and unknown rather than a confident guess
  const seenAway: string[] = []
  for (const frames of chunks(otherRoom(), 20)) {
    await postFrames(url, device, frames, 20)
    const now = await door(url, device)
    seenAway.push(`${now.state}${now.needsRecalibration ? '!' : ''}`)
  }
  t.diagnostic(`rpi-raw-frames.txt, every 20 frames: ${seenAway.join(' ')}`)
  const lost = await door(url, device)
  assert.equal(lost.needsRecalibration, true)
  assert.equal(lost.state, 'unknown')
  assert.equal(lost.reason?.code, 'unfamiliar')
  const metrics = await (await fetch(`${url}/metrics`)).text()
  assert.match(metrics, /^doorsense_door_needs_recalibration\{device="5"\} 1$/m)
  // familiar frames again clear it
  await postFrames(url, device, angles[6].tail.map((row) => row.features), 20)
  const back = await door(url, device)
  assert.equal(back.needsRecalibration, false)
  assert.equal(back.state, 'open')

  // the version is listed with its door and its refused gate, and its evaluation served in the schema's shape
  const models = await (await fetch(`${url}/training/get/models`)).json() as {
    versions: Array<{ version: string, scope: string, device?: number, active: boolean, gate?: { passed: boolean } }>
  }
  assert.deepEqual(
    models.versions
      .filter((v) => v.scope === 'door')
      .map(({ version, device: d, active, gate }) => ({ version, device: d, active, passed: gate?.passed })),
    [{ version: accepted.version, device, active: true, passed: false }]
  )
  const evaluation = await (await fetch(`${url}/training/get/evaluation?version=${accepted.version}`)).json() as {
    evaluation: { doorState: { window: number } }
  }
  assert.equal(evaluation.evaluation.doorState.window, 25)

  // forgetting the calibration: back to no model of its own, no calibration frames
  const forgot = await (await admin(url, 'DELETE', `/doors/${device}/calibration`)).json() as Door
  assert.equal(forgot.model, null)
  assert.deepEqual(forgot.calibration.captured, {})
  assert.equal(forgot.calibration.status, 'idle')
})

test('a calibration of the closed door alone is refused with reasons a user can act on, and changes nothing', async (t) => {
  const { url } = await listen(t)
  const device = 8
  const closed = splitByAngle(sessionRows())[0]
  await postFrames(url, device, closed.head.slice(0, 3).map((row) => row.features))
  await recordAngle(url, device, 0, closed.head.slice(0, 150).map((row) => row.features))
  const refused = await admin(url, 'POST', `/doors/${device}/calibration/finish`)
  assert.equal(refused.status, 400)
  const body = await refused.json() as { code: string, message: string }
  assert.equal(body.code, 'DS_CALIBRATION_REFUSED')
  assert.match(body.message, /No frames of the open door yet: record it ajar \(15°, the smallest opening that must count as open\) and fully open \(90°\)/)
  assert.match(body.message, /Only 150 frames of the door closed \(0°\): record 50 more/)
  const after = await door(url, device)
  assert.equal(after.calibration.status, 'failed')
  assert.equal(after.calibration.reasons.length, 2)
  assert.match(after.calibration.reasons[0], /record it ajar/)
  assert.equal(after.model, null, 'the door keeps what it had: nothing')
  assert.deepEqual(after.calibration.captured, { 0: 150 }, 'the frames posted before the capture are not calibration frames')
  assert.equal((await fetch(`${url}/training/get/models`).then((r) => r.json()) as { versions: unknown[] }).versions.length, 0)
})

test('captures: one at a time per door, a frame limit, cancel keeps what was stored, and bad requests change nothing', async (t) => {
  const { url } = await listen(t)
  const device = 3
  const frames = sessionRows().slice(0, 40).map((row) => row.features)
  assert.equal((await admin(url, 'POST', `/doors/${device}/calibration/capture`, { angle: 0 })).status, 404, 'an unknown device is no door')
  await postFrames(url, device, frames.slice(0, 5))
  assert.equal((await fetch(`${url}/doors/${device}/calibration/capture`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"angle":0}'
  })).status, 401, 'admin only')
  assert.equal((await admin(url, 'POST', `/doors/${device}/calibration/capture`, { angle: 91 })).status, 400)
  assert.equal((await admin(url, 'POST', `/doors/${device}/calibration/capture`, { angle: 0, frames: 10, seconds: 60 })).status, 202)
  assert.equal((await admin(url, 'POST', `/doors/${device}/calibration/capture`, { angle: 90 })).status, 409, 'one capture at a time')
  await postFrames(url, device, frames.slice(5, 20))
  const limited = await waitForDoor(url, device, (d) => d.calibration.capture === null, 5000)
  assert.deepEqual(limited.calibration.captured, { 0: 10 }, 'the capture stopped at its frame limit')

  assert.equal((await admin(url, 'POST', `/doors/${device}/calibration/capture`, { angle: 90, seconds: 60 })).status, 202)
  await postFrames(url, device, frames.slice(20, 27))
  const capturing = await waitForDoor(url, device, (d) => d.calibration.capture?.framesStored === 7, 5000)
  assert.equal(capturing.calibration.status, 'capturing')
  const cancelled = await (await admin(url, 'DELETE', `/doors/${device}/calibration/capture`)).json() as Door
  assert.equal(cancelled.calibration.capture, null)
  assert.deepEqual(cancelled.calibration.captured, { 0: 10, 90: 7 }, 'cancel keeps the frames stored so far')
  await postFrames(url, device, frames.slice(27, 40))
  assert.deepEqual((await door(url, device)).calibration.captured, { 0: 10, 90: 7 }, 'nothing is captured after cancel')
  assert.equal((await admin(url, 'DELETE', `/doors/${device}/calibration/capture`)).status, 409, 'nothing to cancel')
})

test('delete_samples of a door\'s calibration while it trains is a 409, as DELETE /doors/{id}/calibration is; afterwards it deletes', async (t) => {
  const { url } = await listen(t, { DOOR_EPOCHS: '5' })
  const device = 6
  await fetch(`${url}/server/post/keep_alive`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ NAME: 'back door', ID: device })
  })
  for (const { angle, head } of splitByAngle(sessionRows()).filter((part) => [0, 15, 90].includes(part.angle))) {
    await recordAngle(url, device, angle, head.slice(0, 200).map((row) => row.features))
  }
  assert.equal((await admin(url, 'POST', `/doors/${device}/calibration/finish`)).status, 202)
  const whileTraining = await admin(url, 'POST', '/training/post/delete_samples', { source: 'calibration', device })
  assert.equal(whileTraining.status, 409, await whileTraining.clone().text())
  assert.match((await whileTraining.json() as { message: string }).message, /^door 6's calibration is training/)
  assert.equal((await admin(url, 'POST', '/training/post/delete_samples', { all: true })).status, 409, 'every sample includes them too')
  assert.equal((await admin(url, 'POST', '/training/post/delete_samples', { source: 'calibration', device: 7 })).status, 200,
    'another door\'s are another matter')
  assert.deepEqual((await door(url, device)).calibration.captured, { 0: 200, 15: 200, 90: 200 })
  await waitForDoor(url, device, (d) => d.calibration.status !== 'training')
  const after = await admin(url, 'POST', '/training/post/delete_samples', { source: 'calibration', device })
  assert.equal(after.status, 200)
  assert.equal((await after.json() as { deleted: number }).deleted, 600)
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { App } from '../../../core/app.js'
import type { Door } from '../../../schemas/doors.js'
import { ADMIN, buildTestApp, tempDir } from '../../helper.js'

async function keepAlive (app: App, device: number, name: string): Promise<void> {
  const response = await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: name, ID: device } })
  assert.equal(response.statusCode, 200, response.body)
}

async function nameOf (app: App, device: number): Promise<string> {
  return (await app.inject(`/doors/${device}`)).json<Door>().name
}

function rename (app: App, device: number, payload: unknown, headers: Record<string, string> = ADMIN) {
  return app.inject({ method: 'PATCH', url: `/doors/${device}`, headers, payload: payload as object })
}

test('PATCH /doors/{id} gives a door a name its Pi\'s keep-alives do not change, kept across a restart; null gives the Pi\'s NAME back; removing the door forgets it', async (t) => {
  const dataDir = tempDir(t)
  const first = await buildTestApp(t, {}, { dataDir })
  await keepAlive(first, 4, 'pi-hall')
  await new Promise((resolve) => setImmediate(resolve)) // the new door's own announcement
  const announced: Door[] = []
  first.doors.on('door', (door) => { if (door.device === 4) announced.push(door) })

  const renamed = await rename(first, 4, { name: '  Front door ' })
  assert.equal(renamed.statusCode, 200, renamed.body)
  assert.equal(renamed.json<Door>().name, 'Front door', 'answered with the door, its name trimmed')
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(announced.map((door) => door.name), ['Front door'], 'the door streams and Home Assistant hear of it once')

  await keepAlive(first, 4, 'pi-hall-2')
  assert.equal(await nameOf(first, 4), 'Front door')
  const known = (await first.inject('/app/get/known_servers')).json<Array<{ id: number, name: string }>>()
  assert.equal(known.find((pi) => pi.id === 4)?.name, 'pi-hall-2', 'the legacy lists keep what the Pi calls itself')
  await first.close()

  const second = await buildTestApp(t, {}, { dataDir })
  assert.equal(await nameOf(second, 4), 'Front door', 'kept across a restart')
  assert.equal((await rename(second, 4, { name: null })).json<Door>().name, 'pi-hall-2')
  assert.equal((await rename(second, 4, { name: 'Back door' })).statusCode, 200)

  assert.equal((await second.inject({ method: 'DELETE', url: '/doors/4', headers: ADMIN })).statusCode, 204)
  await keepAlive(second, 4, 'pi-hall')
  assert.equal(await nameOf(second, 4), 'pi-hall', 'a removed door comes back under its Pi\'s NAME')
})

test('a rename that is not admin, not a name, or not a door is refused and changes nothing', async (t) => {
  const app = await buildTestApp(t)
  await keepAlive(app, 4, 'pi-hall')

  assert.equal((await rename(app, 4, { name: 'Front door' }, {})).statusCode, 401)
  for (const payload of [
    {}, { name: '' }, { name: '   ' }, { name: 'x'.repeat(65) }, { name: 'a\nb' }, { name: 'a\u0000' }, { name: 42 }, { name: 'ok', other: 1 }
  ]) {
    const response = await rename(app, 4, payload)
    assert.equal(response.statusCode, 400, `${JSON.stringify(payload)}: ${response.body}`)
    assert.match(response.json<{ message: string }>().message, /name|other/, JSON.stringify(payload))
  }
  assert.equal(await nameOf(app, 4), 'pi-hall')
  assert.equal((await rename(app, 4, { name: 'é door — 64 characters are fine'.padEnd(64, '.') })).statusCode, 200)

  const missing = await rename(app, 5, { name: 'Nowhere' })
  assert.equal(missing.statusCode, 404, missing.body)
  assert.equal((await app.inject('/doors/5')).statusCode, 404, 'a rename creates no door')
})

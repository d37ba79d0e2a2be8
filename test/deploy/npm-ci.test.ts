/**
 * What `npm ci` says about package.json and package-lock.json on the Node
 * running the tests (20 on this project's machines): no EBADENGINE warning,
 * i.e. every locked package declares support for it. light-my-request 6.8
 * (Fastify's inject) asks for cookie ^2, which declares node >= 22, so the
 * lock pins it to cookie 1.x ("overrides" in package.json); the second test
 * shows inject's cookies still work on it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../core/project.js'
import { tempDir } from '../helper.js'

test('npm ci on this Node prints no EBADENGINE: every locked package supports it', async (t) => {
  const dir = tempDir(t)
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(PROJECT_ROOT, file), join(dir, file))
  // a dry run reads the lock only: nothing is fetched, nothing installed; a clean environment
  // (no npm_config_* of an `npm test` around it) and an empty cache of its own
  const run = await execa('npm', ['ci', '--dry-run', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', '--cache', join(dir, 'cache')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir },
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 120_000
  })
  assert.equal(run.exitCode, 0, run.all)
  assert.match(run.all ?? '', /added \d+ packages/)
  assert.doesNotMatch(run.all ?? '', /EBADENGINE/, `on Node ${process.version}:\n${run.all}`)
})

test('inject sends cookies through light-my-request on the pinned cookie 1.x', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  app.get('/', async (request) => ({ cookie: request.headers.cookie ?? null }))
  const response = await app.inject({ method: 'GET', url: '/', cookies: { session: 'a b', theme: 'dark' } })
  assert.deepEqual(response.json(), { cookie: 'session=a%20b; theme=dark' })
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isRunning } from '../../bin/lib/server-process.js'
import { deployedServer, explain, V1_VERSION } from '../fixtures/ops.js'

test('bin/redeploy rolls back a new version that does not come up', { timeout: 600_000 }, async (t) => {
  const { repo, tracker, v1, pid: v1Pid, redeploy, servedVersion, head } = await deployedServer(t)
  assert.equal(await servedVersion(), V1_VERSION)
  let servingPid = v1Pid

  await t.test('a commit that breaks start-up is rolled back and the old version keeps serving', async () => {
    await repo.commitAndPush('v3 breaks start-up', (work) => {
      const serve = join(work, 'bin/serve.ts')
      writeFileSync(serve, `console.error('broken on purpose'); process.exit(1)\n${readFileSync(serve, 'utf8')}`)
    })
    const run = await redeploy({ REDEPLOY_BUILD_CMD: 'none' })
    assert.equal(run.exitCode, 4, explain(run))
    assert.match(run.output, /broken on purpose/, 'the failed server\'s output is in the log')
    assert.match(run.output, /rollback checkout: \$ git reset --hard/)
    assert.equal(await head(), v1, 'back on the recorded commit')
    assert.equal(await servedVersion(), V1_VERSION)
    const pid = tracker.current()
    assert.ok(pid !== undefined && isRunning(pid) && pid !== servingPid, 'the old version was started again')
    assert.ok(!isRunning(servingPid), 'the server that ran before was stopped for the redeploy')
    servingPid = pid
  })

  await t.test('a new version that never answers is stopped after the health timeout and rolled back', async () => {
    const original = readFileSync(join(repo.checkout, 'bin/serve.ts'), 'utf8')
    await repo.commitAndPush('v4 hangs at start-up', (work) => {
      writeFileSync(join(work, 'bin/serve.ts'), `setInterval(() => {}, 60_000)\nawait new Promise(() => {})\n${original}`)
    })
    const run = await redeploy({ REDEPLOY_HEALTH_TIMEOUT_S: '4', REDEPLOY_BUILD_CMD: 'none' })
    assert.equal(run.exitCode, 4, explain(run))
    const hung = Number(/redeploy: start: pid (\d+)/.exec(run.output)?.[1])
    assert.ok(hung > 0, 'the new server\'s pid is logged')
    assert.ok(!isRunning(hung), 'the hung new server was stopped')
    assert.match(run.output, /not healthy within 4 s/)
    assert.equal(await head(), v1)
    assert.equal(await servedVersion(), V1_VERSION)
    const pid = tracker.current()
    assert.ok(pid !== undefined && isRunning(pid) && pid !== servingPid && pid !== hung)
  })
})

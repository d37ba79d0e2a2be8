import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import { readPid } from '../../core/pid-file.js'
import { isRunning } from '../../bin/lib/server-process.js'
import { redeployLockPath } from '../../core/redeploy-lock.js'
import { deployedServer, explain, get, runScript, setVersion, V1_VERSION, waitFor } from '../fixtures/ops.js'

/** Polls the liveness route while `work` runs; the longest stretch between two good answers is the downtime a client sees. */
async function pollDuring<T> (env: Record<string, string>, work: Promise<T>): Promise<{ result: T, downtimeMs: number, failedPolls: number }> {
  const polling = { done: false }
  let lastOk = performance.now()
  let downtimeMs = 0
  let failedPolls = 0
  const poller = (async () => {
    while (!polling.done) {
      const answer = await get(env, '/debug/get/exists')
      const now = performance.now()
      if (answer?.status === 200) {
        downtimeMs = Math.max(downtimeMs, now - lastOk)
        lastOk = now
      } else {
        failedPolls++
      }
      await sleep(20)
    }
  })()
  const result = await work
  polling.done = true
  await poller
  return { result, downtimeMs, failedPolls }
}

function dataDirState (dataDir: string): string {
  return readdirSync(dataDir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const file = join(entry.parentPath, entry.name)
      return `${file} ${statSync(file).mtimeMs} ${statSync(file).size}`
    })
    .sort()
    .join('\n')
}

test('bin/redeploy: lock, dry run, a new commit served', { timeout: 600_000 }, async (t) => {
  const { repo, dataDir, env, tracker, v1, redeploy, servedVersion, head } = await deployedServer(t)
  let servingPid = tracker.current() as number
  assert.equal(await servedVersion(), V1_VERSION)

  await t.test('the lock: a second redeploy exits 2 while one runs; a failed build leaves the server alone; a stale lock does not block', async () => {
    // nothing to pull yet: the first one holds the lock through a slow build that fails
    const slow = redeploy({ REDEPLOY_BUILD_CMD: 'node -e setTimeout(()=>process.exit(3),3000)' })
    await waitFor('the first redeploy to hold the lock', () => existsSync(redeployLockPath(dataDir)), 20_000)
    const holder = readPid(redeployLockPath(dataDir))
    const second = await redeploy()
    assert.equal(second.exitCode, 2, explain(second))
    assert.match(second.output, new RegExp(`another redeploy \\(pid ${holder}\\) holds .*redeploy\\.lock`))
    const first = await slow
    assert.equal(first.exitCode, 3, explain(first))
    assert.match(first.output, /build failed; the running server is left as it is/)
    assert.equal(await head(), v1, 'nothing was pulled, nothing moved')
    assert.equal(tracker.current(), servingPid, 'the server was not touched')
    assert.ok(isRunning(servingPid))

    const exited = execa(process.execPath, ['-e', '0'])
    await exited
    writeFileSync(redeployLockPath(dataDir), `${exited.pid}\n`)
    const dry = await redeploy({}, ['--dry-run'])
    assert.equal(dry.exitCode, 0, explain(dry))
    assert.ok(!existsSync(redeployLockPath(dataDir)))
  })

  const v2 = await repo.commitAndPush('v2', (work) => setVersion(work, '0.2.0-redeploy-test.2'))

  await t.test('--dry-run prints every step with the default commands and changes nothing', async () => {
    const before = dataDirState(dataDir)
    const run = await runScript(repo.checkout, 'bin/redeploy.ts', ['--dry-run'], env)
    assert.equal(run.exitCode, 0, explain(run))
    for (const line of [
      'pull: would run $ git pull --ff-only origin main',
      'install: would run $ npm ci --no-audit --no-fund',
      'build: would run $ tsc --noEmit',
      'docs: would run $ node --import tsx bin/generate-docs.ts',
      `stop: would send SIGTERM to pid ${servingPid}`,
      'start: would run $ node --import tsx bin/serve.ts',
      `health: would wait up to 60.00 s for GET http://127.0.0.1:${env.PORT}/debug/get/exists`,
      `on failure: would run $ git reset --hard ${v1}`
    ]) assert.ok(run.output.includes(line), `missing "${line}" in:\n${run.output}`)
    assert.equal(await head(), v1, 'the checkout did not move')
    assert.equal(readPid(join(dataDir, 'doorsense.pid')), servingPid)
    assert.ok(isRunning(servingPid), 'the server was not stopped')
    assert.equal(await servedVersion(), V1_VERSION)
    assert.equal(dataDirState(dataDir), before, 'DATA_DIR is unchanged (no lock left behind, no record written)')
    assert.equal(await repo.git(repo.checkout, 'status', '--porcelain', '--untracked-files=no'), '')
  })

  await t.test('a new commit is pulled, installed, built and served', async () => {
    const { result: run, downtimeMs, failedPolls } = await pollDuring(env, redeploy())
    assert.equal(run.exitCode, 0, explain(run))
    assert.equal(await head(), v2)
    assert.equal(await servedVersion(), '0.2.0-redeploy-test.2')
    const newPid = tracker.current()
    assert.ok(newPid !== undefined && newPid !== servingPid, 'a new server process answers')
    assert.ok(!isRunning(servingPid), 'the old server is gone')
    assert.match(run.output, /docs: skipped \(none\)/)
    for (const step of ['lock', 'check', 'record', 'pull', 'install', 'build', 'stop', 'start', 'health']) {
      assert.match(run.output, new RegExp(`redeploy: ${step}: ok in \\d+\\.\\d\\d s`), `step ${step} logged with its duration`)
    }
    assert.match(run.output, /\$ git pull --ff-only origin main/)
    const record = JSON.parse(readFileSync(join(dataDir, 'redeploy-last.json'), 'utf8')) as { exitCode: number, fromCommit: string, toCommit: string }
    assert.deepEqual([record.exitCode, record.fromCommit, record.toCommit], [0, v1, v2])
    assert.ok(!existsSync(redeployLockPath(dataDir)), 'the lock is released')
    t.diagnostic(`redeploy end to end ${(run.ms / 1000).toFixed(2)} s (fast install/build, no docs); ` +
      `longest gap between good answers ${(downtimeMs / 1000).toFixed(2)} s (${failedPolls} failed polls)`)
    for (const line of run.output.split('\n').filter((line) => / ok in |clients waited/.test(line))) t.diagnostic(line)
    servingPid = newPid
  })
})

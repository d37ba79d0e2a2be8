/**
 * How bin/serve.ts starts where DATA_DIR is not what it should be, each in a
 * child process: a fatal start error is one line on stderr naming the path
 * and the fix (as an environment error is), a disk too full for anything
 * starts read-only, and a pid file naming a live process that is not a
 * doorsense server does not block the start.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { STORAGE_FULL_MESSAGE } from '../../core/errors.js'
import { isAlive, PID_FILE, readPid } from '../../core/pid-file.js'
import { PROJECT_ROOT } from '../../core/project.js'
import { exitWithin, listeningUrl, spawnServe } from '../fixtures/serve-process.js'
import { fillDisk, freeBytes, mountSmallDisk, remountReadOnly } from '../fixtures/small-disk.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'
import { ADMIN, ADMIN_TOKEN, buildTestApp, tempDir } from '../helper.js'

/** What an unprivileged user gets (nobody), when this runs as root. */
const NOBODY = 65534

/** Starts bin/serve.ts on `env`, expects it to exit 1, and returns its one line of stderr. */
async function failedStart (t: import('node:test').TestContext, env: Record<string, string>): Promise<string> {
  const server = spawnServe(t, { LOG_TO_FILE: 'false', ...env })
  assert.equal(await exitWithin(server, 60_000), 1, `stderr:\n${server.stderr()}`)
  return oneLine(server.stderr())
}

/**
 * Starts serve as this user, or as nobody when this runs as root (every folder
 * is writable to root), and waits for it to exit 1.
 * @returns its stderr, and the user it ran as
 */
async function failedStartAsUser (
  t: import('node:test').TestContext,
  dataDir: string,
  port: string,
  root: boolean
): Promise<{ stderr: string, user: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/serve.ts'], {
    cwd: PROJECT_ROOT,
    // NODE_V8_COVERAGE empty: Node hands c8's coverage folder to every child otherwise, and nobody may not write it
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: port, HOST: '127.0.0.1', TF_BACKEND: 'cpu', LOG_TO_FILE: 'false', NODE_V8_COVERAGE: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(root ? { uid: NOBODY, gid: NOBODY } : {})
  })
  t.after(() => { child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code] = await once(child, 'close') as [number]
  assert.equal(code, 1, stderr)
  const user = root ? 'nobody' : (await import('node:os')).userInfo().username
  return { stderr, user }
}

function oneLine (stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line !== '')
  assert.equal(lines.length, 1, `one line on stderr, not:\n${stderr}`)
  return lines[0] as string
}

test('serve: DATA_DIR that is a file, or has a file for a parent, is one line naming the file and the fix', async (t) => {
  const root = tempDir(t)
  const file = join(root, 'data')
  writeFileSync(file, 'not a folder\n')
  assert.equal(await failedStart(t, { DATA_DIR: file }),
    `doorsense: cannot start: ${file} is a file where a folder is needed (for ${file}); move the file away or set DATA_DIR to a folder`)
  assert.equal(await failedStart(t, { DATA_DIR: join(file, 'doorsense') }),
    `doorsense: cannot start: ${file} is a file where a folder is needed (for ${join(file, 'doorsense')}); move the file away or set DATA_DIR to a folder`)
  // a file where doorsense's own folder for its logs belongs
  const dataDir = join(root, 'with-logs-file')
  mkdirSync(dataDir)
  writeFileSync(join(dataDir, 'logs'), '')
  assert.match(await failedStart(t, { DATA_DIR: dataDir, LOG_TO_FILE: 'true' }),
    new RegExp(`^doorsense: cannot start: ${join(dataDir, 'logs')} is a file where a folder is needed`))
})

test('serve: a DATA_DIR the user may not write is one line naming the user, the path and the fix', async (t) => {
  const parent = tempDir(t)
  chmodSync(parent, 0o755)
  const dataDir = join(parent, 'data')
  mkdirSync(dataDir, { mode: 0o755 })
  const root = process.getuid?.() === 0
  if (!root) chmodSync(dataDir, 0o500)
  // as root every folder is writable: run the server as nobody (a root-owned 0755 folder is not theirs)
  const { stderr, user } = await failedStartAsUser(t, dataDir, '0', root)
  assert.match(oneLine(stderr), new RegExp(
    `^doorsense: cannot start: user ${user} may not write ${dataDir}/doorsense\\.pid\\.\\d+\\.tmp \\(DATA_DIR ${dataDir}\\); ` +
    `make DATA_DIR that user's \\(chown -R ${user} ${dataDir}\\) or set DATA_DIR to a folder it may write$`))
})

test('serve: a HOST or PORT it cannot listen on is one line naming the setting, not DATA_DIR', async (t) => {
  // 192.0.2.1 (TEST-NET-1) is no address of this machine: binding to it fails at once, nothing is sent
  assert.equal(await failedStart(t, { DATA_DIR: join(tempDir(t), 'data'), HOST: '192.0.2.1' }),
    'doorsense: cannot start: 192.0.2.1 is not an address of this machine (HOST=192.0.2.1); set HOST to one of its addresses, 127.0.0.1, or 0.0.0.0 for all')
  // a port below 1024 as an unprivileged user (nobody, when this runs as root): an EACCES that is not DATA_DIR's
  const root = process.getuid?.() === 0
  const parent = tempDir(t)
  chmodSync(parent, 0o755)
  const dataDir = join(parent, 'data')
  mkdirSync(dataDir, { mode: 0o700 })
  if (root) chownSync(dataDir, NOBODY, NOBODY)
  const { stderr, user } = await failedStartAsUser(t, dataDir, '80', root)
  assert.equal(oneLine(stderr),
    `doorsense: cannot start: user ${user} may not listen on port 80 (PORT=80; ports below 1024 need privileges); ` +
    'set PORT to 1024 or above (the default is 20002)')
})

test('serve: DATA_DIR on a read-only file system is one line naming it and the fix', async (t) => {
  const disk = mountSmallDisk(t, 1)
  if ('skip' in disk) {
    t.skip(disk.skip)
    return
  }
  const dataDir = join(disk.dir, 'data')
  mkdirSync(dataDir)
  remountReadOnly(disk.dir)
  assert.match(await failedStart(t, { DATA_DIR: dataDir }),
    new RegExp(`^doorsense: cannot start: ${dataDir}/doorsense\\.pid\\.\\d+\\.tmp is on a read-only file system \\(DATA_DIR ${dataDir}\\); ` +
      'remount it read-write or set DATA_DIR to a folder on a writable disk$'))
  // a DATA_DIR still to be made there: the folder that cannot take it is named
  const missing = join(disk.dir, 'new', 'data')
  assert.equal(await failedStart(t, { DATA_DIR: missing }),
    `doorsense: cannot start: ${disk.dir} is on a read-only file system (DATA_DIR ${missing}); ` +
    'remount it read-write or set DATA_DIR to a folder on a writable disk')
})

test('serve: a first start on a full disk (no room for the database) is one line saying so', async (t) => {
  const disk = mountSmallDisk(t, 1)
  if ('skip' in disk) {
    t.skip(disk.skip)
    return
  }
  fillDisk(disk.dir)
  const dataDir = join(disk.dir, 'data')
  assert.equal(await failedStart(t, { DATA_DIR: dataDir, ADMIN_TOKEN, STORAGE_RESERVE_MB: '0' }),
    `doorsense: cannot start: no space left on the disk holding DATA_DIR ${dataDir} for the database ${join(dataDir, 'doorsense.sqlite')}; ` +
    `free some space on it (df -h ${dataDir}) and start again`)
})

test('serve: a restart on a full disk starts read-only, says so in one log line, answers reads, and refuses writes with 507', async (t) => {
  const disk = mountSmallDisk(t, 8)
  if ('skip' in disk) {
    t.skip(disk.skip)
    return
  }
  const dataDir = join(disk.dir, 'data')
  // a first run stores samples and stops cleanly (its write-ahead log is then gone)
  const first = await buildTestApp(t, { STORAGE_RESERVE_MB: '0' }, { dataDir })
  const imported = await first.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(20))
  })
  assert.equal(imported.statusCode, 200)
  await first.close()
  // then the disk fills up to its last byte (no reserve left to give back)
  fillDisk(disk.dir)
  assert.equal(freeBytes(disk.dir), 0)

  const server = spawnServe(t, { DATA_DIR: dataDir, ADMIN_TOKEN, STORAGE_RESERVE_MB: '0', LOG_LEVEL: 'info', LOG_TO_FILE: 'false' })
  const base = await listeningUrl(server)
  const said = server.logLines().filter((line) => /read-only/.test(String(line.msg)))
  assert.equal(said.length, 1, server.stdout())
  assert.equal(said[0]?.msg,
    `the disk holding DATA_DIR ${dataDir} is full: started read-only — reads answer, writes answer 507 (storage full) until there is room; ` +
    `no pid file could be written (${join(dataDir, PID_FILE)}), so the watchdog, redeploy and the CLI do not see this server (pid ${server.child.pid}); ` +
    'free some space on that disk and restart doorsense')
  assert.equal(server.stderr(), '', 'no stack')

  const dataset = await fetch(`${base}/training/get/dataset`)
  assert.equal(dataset.status, 200)
  assert.equal(((await dataset.json()) as { total: number }).total, 140, 'the stored samples are read')
  assert.equal((await fetch(`${base}/doors`)).status, 200)
  const json = { 'content-type': 'application/json' }
  for (const [path, body, headers] of [
    ['/server/post/frames', { ID: 3, frames: [Array.from(sessionSlice(1)[0]?.features ?? [])] }, json],
    ['/training/post/delete_samples', { angle: 0 }, { ...json, ...ADMIN }]
  ] as const) {
    const response = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) })
    assert.equal(response.status, 507, path)
    assert.deepEqual(await response.json(), { statusCode: 507, error: 'Insufficient Storage', message: STORAGE_FULL_MESSAGE, code: 'DS_STORAGE_FULL' })
  }
  server.child.kill('SIGTERM')
  assert.equal(await exitWithin(server, 10_000), 0, server.stderr())
})

test('serve: a pid file naming a live process that is not a doorsense server (another node program, sleep) does not block the start', async (t) => {
  for (const [command, args] of [[process.execPath, ['-e', 'setInterval(() => {}, 1000)']], ['sleep', ['30']]] as const) {
    const other = spawn(command, args, { stdio: 'ignore' })
    t.after(() => { other.kill() })
    await once(other, 'spawn')
    assert.ok(other.pid)
    const dataDir = tempDir(t)
    const pidFile = join(dataDir, PID_FILE)
    writeFileSync(pidFile, `${other.pid}\n`)

    const server = spawnServe(t, { DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_TO_FILE: 'false' })
    await listeningUrl(server)
    assert.equal(readPid(pidFile), server.child.pid)
    assert.equal(server.logLines().find((line) => line.msg === 'replaced a stale pid file')?.stalePid, other.pid, command)
    assert.equal(isAlive(other.pid), true, 'the other process is left alone')
    server.child.kill('SIGTERM')
    assert.equal(await exitWithin(server, 10_000), 0)
  }
})

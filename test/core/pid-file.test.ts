import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import {
  acquirePidFile, isAlive, isServerAlive, PID_FILE, PidFileBusyError, pidFilePath, readPid, releasePidFile, SERVER_ENTRY
} from '../../core/pid-file.js'
import { tempDir } from '../helper.js'

/** The pid of a process that has already exited. */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  const pid = child.pid
  assert.ok(pid)
  await once(child, 'exit')
  return pid
}

test('acquire writes our pid into DATA_DIR/doorsense.pid and leaves no temp file', (t) => {
  const dir = tempDir(t)
  const file = pidFilePath(dir)
  assert.equal(file, join(dir, PID_FILE))
  assert.deepEqual(acquirePidFile(file), {})
  assert.equal(readFileSync(file, 'utf8'), `${process.pid}\n`)
  assert.equal(readPid(file), process.pid)
  assert.deepEqual(readdirSync(dir), [PID_FILE])
  // acquiring again for the same pid is a no-op
  assert.deepEqual(acquirePidFile(file), {})
  assert.deepEqual(readdirSync(dir), [PID_FILE])
})

test('a second acquire by a different pid is refused while the owner lives', (t) => {
  const file = pidFilePath(tempDir(t))
  acquirePidFile(file) // owned by this test process, which is alive and is node
  const otherPid = process.pid + 100_000
  assert.throws(() => acquirePidFile(file, otherPid), (err: unknown) => {
    assert.ok(err instanceof PidFileBusyError)
    assert.equal(err.pid, process.pid)
    assert.equal(err.file, file)
    assert.match(err.message, new RegExp(`pid ${process.pid}`))
    return true
  })
  assert.equal(readPid(file), process.pid, 'the refused start changed the pid file')
  assert.ok(!readdirSync(dirname(file)).some((name) => name.endsWith('.tmp') || name.endsWith('.stale')), 'temp files left behind')
})

test('a stale pid file (dead pid) is replaced and its pid reported', async (t) => {
  const file = pidFilePath(tempDir(t))
  const dead = await deadPid()
  assert.equal(isAlive(dead), false)
  writeFileSync(file, `${dead}\n`)
  assert.deepEqual(acquirePidFile(file), { stalePid: dead })
  assert.equal(readPid(file), process.pid)
})

test('garbage in the pid file is treated as stale', (t) => {
  for (const garbage of ['', 'not a pid\n', '-5\n', '0\n', '\u0000\u0000']) {
    const file = pidFilePath(tempDir(t))
    writeFileSync(file, garbage)
    assert.equal(readPid(file), undefined, JSON.stringify(garbage))
    assert.deepEqual(acquirePidFile(file), {})
    assert.equal(readPid(file), process.pid)
  }
})

test('a live process that is not node (a reused pid) does not block the start', { skip: !existsSync('/proc/self/cmdline') && 'needs /proc' }, async (t) => {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.after(() => { sleeper.kill() })
  await once(sleeper, 'spawn')
  const pid = sleeper.pid
  assert.ok(pid)
  assert.equal(isAlive(pid), true)
  assert.equal(isServerAlive(pid), false)
  assert.equal(isServerAlive(process.pid), true)
  const file = pidFilePath(tempDir(t))
  writeFileSync(file, `${pid}\n`)
  assert.deepEqual(acquirePidFile(file), { stalePid: pid })
  assert.equal(readPid(file), process.pid)
})

test('release removes the file only when it names our pid', (t) => {
  const file = pidFilePath(tempDir(t))
  acquirePidFile(file)
  assert.equal(releasePidFile(file, process.pid + 100_000), false)
  assert.equal(readPid(file), process.pid)
  assert.equal(releasePidFile(file), true)
  assert.equal(existsSync(file), false)
  // nothing to release is not an error
  assert.equal(releasePidFile(file), false)
})

test('readPid of a missing file is undefined', (t) => {
  assert.equal(readPid(join(tempDir(t), 'none.pid')), undefined)
})

test('acquire creates DATA_DIR when it does not exist yet, mode 0700, and the pid file 0600', (t) => {
  const root = tempDir(t)
  const file = pidFilePath(join(root, 'nested', 'data'))
  acquirePidFile(file)
  assert.equal(readPid(file), process.pid)
  // the umask (0022 here) would have left them 0755 and 0644
  assert.equal(statSync(join(root, 'nested')).mode & 0o777, 0o700)
  assert.equal(statSync(dirname(file)).mode & 0o777, 0o700)
  assert.equal(statSync(file).mode & 0o777, 0o600)
})

test('for a server, only a live bin/serve.ts owns the pid file: a live node process that is not doorsense, or a zombie, is stale', { skip: !existsSync('/proc/self/cmdline') && 'needs /proc' }, async (t) => {
  // another node program that got the recorded pid after a reboot
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  t.after(() => { other.kill() })
  await once(other, 'spawn')
  assert.ok(other.pid)
  assert.equal(isServerAlive(other.pid), true, 'a node process passes the old check')
  assert.equal(isServerAlive(other.pid, SERVER_ENTRY), false)
  const file = pidFilePath(tempDir(t))
  writeFileSync(file, `${other.pid}\n`)
  assert.deepEqual(acquirePidFile(file, process.pid, { entry: SERVER_ENTRY }), { stalePid: other.pid })
  assert.equal(readPid(file), process.pid)
  assert.equal(isAlive(other.pid), true, 'the other process is left alone')

  // a process that exits after its shell became `sleep 30`, which never reaps it: alive for kill(pid, 0), no command line
  const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.after(() => { parent.kill() })
  const [line] = await once(parent.stdout, 'data') as [Buffer]
  const zombie = Number.parseInt(line.toString(), 10)
  const state = () => readFileSync(`/proc/${zombie}/stat`, 'utf8').split(') ')[1]?.[0]
  for (let i = 0; i < 200 && state() !== 'Z'; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(state(), 'Z')
  assert.equal(isAlive(zombie), true)
  assert.equal(isServerAlive(zombie, SERVER_ENTRY), false)

  // a process that does run bin/serve.ts (by its command line) still owns it
  const server = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', SERVER_ENTRY], { stdio: 'ignore' })
  t.after(() => { server.kill() })
  await once(server, 'spawn')
  assert.ok(server.pid)
  const owned = pidFilePath(tempDir(t))
  writeFileSync(owned, `${server.pid}\n`)
  assert.throws(() => acquirePidFile(owned, process.pid, { entry: SERVER_ENTRY }), PidFileBusyError)
})

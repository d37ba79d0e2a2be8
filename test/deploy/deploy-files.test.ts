import { test } from 'node:test'
import assert from 'node:assert/strict'
import { accessSync, constants, copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../core/project.js'
import { ConfigSchema, loadConfig } from '../../core/config.js'
import { tempDir } from '../helper.js'

const DEPLOY = join(PROJECT_ROOT, 'deploy')
const read = (file: string): string => readFileSync(join(DEPLOY, file), 'utf8')

/** `[section] key=value` pairs of a systemd unit (later keys of the same name are kept in order). */
function parseUnit (text: string): Record<string, Array<[string, string]>> {
  const sections: Record<string, Array<[string, string]>> = {}
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      current = header[1] as string
      sections[current] ??= []
      continue
    }
    const eq = line.indexOf('=')
    assert.ok(eq > 0 && current !== '', `unit line "${line}" is key=value inside a section`)
    sections[current]?.push([line.slice(0, eq), line.slice(eq + 1)])
  }
  return sections
}
const value = (unit: Record<string, Array<[string, string]>>, section: string, key: string): string | undefined =>
  unit[section]?.find(([name]) => name === key)?.[1]

test('the cron line runs one watchdog check every minute with the server\'s env file', () => {
  const jobs = read('crontab').split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#') && !/^[A-Z]+=/.test(line))
  assert.equal(jobs.length, 1)
  const fields = (jobs[0] as string).split(/\s+/)
  assert.deepEqual(fields.slice(0, 5), ['*', '*', '*', '*', '*'], 'every minute')
  const command = fields.slice(5).join(' ')
  assert.match(command, /\. \S+doorsense\.env/, 'sources the env file the server uses')
  assert.match(command, /node --import tsx bin\/watchdog\.ts/)
  assert.match(command, /flock -n/, 'a slow restart does not overlap the next check')
  assert.match(command, />> "\$DATA_DIR\/logs\/watchdog\.log" 2>&1$/)
  assert.doesNotMatch(command, /%/, 'cron would cut the line at %')
})

test('systemd: the server unit, the watchdog service and its timer, the Pi agent unit', async (t) => {
  const units = readdirSync(join(DEPLOY, 'systemd')).sort()
  assert.deepEqual(units, ['doorsense-agent.service', 'doorsense-watchdog.service', 'doorsense-watchdog.timer', 'doorsense.service'])
  const server = parseUnit(read('systemd/doorsense.service'))
  assert.equal(value(server, 'Service', 'Type'), 'oneshot')
  assert.equal(value(server, 'Service', 'RemainAfterExit'), 'yes')
  assert.match(value(server, 'Service', 'ExecStart') ?? '', /^\/\S*node --import tsx bin\/watchdog\.ts$/)
  assert.equal(value(server, 'Service', 'KillMode'), 'control-group')
  assert.ok(value(server, 'Service', 'EnvironmentFile'))
  assert.notEqual(value(server, 'Service', 'User'), 'root')

  const watchdog = parseUnit(read('systemd/doorsense-watchdog.service'))
  assert.equal(value(watchdog, 'Service', 'Type'), 'oneshot')
  assert.match(value(watchdog, 'Service', 'ExecStart') ?? '', /bin\/watchdog\.ts --restart-cmd "sudo -n \/usr\/bin\/systemctl restart doorsense\.service"$/)
  assert.equal(value(watchdog, 'Service', 'SuccessExitStatus'), '2', 'a counted failure (exit 2) does not fail the unit')
  assert.equal(value(watchdog, 'Service', 'EnvironmentFile'), value(server, 'Service', 'EnvironmentFile'))

  const timer = parseUnit(read('systemd/doorsense-watchdog.timer'))
  assert.equal(value(timer, 'Timer', 'OnUnitActiveSec'), '1min')
  assert.equal(value(timer, 'Timer', 'Unit'), 'doorsense-watchdog.service')
  assert.equal(value(timer, 'Install', 'WantedBy'), 'timers.target')

  const agent = parseUnit(read('systemd/doorsense-agent.service'))
  assert.match(value(agent, 'Service', 'ExecStart') ?? '', /bin\/doorsense\.ts agent --server \S+ --name \S+ --id \S+ --serial \S+/)
  assert.doesNotMatch(value(agent, 'Service', 'ExecStart') ?? '', /--token/, 'the token comes from the environment file, not the command line')
  assert.equal(value(agent, 'Service', 'Restart'), 'always')
  assert.notEqual(value(agent, 'Service', 'User'), 'root')

  // systemd's own checker, where this machine has it and the units' node path exists
  const analyze = '/usr/bin/systemd-analyze'
  const node = (value(server, 'Service', 'ExecStart') ?? '').split(' ')[0] as string
  if (!existsSync(analyze) || !existsSync(node)) {
    t.diagnostic(`systemd-analyze verify skipped (${existsSync(analyze) ? `no ${node}` : 'no systemd-analyze'})`)
    return
  }
  const dir = tempDir(t)
  for (const unit of units) copyFileSync(join(DEPLOY, 'systemd', unit), join(dir, unit))
  const verify = await execa(analyze, ['verify', '--man=no', ...units.map((unit) => join(dir, unit))], { reject: false, all: true })
  assert.equal(verify.exitCode, 0, verify.all)
  assert.equal(verify.all, '', 'systemd-analyze has no remarks')
})

test('the example env file names only real settings, every server setting, in a format all three readers share', () => {
  const text = read('doorsense.env.example')
  const scripts = ['bin/redeploy.ts', 'bin/watchdog.ts'].map((file) => readFileSync(join(PROJECT_ROOT, file), 'utf8')).join('\n')
  const opsVariables = [...scripts.matchAll(/'((?:REDEPLOY|WATCHDOG)_[A-Z_]+)'/g)].map((match) => match[1] as string)
  const known = new Set([...Object.keys(ConfigSchema.properties), ...opsVariables])
  const named = new Set<string>()
  const active: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line)
    if (!match) continue
    named.add(match[2] as string)
    if (match[1] === undefined) {
      assert.doesNotMatch(match[3] as string, /["'$\s]/, `${line}: no quotes, variables or spaces (docker --env-file reads them literally)`)
      active[match[2] as string] = match[3] as string
    }
  }
  for (const name of named) assert.ok(known.has(name), `${name} is a setting the server or an ops script reads`)
  for (const name of Object.keys(ConfigSchema.properties)) assert.ok(named.has(name), `${name} is in the example`)
  assert.ok(!('HOST' in active), 'HOST stays unset: the Docker image sets 0.0.0.0 itself')
  assert.doesNotThrow(() => loadConfig(active), 'the example values are valid')
})

test('docker-run.sh builds the right target and runs it with --init, the volume and the env file', async (t) => {
  const script = join(DEPLOY, 'docker-run.sh')
  accessSync(script, constants.X_OK)
  await execa('bash', ['-n', script])
  // no Docker engine here: a stand-in docker records its calls and reports the container healthy
  const bin = tempDir(t)
  const calls = join(bin, 'calls.log')
  writeFileSync(join(bin, 'docker'), `#!/usr/bin/env bash\necho "$*" >> "${calls}"\n[ "$1" = inspect ] && echo healthy\nexit 0\n`)
  chmodSync(join(bin, 'docker'), 0o755)
  const envFile = join(bin, 'doorsense.env')
  writeFileSync(envFile, 'PORT=20002\n')
  const env = { PATH: `${bin}:${process.env.PATH}`, DOORSENSE_ENV_FILE: envFile }

  const cpu = await execa(script, [], { env, reject: false, all: true })
  assert.equal(cpu.exitCode, 0, cpu.all)
  const cpuCalls = readFileSync(calls, 'utf8').trim().split('\n')
  assert.equal(cpuCalls[0], 'build --target runtime -t doorsense:latest .')
  assert.equal(cpuCalls[1], 'rm -f doorsense')
  const run = cpuCalls[2] as string
  assert.match(run, /^run -d --init --name doorsense --restart unless-stopped /)
  assert.match(run, new RegExp(`--env-file ${envFile} -e HOST=0\\.0\\.0\\.0 -e PORT=20002 -e DATA_DIR=/data `))
  assert.match(run, /-p 127\.0\.0\.1:20002:20002 -v doorsense-data:\/data doorsense:latest$/)
  assert.match(cpu.stdout, /is healthy/)

  writeFileSync(calls, '')
  const gpu = await execa(script, ['--gpu', '--no-build'], { env, reject: false, all: true })
  assert.equal(gpu.exitCode, 0, gpu.all)
  const gpuCalls = readFileSync(calls, 'utf8').trim().split('\n')
  assert.ok(!gpuCalls.some((call) => call.startsWith('build')), '--no-build builds nothing')
  assert.match(gpuCalls.find((call) => call.startsWith('run')) ?? '', /--gpus all .* doorsense:gpu$/)

  const bad = await execa(script, ['--bogus'], { env, reject: false, all: true })
  assert.equal(bad.exitCode, 1)
  assert.match(bad.all ?? '', /unknown option --bogus/)
})

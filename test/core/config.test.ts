import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isAbsolute, join, resolve } from 'node:path'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../core/project.js'
import { ConfigError, ConfigSchema, loadConfig } from '../../core/config.js'
import { tempDir } from '../helper.js'

/** Runs loadConfig and returns the ConfigError it must throw. */
function configError (env: Record<string, string>): ConfigError {
  try {
    loadConfig(env)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err
  }
  assert.fail(`expected ${JSON.stringify(env)} to be rejected`)
}

test('an empty environment gives the documented defaults', () => {
  const config = loadConfig({})
  assert.equal(config.PORT, 20002)
  assert.equal(config.HOST, '127.0.0.1')
  assert.equal(config.DATA_DIR, resolve('./data'))
  assert.equal(config.ADMIN_TOKEN, undefined)
  assert.equal(config.DEVICE_TOKEN, undefined)
  assert.equal(config.LOG_LEVEL, 'info')
  assert.equal(config.LOG_TO_FILE, true)
  assert.equal(config.TF_BACKEND, 'auto')
  assert.equal(config.STALE_AFTER_S, 30)
  assert.equal(config.BODY_LIMIT, 1024 * 1024)
  // every key the schema knows has a value, unless the schema makes it optional (the tokens, the MQTT broker)
  const required = new Set<string>(ConfigSchema.required ?? [])
  assert.ok(!required.has('ADMIN_TOKEN') && !required.has('DEVICE_TOKEN') && !required.has('MQTT_URL'))
  for (const key of Object.keys(ConfigSchema.properties)) {
    if (!required.has(key)) continue
    assert.notEqual((config as Record<string, unknown>)[key], undefined, `${key} has no default`)
  }
})

test('values are parsed to their types', () => {
  const config = loadConfig({ PORT: '8080', STALE_AFTER_S: '2.5', LOG_TO_FILE: 'false', TF_BACKEND: 'cpu', LOG_LEVEL: 'warn' })
  assert.equal(config.PORT, 8080)
  assert.equal(config.STALE_AFTER_S, 2.5)
  assert.equal(config.LOG_TO_FILE, false)
  assert.equal(config.TF_BACKEND, 'cpu')
  assert.equal(config.LOG_LEVEL, 'warn')
})

test('PORT=abc is a ConfigError naming PORT and the bad value', () => {
  const err = configError({ PORT: 'abc' })
  assert.match(err.message, /\bPORT\b/)
  assert.match(err.message, /"abc"/)
})

test('out-of-range numbers are rejected with the variable named', () => {
  assert.match(configError({ PORT: '70000' }).message, /PORT must be <= 65535/)
  assert.match(configError({ STALE_AFTER_S: '0' }).message, /STALE_AFTER_S must be > 0/)
  assert.match(configError({ BODY_LIMIT: '10' }).message, /BODY_LIMIT/)
})

test('a bad TF_BACKEND lists the allowed values', () => {
  const err = configError({ TF_BACKEND: 'tpu' })
  assert.match(err.message, /TF_BACKEND must be one of auto, gpu, node, cpu/)
  assert.match(err.message, /"tpu"/)
})

test('a bad LOG_LEVEL and a bad boolean say what is allowed', () => {
  assert.match(configError({ LOG_LEVEL: 'loud' }).message, /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/)
  assert.match(configError({ LOG_TO_FILE: 'maybe' }).message, /LOG_TO_FILE must be true or false/)
})

test('several bad variables are all named', () => {
  const err = configError({ PORT: 'abc', TF_BACKEND: 'tpu' })
  assert.match(err.message, /PORT/)
  assert.match(err.message, /TF_BACKEND/)
})

test('a rejected token is described by its length, never echoed', () => {
  const secret = 'short-secret'
  const err = configError({ ADMIN_TOKEN: secret })
  assert.match(err.message, /ADMIN_TOKEN/)
  assert.match(err.message, /12 characters/)
  assert.ok(!err.message.includes(secret), 'the token leaked into the error message')
  assert.ok(!configError({ DEVICE_TOKEN: 'abc' }).message.includes('"abc"'))
})

test('an empty variable counts as unset', () => {
  const config = loadConfig({ PORT: '', TF_BACKEND: '', ADMIN_TOKEN: '', DATA_DIR: '' })
  assert.equal(config.PORT, 20002)
  assert.equal(config.TF_BACKEND, 'auto')
  assert.equal(config.ADMIN_TOKEN, undefined)
  assert.equal(config.DATA_DIR, resolve('./data'))
})

test('the config is frozen', () => {
  const config = loadConfig({})
  assert.ok(Object.isFrozen(config))
  assert.throws(() => { (config as { PORT: number }).PORT = 1 }, TypeError)
  assert.equal(config.PORT, 20002)
})

test('DATA_DIR is resolved to an absolute path', () => {
  const config = loadConfig({ DATA_DIR: 'some/relative/dir' })
  assert.ok(isAbsolute(config.DATA_DIR))
  assert.equal(config.DATA_DIR, join(process.cwd(), 'some/relative/dir'))
})

test('variables outside the schema are ignored, and process.env is not read when env is given', () => {
  const before = process.env.PORT
  process.env.PORT = 'not-a-port'
  try {
    assert.equal(loadConfig({ UNRELATED: 'x' }).PORT, 20002)
  } finally {
    if (before === undefined) delete process.env.PORT
    else process.env.PORT = before
  }
})

test('bin/serve.ts with PORT=abc exits non-zero and names PORT on stderr', async (t) => {
  const dataDir = tempDir(t)
  const result = await execa('node', ['--import', 'tsx', 'bin/serve.ts'], {
    cwd: PROJECT_ROOT,
    env: { PORT: 'abc', DATA_DIR: dataDir, LOG_TO_FILE: 'false' },
    reject: false,
    timeout: 20_000
  })
  assert.equal(result.timedOut, false)
  assert.notEqual(result.exitCode, 0)
  assert.match(result.stderr, /PORT must be integer \(got "abc"\)/)
  // it stopped before claiming anything
  assert.equal(result.stdout, '')
})

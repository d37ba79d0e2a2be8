import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generatedFileCommand } from '../../../bin/lib/generated-file.js'
import { renderOpenApi } from '../../../bin/openapi.js'
import { OPENAPI_FILE } from '../../../core/project.js'
import { tempDir } from '../../helper.js'

/** Runs the command, returning the exit code it set and restoring process.exitCode. */
async function exitCodeOf (args: string[], file: string, rendered: string): Promise<number> {
  const before = process.exitCode
  process.exitCode = 0
  try {
    await generatedFileCommand({ name: 'test', file, render: async () => rendered, fix: 'npm run test-gen', source: 'the test', args })
    return Number(process.exitCode ?? 0)
  } finally {
    process.exitCode = before
  }
}

test('--check fails on a missing or different file and passes once the file is written', async (t) => {
  const file = join(tempDir(t), 'generated.json')
  assert.equal(await exitCodeOf(['--check'], file, '{"a":1}\n'), 1, 'missing file is drift')
  writeFileSync(file, '{"a":0}\n')
  assert.equal(await exitCodeOf(['--check'], file, '{"a":1}\n'), 1, 'different content is drift')
  assert.equal(readFileSync(file, 'utf8'), '{"a":0}\n', '--check writes nothing')
  assert.equal(await exitCodeOf([], file, '{"a":1}\n'), 0)
  assert.equal(readFileSync(file, 'utf8'), '{"a":1}\n')
  assert.equal(await exitCodeOf(['--check'], file, '{"a":1}\n'), 0)
})

test('a failing render exits 2 and writes nothing', async (t) => {
  const file = join(tempDir(t), 'generated.json')
  writeFileSync(file, 'kept\n')
  const before = process.exitCode
  try {
    await generatedFileCommand({ name: 'test', file, render: async () => { throw new Error('boom') }, fix: 'x', source: 'y', args: [] })
    assert.equal(process.exitCode, 2)
  } finally {
    process.exitCode = before
  }
  assert.equal(readFileSync(file, 'utf8'), 'kept\n')
})

test('the committed openapi.json is what the route schemas give, with every legacy route', async () => {
  const rendered = await renderOpenApi()
  assert.ok(rendered === readFileSync(OPENAPI_FILE, 'utf8'), 'openapi.json is stale: run `npm run openapi && npm run client`')
  const paths = Object.keys((JSON.parse(rendered) as { paths: Record<string, unknown> }).paths)
  for (const legacy of ['/debug/post/echo', '/debug/get/exists', '/server/post/keep_alive', '/app/get/list_of_servers',
    '/training/post/train', '/training/get/training_status', '/training/get/training_time', '/ml/post/inference', '/ml/get/inference_results']) {
    assert.ok(paths.includes(legacy), legacy)
  }
})

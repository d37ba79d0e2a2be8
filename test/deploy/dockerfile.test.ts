import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../core/project.js'
import { ConfigSchema } from '../../core/config.js'
import { buildTestApp } from '../helper.js'
import { freePort } from '../fixtures/live-server.js'

/*
 * No Docker engine runs here and hadolint is neither a Debian nor an npm
 * package (the npm "hadolint" downloads the binary from GitHub at run time),
 * so the Dockerfile is checked by parsing it: the rules the issue sets, the
 * usual hadolint rules, and its HEALTHCHECK command run against a real server.
 */

interface Instruction { keyword: string, args: string, line: number }
interface Stage { image: string, name: string, instructions: Instruction[] }

/** The Dockerfile's global ARG defaults and its stages, continuation lines joined and comments dropped. */
function parseDockerfile (text: string): { args: Record<string, string>, stages: Stage[] } {
  const logical: Array<{ text: string, line: number }> = []
  let pending: { text: string, line: number } | undefined
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim()
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return
    const continued = trimmed.endsWith('\\')
    const part = continued ? trimmed.slice(0, -1).trim() : trimmed
    pending = pending === undefined ? { text: part, line: index + 1 } : { text: `${pending.text} ${part}`, line: pending.line }
    if (!continued) {
      logical.push(pending)
      pending = undefined
    }
  })
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const { text: instruction, line } of logical) {
    const [keyword = '', ...rest] = instruction.split(/\s+/)
    const upper = keyword.toUpperCase()
    const argText = rest.join(' ')
    if (upper === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(argText)
      assert.ok(match, `line ${line}: FROM image [AS name]`)
      stages.push({ image: match[1] as string, name: match[2] ?? `stage-${stages.length}`, instructions: [] })
    } else if (stages.length === 0) {
      assert.equal(upper, 'ARG', `line ${line}: only ARG may come before the first FROM`)
      const [name, value = ''] = argText.split('=')
      args[name as string] = value
    } else {
      stages.at(-1)?.instructions.push({ keyword: upper, args: argText, line })
    }
  }
  return { args, stages }
}

const dockerfile = parseDockerfile(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'))
const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((candidate) => candidate.name === name)
  assert.ok(found, `a stage named ${name}`)
  return found
}
const all = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((instruction) => instruction.keyword === keyword)
const runs = (s: Stage): string => all(s, 'RUN').map((instruction) => instruction.args).join('\n')
const expandImage = (image: string): string => image.replace(/\$\{(\w+)\}/g, (_, name: string) => dockerfile.args[name] ?? '')
/** Stage names a stage builds on (FROM) or copies from (COPY --from), recursively. */
const lineage = (s: Stage): Set<string> => {
  const seen = new Set<string>()
  const visit = (current: Stage): void => {
    for (const parent of [current.image, ...all(current, 'COPY').map((copy) => /--from=(\S+)/.exec(copy.args)?.[1])]) {
      const next = dockerfile.stages.find((candidate) => candidate.name === parent)
      if (next && !seen.has(next.name)) {
        seen.add(next.name)
        visit(next)
      }
    }
  }
  visit(s)
  return seen
}
const envOf = (s: Stage): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const instruction of all(s, 'ENV')) {
    for (const pair of instruction.args.split(/\s+/)) {
      const [name, value] = pair.split('=')
      if (name && value !== undefined) env[name] = value
    }
  }
  return env
}
const healthcheckCommand = (s: Stage): string[] => {
  const [check] = all(s, 'HEALTHCHECK')
  assert.ok(check, `${s.name} has a HEALTHCHECK`)
  const json = /\bCMD\s+(\[.*\])\s*$/.exec(check.args)?.[1]
  assert.ok(json, `${s.name}: HEALTHCHECK CMD in exec form`)
  return JSON.parse(json) as string[]
}

const RUNTIMES = ['runtime', 'runtime-gpu']

test('multi-stage: dev dependencies build, production dependencies run', () => {
  assert.ok(dockerfile.stages.length >= 3)
  assert.equal(dockerfile.stages.at(-1)?.name, 'runtime', 'the default target is the CPU runtime')
  const build = dockerfile.stages.find((s) => /tsc --noEmit/.test(runs(s)))
  assert.ok(build, 'a stage typechecks (the build: tsx runs the TypeScript as it is)')
  assert.match(runs(build), /bin\/generate-docs\.ts/, 'and generates the docs site')
  const buildDeps = [...lineage(build)].map(stage)
  assert.ok(buildDeps.some((s) => /npm ci(?!(?:(?!&&)[^\n])*--omit=dev)/.test(runs(s))), 'the build stage has the dev dependencies (npm ci without --omit=dev)')
  for (const name of RUNTIMES) {
    const copy = all(stage(name), 'COPY').find((instruction) => /node_modules/.test(instruction.args))
    const from = copy && /--from=(\S+)/.exec(copy.args)?.[1]
    assert.ok(from, `${name} copies node_modules from another stage`)
    assert.match(runs(stage(from)), /npm (prune|ci)(?:(?!&&)[^\n])*--omit=dev/, `${name}: node_modules hold production dependencies only`)
    assert.doesNotMatch(runs(stage(name)), /npm (ci|install)/, `${name} installs nothing itself`)
  }
  assert.match(runs(stage('prod-deps')), /npm install [^\n]*@tensorflow\/tfjs-node@/, 'the CPU image adds the native CPU backend')
})

test('the GPU image: a second target on a CUDA base with @tensorflow/tfjs-node-gpu', () => {
  const gpu = stage('runtime-gpu')
  assert.match(expandImage(gpu.image), /^nvidia\/cuda:[\w.-]*cudnn[\w.-]*$/)
  assert.equal(envOf(gpu).TF_BACKEND, 'gpu')
  const deps = [...lineage(gpu)].map(stage)
  assert.ok(deps.some((s) => /@tensorflow\/tfjs-node-gpu@/.test(runs(s))), 'its dependencies include tfjs-node-gpu')
  const installs = deps.find((s) => /@tensorflow\/tfjs-node-gpu@/.test(runs(s)))
  assert.equal(installs?.image, gpu.image, 'native addons are built on the base they run on (glibc)')
})

for (const name of RUNTIMES) {
  test(`${name}: non-root, node as the entry, HOST 0.0.0.0, DATA_DIR a volume, the port`, () => {
    const s = stage(name)
    const users = all(s, 'USER')
    assert.ok(users.length > 0, 'sets a USER')
    const user = users.at(-1) as Instruction
    assert.ok(!/^(root|0)(:|$)/.test(user.args), `runs as ${user.args}, not root`)
    const [cmd] = all(s, 'CMD')
    assert.ok(cmd && cmd.line > user.line)
    assert.deepEqual(JSON.parse(cmd.args), ['node', '--import', 'tsx', 'bin/serve.ts'], 'node directly, exec form (no npm, no shell between init and node)')
    assert.equal(all(s, 'ENTRYPOINT').length, 0)
    const env = envOf(s)
    assert.equal(env.HOST, '0.0.0.0')
    assert.equal(env.NODE_ENV, 'production')
    assert.ok(env.DATA_DIR)
    const volumes = all(s, 'VOLUME').flatMap((volume) => (volume.args.startsWith('[') ? JSON.parse(volume.args) as string[] : volume.args.split(/\s+/)))
    assert.ok(volumes.includes(env.DATA_DIR), `DATA_DIR ${env.DATA_DIR} is a volume`)
    assert.equal(Number(env.PORT), ConfigSchema.properties.PORT.default)
    assert.deepEqual(all(s, 'EXPOSE').map((expose) => Number(expose.args)), [Number(env.PORT)])
  })

  test(`${name}: HEALTHCHECK asks /debug/get/exists with node, no curl`, () => {
    const command = healthcheckCommand(stage(name))
    assert.deepEqual(command.slice(0, 2), ['node', '-e'])
    assert.match(command[2] as string, /fetch\(.*\/debug\/get\/exists/)
    assert.doesNotMatch(runs(stage(name)) + JSON.stringify(command), /\b(curl|wget)\b/)
  })
}

test('the HEALTHCHECK command passes against a live server and fails against a closed port', async (t) => {
  const script = healthcheckCommand(stage('runtime'))[2] as string
  const app = await buildTestApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const healthy = await execa(process.execPath, ['-e', script], { env: { PORT: String(port) }, reject: false, timeout: 15_000 })
  assert.equal(healthy.exitCode, 0, healthy.stderr)
  const closed = await execa(process.execPath, ['-e', script], { env: { PORT: String(await freePort()) }, reject: false, timeout: 15_000 })
  assert.equal(closed.exitCode, 1)
})

test('the app stage copies every folder the server imports', () => {
  const folders = new Set<string>()
  const pending = [join(PROJECT_ROOT, 'bin/serve.ts')]
  const seen = new Set<string>()
  while (pending.length > 0) {
    const file = pending.pop() as string
    if (seen.has(file)) continue
    seen.add(file)
    folders.add(relative(PROJECT_ROOT, file).split('/')[0] as string)
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:from\s*|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts'))
      if (existsSync(target)) pending.push(target)
    }
  }
  const copied = all(stage('app'), 'COPY').filter((copy) => !copy.args.startsWith('--from')).flatMap((copy) => copy.args.split(/\s+/).slice(0, -1))
  for (const folder of folders) assert.ok(copied.includes(folder), `COPY ${folder} (imported by the server) into the app stage`)
  for (const file of ['package.json', 'tsconfig.json']) assert.ok(copied.includes(file), `COPY ${file}`)
  assert.ok(all(stage('app'), 'COPY').some((copy) => /--from=build \S*docs-site/.test(copy.args)), 'the generated docs site is in the image')
})

test('hadolint-style rules', () => {
  const names = new Set<string>()
  for (const s of dockerfile.stages) {
    const image = expandImage(s.image)
    if (!names.has(s.image) && image !== 'scratch') {
      assert.match(image, /^[\w./-]+:[\w.-]+$/, `${s.name}: FROM ${image} names a tag (DL3006)`)
      assert.doesNotMatch(image, /:latest$/, `${s.name}: no :latest (DL3007)`)
    }
    names.add(s.name)
    assert.equal(all(s, 'ADD').length, 0, `${s.name}: COPY, not ADD (DL3020)`)
    for (const workdir of all(s, 'WORKDIR')) assert.ok(workdir.args.startsWith('/'), `${s.name}: absolute WORKDIR (DL3000)`)
    for (const copy of all(s, 'COPY')) {
      const from = /--from=(\S+)/.exec(copy.args)?.[1]
      if (from) assert.ok(names.has(from) && from !== s.name, `line ${copy.line}: COPY --from=${from} names an earlier stage`)
    }
    for (const run of all(s, 'RUN')) {
      assert.doesNotMatch(run.args, /(^|&&|;)\s*cd\s/, `line ${run.line}: WORKDIR, not cd (DL3003)`)
      assert.doesNotMatch(run.args, /\bsudo\b/, `line ${run.line}: no sudo (DL3004)`)
      if (/apt-get install/.test(run.args)) {
        assert.match(run.args, /apt-get install -y --no-install-recommends/, `line ${run.line}: -y --no-install-recommends (DL3014, DL3015)`)
        assert.match(run.args, /apt-get update/, `line ${run.line}: update in the same layer`)
        assert.match(run.args, /rm -rf \/var\/lib\/apt\/lists\/\*/, `line ${run.line}: apt lists removed (DL3009)`)
      }
      if (/npm (ci|install)/.test(run.args)) assert.match(run.args, /--no-audit --no-fund/, `line ${run.line}: no audit or fund requests in the build`)
    }
    assert.ok(all(s, 'CMD').length <= 1, `${s.name}: one CMD (DL4003)`)
  }
})

test('.dockerignore keeps modules, data, generated files and secrets out of the context', () => {
  const ignored = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
  for (const entry of ['.git', 'node_modules', 'data', 'docs-site', 'coverage', 'deploy/*.env']) {
    assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`)
  }
  for (const needed of ['bin', 'core', 'plugins', 'schemas', 'domain', 'package.json', 'package-lock.json', 'README.md', 'docs', 'typedoc.json']) {
    assert.ok(!ignored.includes(needed), `${needed} stays in the build context`)
  }
})

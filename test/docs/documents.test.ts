import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { PROJECT_ROOT } from '../../core/project.js'
import { ConfigSchema } from '../../core/config.js'
import { ADMIN_TOKEN_FILE } from '../../core/auth.js'

/** The README and the reference documents beside it in docs/. */
const README = join(PROJECT_ROOT, 'README.md')
const DOCS = join(PROJECT_ROOT, 'docs')
const documents = readdirSync(DOCS).filter((name) => name.endsWith('.md')).sort().map((name) => join(DOCS, name))
const read = (file: string): string => readFileSync(file, 'utf8')

/** The text outside fenced code blocks and inline code, where links and headings live. */
const prose = (text: string): string => text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '')

/** GitHub's anchor for a heading (typedoc's pages use the same): lower case, punctuation dropped, spaces as dashes. */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
const anchors = (text: string): Set<string> =>
  new Set([...prose(text).matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug((match[1] as string).replace(/`/g, ''))))

/** The ```sh block that follows a heading. */
function shellBlock (text: string, heading: string): string[] {
  const section = text.split(`\n${heading}\n`)[1]
  assert.ok(section !== undefined, `the README has a "${heading}" section`)
  const block = /```sh\n([\s\S]*?)\n```/.exec(section)?.[1]
  assert.ok(block !== undefined, `"${heading}" holds a sh block`)
  return block.split('\n')
}

const defaults = ConfigSchema.properties as Record<string, { default?: unknown }>

test('the README reads in five minutes and links every document in docs/', () => {
  const text = read(README)
  assert.ok(Buffer.byteLength(text) <= 15 * 1024, `README.md is ${Buffer.byteLength(text)} bytes, at most 15 KiB`)
  assert.ok(documents.length >= 8, 'the reference lives in docs/')
  for (const file of documents) {
    const name = relative(PROJECT_ROOT, file)
    assert.ok(text.includes(`](${name})`), `the README links ${name}`)
  }
})

test('the quick start is two commands on the embedded defaults', () => {
  const lines = shellBlock(read(README), '## Quick start')
  assert.match(lines[0] as string, /^npm ci && npm start +# server on http:\/\/([\d.]+):(\d+), data \(SQLite, models, logs\) in (\S+)$/)
  const [, host, port, dataDir] = /http:\/\/([\d.]+):(\d+), .* in (\S+)$/.exec(lines[0] as string) ?? []
  assert.equal(host, defaults.HOST?.default)
  assert.equal(Number(port), defaults.PORT?.default)
  assert.equal(dataDir, defaults.DATA_DIR?.default)
  assert.match(lines[1] as string, /^npm ci && npm test +# /)
})

test('the first session works pasted as one block: it waits for the server, then for the model', () => {
  const lines = shellBlock(read(README), '## A first session')
  const at = (pattern: RegExp): number => {
    const index = lines.findIndex((line) => pattern.test(line))
    assert.ok(index >= 0, `the first session has a line matching ${pattern}`)
    return index
  }
  assert.equal(lines[0], 'npm start &', 'the server starts in the background')
  assert.equal(lines[at(/^S=/)], `S=http://${String(defaults.HOST?.default)}:${String(defaults.PORT?.default)}`, 'the URL is the default HOST and PORT')
  const ready = at(/^curl .*--retry \d+ .*--retry-connrefused .*\$S\/debug\/get\/exists/)
  const token = at(/cat data\/admin-token/)
  assert.equal(join(String(defaults.DATA_DIR?.default), ADMIN_TOKEN_FILE), join('data', 'admin-token'), 'the token file is the default one')
  assert.ok(ready < token, 'the token is read once the server answers (it is written before the server listens)')
  const train = at(/\$S\/training\/post\/train/)
  const wait = at(/^until .*\$S\/training\/get\/training_status.*FINISHED_TRAINING.*TRAINING_FAILED/)
  const batch = at(/\$S\/ml\/post\/batch/)
  assert.ok(train < wait && wait < batch, 'frames are classified once training has ended (no model: 503)')
  for (const line of lines) {
    for (const [, file] of line.matchAll(/(?:@|head -\d+ )(test\/\S+)/g)) assert.ok(existsSync(join(PROJECT_ROOT, file as string)), `${file as string} exists`)
  }
})

test('docs/configuration.md has a row for every setting, with its default, and only real settings', () => {
  const text = read(join(DOCS, 'configuration.md'))
  // rows keep this format: | `NAME` | default | meaning |
  const rows = new Map([...text.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \| .+ \|$/gm)].map((match) => [match[1] as string, (match[2] as string).trim()]))
  for (const name of Object.keys(defaults)) {
    assert.ok(rows.has(name), `${name} is in the table`)
    const fallback = defaults[name]?.default
    if (fallback !== undefined) {
      assert.ok(rows.get(name)?.includes(String(fallback)), `${name}: the table's default "${rows.get(name) ?? ''}" says ${String(fallback)}`)
    }
  }
  for (const name of rows.keys()) assert.ok(name in defaults, `${name} is a setting core/config.ts reads`)
})

test('relative links in the README and docs/ lead to files and headings that exist', () => {
  for (const file of [README, ...documents]) {
    for (const [, target] of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue
      const [path, anchor] = (target as string).split('#') as [string, string | undefined]
      const destination = path === '' ? file : resolve(dirname(file), path)
      const where = `${relative(PROJECT_ROOT, file)} → ${target as string}`
      assert.ok(existsSync(destination), `${where}: the file exists`)
      if (anchor !== undefined && statSync(destination).isFile() && destination.endsWith('.md')) {
        assert.ok(anchors(read(destination)).has(anchor), `${where}: the heading exists`)
      }
    }
  }
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../../core/project.js'
import { installErrorHandlers } from '../../../core/errors.js'
import docs from '../../../plugins/docs/index.js'
import { DOCS_SITE_DIR } from '../../../core/project.js'
import { buildTestApp, tempDir } from '../../helper.js'

async function docsApp (t: { after: (fn: () => Promise<void>) => void }, dir: string): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify()
  installErrorHandlers(app)
  await app.register(docs, { dir })
  t.after(async () => { await app.close() })
  return app
}

test('npm run docs generates the typedoc site, and /docs/ serves it', { timeout: 180_000 }, async (t) => {
  const out = join(tempDir(t, 'doorsense-docs-'), 'site')
  const run = await execa(process.execPath, ['--import', 'tsx', 'bin/generate-docs.ts', '--out', out], { cwd: PROJECT_ROOT, reject: false, all: true })
  assert.equal(run.exitCode, 0, run.all)
  assert.match(run.stdout, /generate-docs: wrote .* in \d+\.\d\d s/)
  assert.ok(!readdirSync(join(out, '..')).some((name) => name.includes('.new-') || name.includes('.old-')), 'no staging folder is left behind')

  const app = await docsApp(t, out)
  const redirect = await app.inject('/docs')
  assert.equal(redirect.statusCode, 301)
  assert.equal(redirect.headers.location, '/docs/')

  const home = await app.inject('/docs/')
  assert.equal(home.statusCode, 200)
  assert.match(String(home.headers['content-type']), /text\/html/)
  assert.match(home.body, /<title>doorsense<\/title>/)
  // the README is the home page
  const readmeHeading = /^## (.+)$/m.exec(readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8'))?.[1]
  if (readmeHeading !== undefined) assert.ok(home.body.includes(readmeHeading.trim()), `README heading "${readmeHeading}" on the home page`)
  // the reference in docs/ (typedoc.json's projectDocuments): a page each, linked from the home page as the README links it
  const documents = readdirSync(join(PROJECT_ROOT, 'docs')).filter((name) => name.endsWith('.md'))
  assert.ok(documents.length > 0, 'docs/ holds the reference documents')
  for (const name of documents) {
    const page = `documents/${name.replace(/\.md$/, '.html')}`
    assert.ok(home.body.includes(`href="${page}`), `the home page links ${page}`)
    const document = await app.inject(`/docs/${page}`)
    assert.equal(document.statusCode, 200, `/docs/${page}`)
    const heading = /^# (.+)$/m.exec(readFileSync(join(PROJECT_ROOT, 'docs', name), 'utf8'))?.[1]
    if (heading !== undefined) assert.ok(document.body.includes(heading.trim()), `/docs/${page} shows "${heading}"`)
  }

  // the entry points: core/app.ts and each plugin's index.ts
  const modules = await app.inject('/docs/modules.html')
  assert.equal(modules.statusCode, 200)
  assert.match(modules.body, /core\/app/)
  for (const plugin of readdirSync(join(PROJECT_ROOT, 'plugins')).filter((name) => existsSync(join(PROJECT_ROOT, 'plugins', name, 'index.ts')))) {
    assert.match(modules.body, new RegExp(`plugins/${plugin}\\b`), `module page for plugins/${plugin}`)
  }
  const buildAppPage = readdirSync(join(out, 'functions')).find((name) => name.includes('buildApp'))
  assert.ok(buildAppPage !== undefined, 'buildApp is documented')
  assert.equal((await app.inject(`/docs/functions/${buildAppPage}`)).statusCode, 200)

  const missing = await app.inject('/docs/no-such-page.html')
  assert.equal(missing.statusCode, 404)
})

test('until the site is generated, /docs/ says how to generate it', async (t) => {
  const app = await docsApp(t, join(tempDir(t), 'not-generated'))
  for (const url of ['/docs/', '/docs/modules.html']) {
    const response = await app.inject(url)
    assert.equal(response.statusCode, 404)
    assert.match(response.json().message, /the docs site has not been generated yet: run `npm run docs`/)
  }
})

test('the whole app serves /docs/ beside the OpenAPI document and Swagger UI', async (t) => {
  const app = await buildTestApp(t)
  const openapi = await app.inject('/openapi.json')
  assert.equal(openapi.statusCode, 200)
  assert.equal(openapi.json().openapi, '3.0.3')
  const swagger = await app.inject('/documentation/')
  assert.equal(swagger.statusCode, 200)
  assert.match(swagger.body, /swagger/i)
  const site = await app.inject('/docs/')
  // this checkout may or may not have run `npm run docs`: either answer comes from the docs area
  if (existsSync(join(DOCS_SITE_DIR, 'index.html'))) {
    assert.equal(site.statusCode, 200)
    assert.match(site.body, /<title>doorsense<\/title>/)
  } else {
    assert.equal(site.statusCode, 404)
    assert.match(site.json().message, /npm run docs/)
  }
  assert.equal(DOCS_SITE_DIR, join(PROJECT_ROOT, 'docs-site'))
})

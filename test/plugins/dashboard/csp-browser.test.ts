/**
 * The Content-Security-Policy in a real browser (Debian's Chromium through
 * playwright-core): the dashboard, Swagger UI and a typedoc site each load
 * and work under the headers doorsense sends, with no CSP violation (each
 * page records `securitypolicyviolation` events from before its first script;
 * Chromium also logs each as a console error, which the watched page counts).
 * The typedoc site is a one-file project generated here with the project's
 * typedoc (a few seconds; the real site takes a minute): its pages are built
 * from the same theme, inline script included.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import Fastify from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { securityHeadersPlugin } from '../../../core/security-headers.js'
import docs from '../../../plugins/docs/index.js'
import { browserSkipReason, launchBrowser, openWatchedPage, screenshot } from '../../fixtures/browser.js'
import { listen } from '../../fixtures/live-server.js'
import { tempDir } from '../../helper.js'

const FRONT = 7

/** Collects the page's CSP violations from before any of its own scripts runs (init scripts are not subject to the policy). */
const RECORD_VIOLATIONS = `window.__violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__violations.push(event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline') + (event.sample ? ': ' + event.sample : ''))
})`

async function violations (page: Page): Promise<string[]> {
  return await page.evaluate('window.__violations') as string[]
}

/** A watched page that records violations; the test fails on any problem either way. */
async function openPage (browser: Browser, t: TestContext) {
  const watched = await openWatchedPage(browser, t, { viewport: { width: 1280, height: 900 } })
  await watched.page.addInitScript(RECORD_VIOLATIONS)
  return watched
}

/** A typedoc site of one documented function, generated into a temp folder. */
async function generateDocsSite (t: TestContext): Promise<string> {
  const dir = tempDir(t, 'doorsense-csp-docs-')
  writeFileSync(join(dir, 'door.ts'), '/** Says whether the front door is open. */\nexport function frontDoorState (): string { return \'open\' }\n')
  // no lib.d.ts: the page does not need the types resolved, and parsing the lib alone takes seconds
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: [], noLib: true },
    files: ['door.ts']
  }))
  const { Application, TSConfigReader } = await import('typedoc')
  const app = await Application.bootstrap({
    entryPoints: [join(dir, 'door.ts')],
    tsconfig: join(dir, 'tsconfig.json'),
    name: 'doorsense',
    readme: 'none',
    disableSources: true,
    skipErrorChecking: true,
    logLevel: 'Warn'
  }, [new TSConfigReader()])
  const project = await app.convert()
  assert.ok(project, 'typedoc converted the fixture')
  const site = join(dir, 'site')
  await app.generateDocs(project, site)
  return site
}

/** The docs area on `site`, behind the same security headers as the whole app, listening on loopback. */
async function docsServer (t: TestContext): Promise<string> {
  const site = await generateDocsSite(t)
  const app = Fastify()
  t.after(() => app.close())
  await app.register(securityHeadersPlugin)
  await app.register(docs, { dir: site })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

test('under the security headers the dashboard, Swagger UI and the typedoc site work in Chromium, with no CSP violation', { skip: browserSkipReason(), timeout: 90_000 }, async (t) => {
  const started = Date.now()
  const [browser, { url }, docsUrl] = await Promise.all([launchBrowser(t), listen(t), docsServer(t)])
  const keepAlive = await fetch(`${url}/server/post/keep_alive`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ NAME: 'front-door', ID: FRONT })
  })
  assert.equal(keepAlive.status, 200)

  await t.test('the violation watch itself sees a blocked inline script', async (t) => {
    const { page, problems } = await openPage(browser, t)
    await page.goto(`${url}/`)
    await page.locator(`.door[data-device="${FRONT}"]`).waitFor()
    await page.evaluate(
      '(() => { const script = document.createElement("script"); script.textContent = "window.injected = true"; document.body.append(script) })()'
    )
    await page.waitForFunction('window.__violations.length > 0')
    assert.equal(await page.evaluate('window.injected'), undefined, 'the inline script did not run')
    assert.match((await violations(page)).join('\n'), /script-src/)
    assert.ok(problems.some((problem) => /Content Security Policy/.test(problem)), 'Chromium logged it as a console error too')
  })

  await t.test('the dashboard renders its doors', async (t) => {
    const { page, assertClean } = await openPage(browser, t)
    const response = await page.goto(`${url}/`)
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self';/)
    const tile = page.locator(`.door[data-device="${FRONT}"]`)
    await tile.waitFor()
    assert.match(await tile.innerText(), /front-door/)
    await screenshot(page, 'csp-dashboard', false)
    assert.deepEqual(await violations(page), [])
    assertClean()
  })

  await t.test('Swagger UI renders the operations list', async (t) => {
    const { page, assertClean } = await openPage(browser, t)
    await page.goto(`${url}/documentation/`)
    await page.locator('.opblock').first().waitFor()
    const paths = await page.locator('.opblock-summary-path').allInnerTexts()
    assert.ok(paths.some((path) => path.includes('/server/post/frames')), `the frame route is listed (${paths.length} operations)`)
    // an operation opens (its schema rendered by the page's own scripts)
    await page.locator('.opblock-summary', { hasText: '/server/post/frames' }).first().click()
    await page.locator('.opblock-body').first().waitFor()
    await screenshot(page, 'csp-swagger-ui', false)
    assert.deepEqual(await violations(page), [])
    assertClean()
  })

  await t.test('the typedoc site renders its index, runs its one inline script, and search finds a function', async (t) => {
    const { page, assertClean, expect } = await openPage(browser, t)
    // the docs area alone serves no favicon (the whole app's dashboard does)
    expect({ status: 404, url: /\/favicon\.ico$/ })
    await page.goto(`${docsUrl}/docs/`)
    await page.locator('.tsd-page-title').waitFor()
    assert.match(await page.title(), /doorsense/)
    // set by the inline script the policy allows by its hash
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'os')
    await page.locator('#tsd-search-trigger').click()
    await page.locator('#tsd-search-input').fill('frontDoor')
    const hit = page.locator('#tsd-search-results li', { hasText: 'frontDoorState' })
    await hit.waitFor()
    assert.deepEqual(await violations(page), [], 'on the index page')
    await hit.locator('a').first().click()
    await page.waitForURL(/functions\/frontDoorState\.html/)
    await page.locator('.tsd-page-title', { hasText: 'frontDoorState' }).waitFor()
    await screenshot(page, 'csp-typedoc', false)
    assert.deepEqual(await violations(page), [])
    assertClean()
  })
  t.diagnostic(`CSP browser test took ${Date.now() - started} ms`)
})

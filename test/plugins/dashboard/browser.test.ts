/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against a real listening server: doors turning open and closed as frames
 * arrive, the calibration wizard end to end with frames replayed from
 * session A, the token prompt and a 401, the model section, a phone-sized
 * screen, the keyboard alone, and a server restart. Any console error, page
 * error, failed request or unexpected 4xx/5xx fails the test. Screenshots
 * of each screen go to test-output/screenshots/.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { gzipSync } from 'node:zlib'
import type { Page, Response } from 'playwright-core'
import type { App } from '../../../core/app.js'
import { ADMIN, ADMIN_TOKEN, buildTestApp } from '../../helper.js'
import { browserSkipReason, launchBrowser, openWatchedPage, screenshot, type WatchedPage } from '../../fixtures/browser.js'
import { sessionCsv, sessionRows, sessionSlice } from '../../fixtures/training.js'

const FRONT = 7
const BACK = 8
/** The wizard's default recording length. */
const CAPTURE_FRAMES = 300
const WIDE = { width: 1280, height: 900 }

/** Session A frames recorded at `angle`, from the `skip`-th on, as 106 numbers each. */
function framesAt (angle: number, count: number, skip = 0): number[][] {
  return sessionRows().filter((row) => row.angle === angle).slice(skip, skip + count).map((row) => Array.from(row.features))
}

async function post (url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<globalThis.Response> {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  if (!response.ok) assert.fail(`${path}: ${response.status} ${await response.text()}`)
  return response
}

/** Posts frames as a Pi does, `chunk` per request. */
async function postFrames (url: string, device: number, frames: number[][], chunk = 25): Promise<void> {
  for (let i = 0; i < frames.length; i += chunk) await post(url, '/server/post/frames', { ID: device, frames: frames.slice(i, i + chunk) })
}

/** Posts frames at `angle` a chunk at a time until the door's tile says `state`. */
async function postUntilState (page: Page, url: string, device: number, angle: number, state: string): Promise<number> {
  const tile = page.locator(`.door[data-device="${device}"] .state-text`)
  const frames = framesAt(angle, 400, 10)
  for (let sent = 0; sent < frames.length; sent += 10) {
    await postFrames(url, device, frames.slice(sent, sent + 10), 10)
    if (await tile.textContent() === state) return sent + 10
    await page.waitForTimeout(30)
  }
  await tile.filter({ hasText: state }).waitFor({ timeout: 2000 })
  return frames.length
}

async function trainGlobalModel (url: string): Promise<void> {
  const imported = await fetch(`${url}/training/post/import`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'text/csv' }, body: sessionCsv(sessionSlice(40)) })
  assert.equal(imported.status, 200, await imported.text())
  await post(url, '/training/post/train', { epochs: 5, seed: 1 }, ADMIN)
  for (let i = 0; i < 300; i++) {
    const status = await (await fetch(`${url}/training/get/training_status`)).text()
    if (status === 'FINISHED_TRAINING') return
    assert.notEqual(status, 'TRAINING_FAILED')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.fail('the global model did not finish training in 30 s')
}

async function startServer (t: TestContext, dataDir: string, port = 0): Promise<{ app: App, url: string }> {
  const app = await buildTestApp(t, {}, { dataDir })
  await app.listen({ host: '127.0.0.1', port })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

/**
 * Evaluates `expression` in the page. Written as text: this project's types
 * are Node's, and the page's globals (document, window) are not among them.
 */
async function inPage<T = unknown> (page: Page, expression: string): Promise<T> {
  return await page.evaluate(expression) as T
}

/** The focused control as `tag:name`, null on the body, 'again' once Tab has gone all the way round. */
const FOCUSED = `(() => {
  const element = document.activeElement
  if (!element || element === document.body) return null
  if (element.dataset.tabbed === 'yes') return 'again'
  element.dataset.tabbed = 'yes'
  const labelled = element.labels?.[0]?.textContent ?? ''
  const name = element.getAttribute('aria-label') || element.innerText || labelled || element.getAttribute('title') || ''
  return element.tagName.toLowerCase() + ':' + name.trim().replace(/\\s+/g, ' ')
})()`

/** The page leaves no horizontal scroll bar. */
async function assertNoHorizontalScroll (page: Page, what: string): Promise<void> {
  const { scrollWidth, innerWidth } = await inPage<{ scrollWidth: number, innerWidth: number }>(page, '({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })')
  assert.ok(scrollWidth <= innerWidth, `${what}: the page is ${scrollWidth} px wide in a ${innerWidth} px window`)
}

test('the dashboard in Chromium', { skip: browserSkipReason(), timeout: 120_000 }, async (t) => {
  const started = Date.now()
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-dashboard-'))
  let { app, url } = await startServer(t, dataDir)
  t.after(async () => {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const [browser] = await Promise.all([launchBrowser(t), trainGlobalModel(url)])
  await post(url, '/server/post/keep_alive', { NAME: 'front-door', ID: FRONT })

  // the page every later step uses (wide screen); its token is kept in this tab
  let main: WatchedPage

  await t.test('a cold first load: page weight and time to the first door tile', async () => {
    main = await openWatchedPage(browser, t, { viewport: WIDE })
    const responses: Response[] = []
    main.page.on('response', (response) => responses.push(response))
    // when the first tile appears, measured in the page (no test round trip in it)
    await main.page.addInitScript(`
      const seen = new MutationObserver(() => {
        if (!document.querySelector('.door')) return
        window.firstTileMs = performance.now()
        seen.disconnect()
      })
      seen.observe(document, { childList: true, subtree: true })
      // everything the aria-live region says, in order
      window.spoken = []
      new MutationObserver(() => {
        const text = document.querySelector('#announcer')?.textContent ?? ''
        if (text !== '' && window.spoken.at(-1) !== text) window.spoken.push(text)
      }).observe(document, { childList: true, subtree: true, characterData: true })`)
    await main.page.goto(url)
    await main.page.locator(`.door[data-device="${FRONT}"]`).waitFor()
    const firstTileMs = await inPage<number>(main.page, 'window.firstTileMs')
    await main.page.waitForTimeout(300)

    let gzipped = 0
    let raw = 0
    for (const response of responses) {
      if (/event-stream/.test(response.headers()['content-type'] ?? '')) continue
      const body = await response.body()
      raw += body.length
      // what it weighs gzipped (the server sends the page's own files gzipped; JSON answers are counted the same way)
      gzipped += response.headers()['content-encoding'] === 'gzip' ? Number(response.headers()['content-length'] ?? gzipSync(body).length) : gzipSync(body).length
    }
    const wire = await inPage<number>(main.page, "[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].reduce((sum, entry) => sum + entry.transferSize, 0)")
    t.diagnostic(`first load: ${responses.length} responses, ${(raw / 1024).toFixed(1)} KiB raw, ${(gzipped / 1024).toFixed(1)} KiB gzipped, ${(wire / 1024).toFixed(1)} KiB on the wire (headers included); first door tile after ${firstTileMs.toFixed(0)} ms`)
    assert.ok(gzipped <= 150 * 1024, `first load ${gzipped} bytes gzipped, over 150 KB`)
    assert.ok(responses.every((response) => response.url().startsWith(url)), 'every request goes to doorsense itself')
    await screenshot(main.page, '01-doors')
    main.assertClean()
  })

  await t.test('a door tile turns open, then closed, as the Pi sends session A frames', async () => {
    const { page } = main
    const opened = await postUntilState(page, url, FRONT, 90, 'Open')
    await screenshot(page, '02-door-open')
    const closed = await postUntilState(page, url, FRONT, 0, 'Closed')
    await screenshot(page, '03-door-closed')
    const tile = page.locator(`.door[data-device="${FRONT}"]`)
    assert.match(await tile.innerText(), /Confidence\s+\d+%/i)
    assert.match(await tile.innerText(), /Frame rate\s+[\d.]+\/s/i)
    // said, not only drawn: the change is announced
    await page.waitForFunction('window.spoken.some((text) => /is now closed/.test(text))')
    t.diagnostic(`open after ${opened} frames at 90°, closed after ${closed} frames at 0°`)
    main.assertClean()
  })

  await t.test('calibration wizard: token prompt, a 401, record closed and open from replayed frames, finish, the evaluation', async () => {
    const { page } = main
    await post(url, '/server/post/keep_alive', { NAME: 'back-door', ID: BACK })
    await page.locator(`.door[data-device="${BACK}"] button.calibrate`).click()
    const wizard = page.locator('dialog.wizard')
    await wizard.getByRole('heading', { name: /Step 1: Close the door, then Record/ }).waitFor()
    await screenshot(page, '04-wizard-closed-step', false)

    // no token yet: Record asks for it; a wrong one is refused with a 401 and asked for again
    await wizard.getByRole('button', { name: 'Record', exact: true }).click()
    const tokenDialog = page.locator('dialog.token-dialog')
    await tokenDialog.waitFor()
    await screenshot(page, '05-token-prompt', false)
    const capturePath = new RegExp(`/doors/${BACK}/calibration/capture$`)
    main.expect({ status: 401, url: capturePath })
    await page.locator('#token-input').fill('not-the-admin-token-123')
    const refused = page.waitForResponse((response) => capturePath.test(response.url()) && response.status() === 401)
    await tokenDialog.getByRole('button', { name: 'Sign in' }).click()
    await refused
    await tokenDialog.getByText(/did not accept that token \(401/).waitFor()
    await screenshot(page, '06-token-refused', false)
    await page.locator('#token-input').fill(ADMIN_TOKEN)
    const accepted = page.waitForResponse((response) => capturePath.test(response.url()) && response.status() === 202)
    await tokenDialog.getByRole('button', { name: 'Sign in' }).click()
    await accepted
    main.unexpect({ status: 401, url: capturePath })
    // kept for the tab, never shown, never in the URL or a cookie
    assert.equal(await inPage(page, "sessionStorage.getItem('doorsense.adminToken')"), ADMIN_TOKEN)
    assert.ok(!(await page.content()).includes(ADMIN_TOKEN), 'the token is not in the page')
    assert.ok(!page.url().includes(ADMIN_TOKEN))
    assert.deepEqual(await page.context().cookies(), [])

    // the capture counts live as the frames arrive
    await wizard.locator('.capture-status').waitFor()
    await postFrames(url, BACK, framesAt(0, CAPTURE_FRAMES / 2))
    await wizard.locator('.frames-stored', { hasText: String(CAPTURE_FRAMES / 2) }).waitFor()
    assert.match(await wizard.locator('.capture-status').innerText(), /of 300 frames, \d+ s left/)
    await screenshot(page, '07-wizard-recording', false)
    await postFrames(url, BACK, framesAt(0, CAPTURE_FRAMES / 2, CAPTURE_FRAMES / 2))
    await wizard.getByText(`${CAPTURE_FRAMES} frames recorded at 0°.`).waitFor()

    await wizard.getByRole('button', { name: 'Next: open the door' }).click()
    await wizard.getByRole('heading', { name: /Step 2: Open it fully, then Record/ }).waitFor()
    await wizard.getByRole('button', { name: 'Record', exact: true }).click()
    await wizard.locator('.capture-status').waitFor()
    await postFrames(url, BACK, framesAt(90, CAPTURE_FRAMES))
    await wizard.getByText(`${CAPTURE_FRAMES} frames recorded at 90°.`).waitFor()
    await wizard.getByRole('button', { name: 'Next', exact: true }).click()
    await wizard.getByRole('heading', { name: 'Step 3: Finish' }).waitFor()
    await screenshot(page, '08-wizard-finish-step', false)

    await wizard.getByRole('button', { name: 'Finish and train' }).click()
    await wizard.locator('.balanced').waitFor({ timeout: 60_000 })
    await screenshot(page, '09-wizard-result', false)
    const verdict = await wizard.locator('.step-body').innerText()
    assert.match(verdict, /It tells open from closed right \d+% of the time/)
    assert.match(verdict, /recognised the closed door \d+% of the time and the open door \d+%/)
    assert.ok(await wizard.locator('table.heatmap tbody td').count() >= 4, 'a confusion heat map: closed/open against what was said')
    const activated = await wizard.getByRole('heading', { name: /Active: this door now uses its own model/ }).isVisible()
    t.diagnostic(`calibration ${activated ? 'activated' : 'refused'}: ${verdict.replace(/\s+/g, ' ').slice(0, 300)}`)
    if (activated) {
      await wizard.getByRole('button', { name: 'Done' }).click()
      await page.locator(`.door[data-device="${BACK}"]`, { hasText: 'its own' }).waitFor()
    } else {
      assert.ok(await wizard.locator('.reasons li').count() > 0, 'a refusal says why')
      await wizard.getByRole('button', { name: 'Retry' }).waitFor()
      await wizard.getByRole('button', { name: 'Close' }).click()
    }
    await wizard.waitFor({ state: 'detached' })
    main.assertClean()
  })

  await t.test('model: the live training curve, the versions with their evaluation, roll back', async () => {
    const { page } = main
    const model = page.locator('#model')
    await model.scrollIntoViewIfNeeded()
    await model.locator('.version.active').first().waitFor()
    const before = await model.locator('.version').count()
    await page.locator('#train-epochs').fill('12')
    await model.getByRole('button', { name: 'Train the global model' }).click()
    await model.locator('.chart canvas').first().waitFor()
    await model.locator('figcaption', { hasText: /finished in/ }).waitFor({ timeout: 30_000 })
    await model.locator('.version').nth(before).waitFor()
    const newest = model.locator('.version').first()
    await newest.getByRole('button', { name: 'Evaluation' }).click()
    await newest.locator('.evaluation table.heatmap').waitFor()
    await screenshot(page, '10-model')

    // roll back to the global version trained before
    const older = model.locator('.version:not(.active)', { hasText: 'global' }).first()
    const olderName = await older.locator('.version-name').innerText()
    await older.getByRole('button', { name: 'Activate' }).click()
    await model.locator(`.version.active[data-version="${olderName}"]`).waitFor()
    main.assertClean()
  })

  await t.test('a phone: 375 px wide without horizontal scrolling', async () => {
    const phone = await openWatchedPage(browser, t, { viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true })
    await phone.page.goto(url)
    await phone.page.locator(`.door[data-device="${BACK}"]`).waitFor()
    await phone.page.locator('.device').first().waitFor()
    await assertNoHorizontalScroll(phone.page, 'doors')
    await screenshot(phone.page, '11-phone')
    await phone.page.locator(`.door[data-device="${BACK}"] button.calibrate`).click()
    await phone.page.locator('dialog.wizard').waitFor()
    await assertNoHorizontalScroll(phone.page, 'wizard')
    await screenshot(phone.page, '12-phone-wizard', false)
    await phone.page.locator('dialog.wizard').getByRole('button', { name: 'Cancel' }).click()
    phone.assertClean()
  })

  await t.test('the keyboard alone reaches every control, each with a name', async () => {
    const keys = await openWatchedPage(browser, t, { viewport: WIDE })
    const { page } = keys
    await page.goto(url)
    await page.locator('.version').first().waitFor()
    const reached: string[] = []
    for (let i = 0; i < 120; i++) {
      await page.keyboard.press('Tab')
      const focused = await inPage<string | null>(page, FOCUSED)
      if (focused === 'again') break
      if (focused !== null) reached.push(focused)
    }
    const unnamed = reached.filter((entry) => entry.endsWith(':'))
    assert.deepEqual(unnamed, [], 'every control has a name')
    for (const wanted of ['a:Skip to the doors', 'a:Doors', 'button:Sign in as admin', 'button:Calibrate front-door', 'input:Epochs', 'button:Train the global model', 'button:Evaluation', 'button:Activate']) {
      assert.ok(reached.some((entry) => entry.startsWith(wanted)), `Tab never reaches ${wanted}; it reached ${reached.join(' | ')}`)
    }
    // the wizard opens with Enter, traps focus in its dialog, and Escape cancels it
    await page.getByRole('button', { name: 'Calibrate front-door' }).focus()
    await page.keyboard.press('Enter')
    const wizard = page.locator('dialog.wizard')
    await wizard.waitFor()
    await page.keyboard.press('Tab')
    assert.ok(await inPage(page, "document.activeElement?.closest('dialog.wizard') !== null"), 'focus moves into the wizard')
    await page.keyboard.press('Escape')
    await wizard.waitFor({ state: 'detached' })
    keys.assertClean()
  })

  await t.test('a server restart: the page says it is reconnecting, then recovers by itself', async () => {
    const { page } = main
    const { port } = new URL(url)
    await main.tolerateOutage(async () => {
      await app.close()
      await page.locator('.connection.reconnecting').waitFor({ timeout: 10_000 })
      await screenshot(page, '13-reconnecting', false)
      ;({ app, url } = await startServer(t, dataDir, Number(port)))
      await page.locator('.connection.live').waitFor({ timeout: 15_000 })
    })
    await page.locator(`.door[data-device="${FRONT}"]`).waitFor()
    await page.locator(`.door[data-device="${BACK}"]`).waitFor()
    await page.waitForFunction("window.spoken.some((text) => text.startsWith('Lost the connection')) && window.spoken.some((text) => text.startsWith('Reconnected'))")
    // and it is live again: a new door appears without a reload
    await post(url, '/server/post/keep_alive', { NAME: 'garage', ID: 9 })
    await page.locator('.door[data-device="9"]').waitFor()
    main.assertClean()
  })

  t.diagnostic(`browser suite took ${((Date.now() - started) / 1000).toFixed(1)} s`)
})

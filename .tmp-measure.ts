import { chromium, type Response } from 'playwright-core'
import { gzipSync } from 'node:zlib'
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
for (let run = 0; run < 3; run++) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const responses: Response[] = []
  page.on('response', (r) => responses.push(r))
  page.on('console', (m) => { if (m.type() === 'error') console.log('console', m.text()) })
  await page.addInitScript(`new MutationObserver((_, o) => { if (document.querySelector('.door')) { window.firstTileMs = performance.now(); o.disconnect() } }).observe(document, { childList: true, subtree: true })`)
  await page.goto('http://127.0.0.1:20099/')
  await page.waitForSelector('.door')
  await page.waitForTimeout(500)
  let gz = 0, raw = 0
  for (const r of responses) { if (/event-stream/.test(r.headers()['content-type'] ?? '')) continue; const b = await r.body(); raw += b.length; gz += r.headers()['content-encoding'] === 'gzip' ? Number(r.headers()['content-length']) : gzipSync(b).length }
  const wire = await page.evaluate("[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].reduce((s, e) => s + e.transferSize, 0)")
  console.log({ requests: responses.length, rawKiB: (raw / 1024).toFixed(1), gzKiB: (gz / 1024).toFixed(1), wireKiB: ((wire as number) / 1024).toFixed(1), firstTileMs: await page.evaluate('window.firstTileMs') })
  await context.close()
}
await browser.close()

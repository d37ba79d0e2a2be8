import { chromium } from 'playwright-core'
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
for (const [name, width] of [['wide', 1200], ['phone', 375]] as const) {
  const page = await browser.newPage({ viewport: { width, height: 900 } })
  page.on('console', (m) => console.log('console', m.type(), m.text()))
  page.on('pageerror', (e) => console.log('pageerror', e.message))
  await page.goto('http://127.0.0.1:20099/')
  await page.waitForSelector('.door')
  await page.waitForTimeout(800)
  await page.screenshot({ path: `/tmp/dash/${name}.png`, fullPage: true })
  console.log(name, await page.evaluate(() => document.documentElement.scrollWidth))
  if (name === 'wide') {
    await page.click('[data-device="8"] button.calibrate')
    await page.waitForTimeout(300)
    await page.screenshot({ path: `/tmp/dash/wizard.png` })
  }
}
await browser.close()

import { buildApp } from './core/app.js'
import { testConfig, ADMIN } from './test/helper.js'
import { sessionRows } from './test/fixtures/training.js'
import { mkdtempSync } from 'node:fs'
const app = await buildApp(testConfig(mkdtempSync('/tmp/dash/flow-')))
await app.ready()
const inj = async (method: any, url: string, payload?: any) => { const r = await app.inject({ method, url, payload, headers: ADMIN }); return { s: r.statusCode, b: r.body.slice(0, 600) } }
await inj('POST', '/server/post/keep_alive', { NAME: 'b', ID: 8 })
const at = (a: number, n: number, skip = 0) => sessionRows().filter((r) => r.angle === a).slice(skip, skip + n).map((r) => Array.from(r.features))
for (const angle of [0, 90]) {
  console.log(await inj('POST', '/doors/8/calibration/capture', { angle, frames: 300, seconds: 60 }))
  for (let i = 0; i < 300; i += 25) await inj('POST', '/server/post/frames', { ID: 8, frames: at(angle, 25, i) })
}
console.log((await inj('GET', '/doors/8')).b)
const t0 = Date.now()
console.log(await inj('POST', '/doors/8/calibration/finish'))
for (let i = 0; i < 120; i++) {
  const d = JSON.parse((await app.inject({ url: '/doors/8' })).body)
  if (d.calibration.status !== 'training') { console.log((Date.now() - t0) / 1000, JSON.stringify(d.calibration)); break }
  await new Promise((r) => setTimeout(r, 500))
}
await app.close()

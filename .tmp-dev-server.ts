// scratch (not committed): the app plus a fake /doors until the real routes land
import { buildApp } from './core/app.js'
import { testConfig } from './test/helper.js'
import { mkdtempSync } from 'node:fs'
const app = await buildApp(testConfig(mkdtempSync('/tmp/dash/data-')))
const now = () => new Date().toISOString()
const door = (device: number, state: 'open' | 'closed' | 'unknown', extra = {}) => ({
  device, name: device === 7 ? 'Front door' : '', state, angle: state === 'unknown' ? null : state === 'open' ? 88 : 2, confidence: 0.91, since: new Date(Date.now() - 65000).toISOString(), lastFrameAt: now(), frameRate: 9.7, live: device !== 9, needsRecalibration: device === 8, model: { version: 'csi-x', scope: 'global' },
  calibration: { status: 'idle', captured: {}, capture: null, reasons: [], result: null }, ...extra
})
const doors = () => [door(7, 'open'), door(8, 'closed', { calibration: { status: 'failed', captured: { 0: 300, 90: 300 }, capture: null, reasons: ['open/closed balanced accuracy 0.61 is below the floor 0.8'], result: { version: 'door-8-x', activated: false, floor: 0.8, doorState: { accuracy: 0.5, openClosed: { accuracy: 0.6, balancedAccuracy: 0.61, closedF1: 0.6 } }, confusion: { labels: ['closed', 'open'], counts: [[40, 20], [25, 35]] }, at: now() } } }), door(9, 'unknown')]
app.get('/doors', async () => ({ doors: doors() }))
app.get('/home-assistant/status', async () => ({ enabled: true, connected: true, broker: 'mqtt://192.168.1.2:1883', discoveryPrefix: 'homeassistant', baseTopic: 'doorsense' }))
app.get('/doors/stream', (req, reply) => {
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
  for (const d of doors()) reply.raw.write(`event: door\ndata: ${JSON.stringify(d)}\n\n`)
  let open = true
  const t = setInterval(() => { open = !open; reply.raw.write(`event: door\ndata: ${JSON.stringify(door(7, open ? 'open' : 'closed'))}\n\n`) }, 3000)
  req.raw.on('close', () => clearInterval(t))
})
await app.listen({ port: 20099, host: '127.0.0.1' })
for (const id of [7, 8, 9]) await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: id === 7 ? 'pi-front' : `pi-${id}`, ID: id } })
console.log('listening')

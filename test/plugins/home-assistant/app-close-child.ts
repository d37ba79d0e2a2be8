/**
 * A whole doorsense app with MQTT on, in a process of its own, for the test
 * that app.close() leaves nothing open: builds the app on <dataDir> with
 * MQTT_URL=<url>, waits until the broker is connected, has a Pi appear (a
 * keep-alive and frames over HTTP), closes the app, prints `closed`, and must
 * then exit by itself. Anything still holding the event loop (the MQTT
 * socket, a reconnect or rate-limit timer) keeps it alive, which the test
 * sees as a timeout; an unref'd timer reports what is still active then.
 *
 *   node --import tsx test/plugins/home-assistant/app-close-child.ts <url> <dataDir>
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../../core/app.js'
import { loadConfig } from '../../../core/config.js'

const [url, dataDir] = process.argv.slice(2)
if (url === undefined || dataDir === undefined) {
  process.stderr.write('usage: app-close-child.ts <url> <dataDir>\n')
  process.exit(2)
}

const app = await buildApp(loadConfig({
  DATA_DIR: dataDir,
  LOG_LEVEL: 'error',
  LOG_TO_FILE: 'false',
  TF_BACKEND: 'cpu',
  ADMIN_TOKEN: 'app-close-child-admin-token',
  MQTT_URL: url
}))
await app.ready()
const deadline = Date.now() + 10_000
while (!(await app.inject('/home-assistant/status')).json<{ connected: boolean }>().connected) {
  if (Date.now() > deadline) throw new Error('never connected to the broker')
  await sleep(20)
}
const frame = Array.from({ length: 106 }, (_, index) => (index < 53 ? 10 + index : 0.01 * index))
const answers = [
  (await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'pi-close', ID: 7 } })).statusCode,
  (await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 7, frames: [frame, frame] } })).statusCode
]
process.stdout.write(`connected ${answers.join(' ')}\n`)
// let the door's configs and states go out
await sleep(300)
await app.close()
process.stdout.write('closed\n')
setTimeout(() => {
  process.stderr.write(`still active after close: ${process.getActiveResourcesInfo().join(', ')}\n`)
}, 2_000).unref()

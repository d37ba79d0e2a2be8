/**
 * A process holding one HomeAssistantBridge with a packet limit, for the test
 * that sends it a message far over that limit: its memory is measured apart
 * from the broker's (Aedes runs in the test process) and the sender's. It
 * prints one JSON line once connected (its memory then) and one when the
 * frame `after` arrives (the peaks since, and the bridge's counters).
 *
 *   node --import tsx test/plugins/home-assistant/packet-limit-child.ts <url> <maxPacketBytes>
 */
import { HomeAssistantBridge } from '../../../plugins/home-assistant/bridge.js'
import { MemoryDoors } from './memory-doors.js'

const [url, maxPacketBytes] = process.argv.slice(2)
if (url === undefined || maxPacketBytes === undefined) {
  process.stderr.write('usage: packet-limit-child.ts <url> <maxPacketBytes>\n')
  process.exit(1)
}

const MB = 1024 * 1024
const peak = { rss: 0, buffers: 0 }
const sample = (): void => {
  const usage = process.memoryUsage()
  peak.rss = Math.max(peak.rss, usage.rss)
  peak.buffers = Math.max(peak.buffers, usage.arrayBuffers)
}
const report = (fields: object): void => { process.stdout.write(`${JSON.stringify(fields)}\n`) }
const megabytes = (bytes: number): number => Math.round(bytes / MB * 10) / 10

const log = (level: string) => (obj: object, msg: string): void => { process.stderr.write(`${JSON.stringify({ level, msg, ...obj })}\n`) }
let announced = false
const bridge = new HomeAssistantBridge({
  url,
  discoveryPrefix: 'homeassistant',
  baseTopic: 'doorsense',
  swVersion: '0.0.0-child',
  source: new MemoryDoors(),
  log: { info: log('info'), warn: log('warn'), error: log('error'), debug: () => {} },
  maxPacketBytes: Number(maxPacketBytes),
  onConnectedChange: (connected) => {
    if (!connected || announced) return
    announced = true
    // a moment for the connect's own work to settle, then the baseline
    setTimeout(() => {
      const usage = process.memoryUsage()
      peak.rss = usage.rss
      peak.buffers = usage.arrayBuffers
      setInterval(sample, 5)
      report({ rssMB: megabytes(usage.rss), buffersMB: megabytes(usage.arrayBuffers) })
    }, 300)
  },
  onFrames: (_device, payload) => {
    sample()
    if (payload.toString() !== 'after') return
    const stats = bridge.stats()
    // + 1: the bridge counts this frame once onFrames returns
    report({
      peakRssMB: megabytes(peak.rss),
      peakBuffersMB: megabytes(peak.buffers),
      framesRouted: stats.framesRouted + 1,
      packetsSkipped: stats.packetsSkipped,
      connects: stats.connects,
      connected: stats.connected
    })
  }
})
bridge.start()

/**
 * `npm run bench -- mqtt-publish`: what doorsense publishes to Home Assistant
 * under load. The whole app (buildApp + listen on 127.0.0.1:0, temp DATA_DIR,
 * a global model trained on session A) with MQTT_URL on an Aedes broker in
 * this process (127.0.0.1:0); 64 Pis (BENCH_MQTT_DEVICES) each POST a batch of
 * 20 recorded frames to /server/post/frames once a second (20 frames/s per
 * door, the Pis' sends spread over the second), each streaming session A from
 * its own offset, so every door changes angle and state now and then as a
 * real one would. A subscriber on `homeassistant/#` and `doorsense/#` counts
 * what arrives, per second, for BENCH_SECONDS (default 25) after a 3 s warm-up;
 * doorsense_mqtt_published_total{kind} gives the split by kind. Reported:
 * messages/s (mean, peak second), per door, by kind, and the frames posts'
 * latency while it publishes. Loopback only, bounded in time (about
 * training + warm-up + BENCH_SECONDS).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Aedes } from 'aedes'
import { connectAsync } from 'mqtt'
import { buildApp } from '../core/app.js'
import { loadConfig } from '../core/config.js'
import { keepAliveBody } from './lib/bodies.js'
import { latencySummary } from './lib/latency.js'
import { readSessionA } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const DEVICES = Number(process.env.BENCH_MQTT_DEVICES ?? 64)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 25)
const FRAMES_PER_BATCH = 20
const WARM_UP_S = 3
const KINDS = ['status', 'config', 'state', 'availability', 'attribute', 'removal'] as const

async function publishedByKind (text: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const kind of KINDS) {
    const match = new RegExp(`^doorsense_mqtt_published_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text)
    counts[kind] = match === null ? 0 : Number(match[1])
  }
  return counts
}

export default async function bench (): Promise<BenchReport> {
  const rows = readSessionA()
  const frames = rows.map((row) => Array.from(row.features, (value) => Math.round(value * 1e4) / 1e4))

  const aedes = await Aedes.createBroker()
  const sockets = new Set<Socket>()
  const broker = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    aedes.handle(socket)
  })
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve))
  const brokerUrl = `mqtt://127.0.0.1:${(broker.address() as AddressInfo).port}`
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-bench-mqtt-'))
  const app = await buildApp(loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    LOG_TO_FILE: 'false',
    ADMIN_TOKEN: 'bench-admin-token-0123456789',
    TF_BACKEND: 'cpu',
    MQTT_URL: brokerUrl
  }))
  const observer = await connectAsync(brokerUrl, { reconnectPeriod: 0, clientId: 'bench-observer' })
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const trainingStarted = Date.now()
    await app.model.startTraining({ kind: 'csi', features: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }, { epochs: 20, seed: 1 })
    await app.model.waitForTraining()
    if (app.model.active === undefined) throw new Error(`training failed: ${app.model.lastFailure?.message}`)
    const trainingSeconds = (Date.now() - trainingStarted) / 1000

    for (let device = 0; device < DEVICES; device++) {
      const response = await fetch(`${url}/server/post/keep_alive`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: keepAliveBody(device, `door-${device}`)
      })
      if (response.status !== 200) throw new Error(`keep-alive answered ${response.status}`)
    }

    // the subscriber counts live messages only: retained ones replayed on subscribing are the broker's, not this second's
    let counting = false
    let bucket = 0
    const perSecond: number[] = []
    const topics = new Set<string>()
    observer.on('message', (topic, _payload, packet) => {
      if (!counting || packet.retain) return
      bucket++
      topics.add(topic)
    })
    await observer.subscribeAsync(['homeassistant/#', 'doorsense/#'], { qos: 1 })

    // each Pi sends its next 20 frames once a second, the Pis spread over the second
    const latencies: number[] = []
    let posts = 0
    let failures = 0
    const run = { stopped: false }
    const offsets = Array.from({ length: DEVICES }, (_, device) => Math.floor((device * frames.length) / DEVICES))
    const pi = async (device: number): Promise<void> => {
      await sleep((device * 1000) / DEVICES)
      let next = Date.now()
      while (!run.stopped) {
        const start = offsets[device]
        offsets[device] = (start + FRAMES_PER_BATCH) % frames.length
        const batch = Array.from({ length: FRAMES_PER_BATCH }, (_, i) => frames[(start + i) % frames.length])
        const sentAt = performance.now()
        try {
          const response = await fetch(`${url}/server/post/frames`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ID: device, frames: batch })
          })
          await response.arrayBuffer()
          if (response.status !== 200) failures++
        } catch {
          failures++
        }
        if (counting) {
          latencies.push(performance.now() - sentAt)
          posts++
        }
        next += 1000
        await sleep(Math.max(0, next - Date.now()))
      }
    }
    const pis = Array.from({ length: DEVICES }, (_, device) => pi(device))

    await sleep(WARM_UP_S * 1000)
    const before = await publishedByKind(await app.metrics.metrics())
    counting = true
    const measuredFrom = performance.now()
    for (let second = 0; second < SECONDS; second++) {
      await sleep(Math.max(0, measuredFrom + (second + 1) * 1000 - performance.now()))
      perSecond.push(bucket)
      bucket = 0
    }
    counting = false
    const measuredSeconds = (performance.now() - measuredFrom) / 1000
    const after = await publishedByKind(await app.metrics.metrics())
    run.stopped = true
    await Promise.all(pis)

    const received = perSecond.reduce((sum, count) => sum + count, 0)
    const byKind = Object.fromEntries(KINDS.map((kind) => [kind, (after[kind] - before[kind]) / measuredSeconds]))
    const published = KINDS.reduce((sum, kind) => sum + after[kind] - before[kind], 0)
    const latency = latencySummary(latencies)
    const meanRate = received / measuredSeconds
    const results = {
      devices: DEVICES,
      framesPerSecondPerDevice: FRAMES_PER_BATCH,
      framesPerSecond: DEVICES * FRAMES_PER_BATCH,
      seconds: measuredSeconds,
      trainingSeconds,
      messagesReceived: received,
      messagesPerSecond: meanRate,
      messagesPerSecondPerDoor: meanRate / DEVICES,
      peakSecond: Math.max(...perSecond),
      perSecond,
      publishedPerSecondByKind: byKind,
      publishedPerSecond: published / measuredSeconds,
      distinctTopics: topics.size,
      posts,
      postFailures: failures,
      postLatencyMs: { p50: latency.p50, p99: latency.p99, max: latency.max },
      loadAverage: loadavg()
    }
    const table: BenchReport['table'] = [
      { measure: 'messages/s received (mean)', value: meanRate.toFixed(1) },
      { measure: 'messages/s, peak second', value: results.peakSecond },
      { measure: 'messages/s per door', value: (meanRate / DEVICES).toFixed(2) },
      ...KINDS.filter((kind) => byKind[kind] > 0).map((kind) => ({ measure: `  published ${kind}/s`, value: byKind[kind].toFixed(1) })),
      { measure: 'frames/s posted (HTTP)', value: Math.round((posts * FRAMES_PER_BATCH) / measuredSeconds) },
      { measure: 'POST /server/post/frames p50 ms', value: results.postLatencyMs.p50.toFixed(1) },
      { measure: 'POST /server/post/frames p99 ms', value: results.postLatencyMs.p99.toFixed(1) },
      { measure: 'post failures', value: failures }
    ]
    return {
      name: 'mqtt-publish',
      table,
      results,
      notes: [
        `${DEVICES} doors × ${FRAMES_PER_BATCH} frames/s over HTTP for ${measuredSeconds.toFixed(1)} s (after ${WARM_UP_S} s warm-up) → ` +
          `${meanRate.toFixed(1)} MQTT messages/s at the subscriber ` +
          `(${(meanRate / DEVICES).toFixed(2)} per door; the ceiling is 4 attribute topics per door per second plus state and availability changes); ` +
          `app, broker, subscriber and the ${DEVICES} Pis share this process; load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`
      ]
    }
  } finally {
    await app.close()
    await observer.endAsync(true)
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    rmSync(dataDir, { recursive: true, force: true })
  }
}

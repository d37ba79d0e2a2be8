/**
 * The Pis as they send, open loop: each device posts a batch of frames every
 * `periodMs` from its own keep-alive socket (one request in flight, as the
 * agent), whatever the server's pace, and each answer's lateness is kept.
 * The ingest and cluster benchmarks drive the frames route with it from a
 * forked client (../forked-client.ts).
 */
import { randomUUID } from 'node:crypto'
import { Agent, request } from 'node:http'
import { gzipSync } from 'node:zlib'
import { framesBody } from './bodies.js'
import { latencySummary } from './latency.js'
import { quantile } from './quantile.js'

const FRAMES_ROUTE = '/server/post/frames'

export interface PacedFramesJob {
  /** The servers' base URLs: a device's batches go round-robin over them. */
  urls: string[]
  devices: number[]
  seconds: number
  /** ms between a device's batches. */
  periodMs: number
  /**
   * Each batch's frames: JSON text of the frame array, or with `binary` the
   * base64 of its raw bytes (a forked client's job crosses as JSON).
   */
  batches: string[]
  /** The batches are raw frames of this layout, sent as `application/octet-stream` (`?ID=&layout=`). */
  binary?: 'pi108' | 'esp128'
  /** Each body goes gzipped (`Content-Encoding: gzip`), compressed once before the run as the agent compresses each batch. */
  gzip?: boolean
  /** Whether each batch carries an Idempotency-Key of its own. */
  idempotency: boolean
}

export interface PacedFramesResult {
  requests: number
  ok: number
  statusCodes: Record<string, number>
  errors: number
  late: number
  framesAccepted: number
  framesRejected: number
  /** From the first send to the last answer: the window, plus the answers still owed at its end. */
  elapsedSeconds: number
  /** Accepted frames per whole second of the run. */
  perSecond: number[]
  /** Latency from the time the device meant to send, ms. */
  p50: number
  p99: number
  max: number
  /** Latency from the time it did send, ms. */
  serviceP50: number
  serviceP99: number
  /** The client process's own CPU over the run (it shares the machine's cores). */
  clientCpuSeconds: number
}

function post (
  url: URL, agent: Agent, body: string | Buffer, key: string | undefined, type: string, gzipped: boolean
): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': type, 'content-length': Buffer.byteLength(body) }
    if (gzipped) headers['content-encoding'] = 'gzip'
    if (key !== undefined) headers['idempotency-key'] = key
    const req = request(url, { method: 'POST', agent, headers }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }))
      response.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Runs `job` to its end: every device's batches on time, the answers counted. */
export async function runPacedFrames (job: PacedFramesJob): Promise<PacedFramesResult> {
  const cpuBefore = process.cpuUsage()
  const latencies: number[] = []
  const service: number[] = []
  const statusCodes: Record<string, number> = {}
  const perSecond: number[] = []
  let errors = 0
  let late = 0
  let framesAccepted = 0
  let framesRejected = 0
  const urls = job.urls.map((url) => new URL(FRAMES_ROUTE, url))
  const bytes = job.binary === undefined ? undefined : job.batches.map((batch) => Buffer.from(batch, 'base64'))
  const gzipped = job.gzip === true
  const type = bytes ? 'application/octet-stream' : 'application/json'
  // a JSON body names its device: gzipped, each device's bodies are compressed once, on first use
  const compressed = new Map<string, Buffer>()
  const bodyOf = (id: number, batch: number): string | Buffer => {
    const plain = bytes ? bytes[batch] : framesBody(id, job.batches[batch])
    if (!gzipped) return plain
    const key = bytes ? String(batch) : `${id}:${batch}`
    let body = compressed.get(key)
    if (body === undefined) compressed.set(key, body = gzipSync(plain))
    return body
  }
  const started = performance.now() + 200
  const end = started + job.seconds * 1000

  const device = async (id: number, index: number): Promise<void> => {
    // one keep-alive socket per device (per instance it reaches, as a Pi behind a proxy that spreads requests)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    let next = started + Math.random() * job.periodMs
    let sentBatches = 0
    try {
      while (next < end) {
        const wait = next - performance.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        else if (wait < -100) late++
        const sent = performance.now()
        const batch = (index + sentBatches) % job.batches.length
        const body = bodyOf(id, batch)
        let url = urls[(index + sentBatches) % urls.length]
        if (bytes) {
          url = new URL(url)
          url.search = `?ID=${id}&layout=${job.binary}`
        }
        sentBatches++
        try {
          const { status, text } = await post(url, agent, body, job.idempotency ? randomUUID() : undefined, type, gzipped)
          const done = performance.now()
          statusCodes[status] = (statusCodes[status] ?? 0) + 1
          latencies.push(done - next)
          service.push(done - sent)
          if (status === 200) {
            const receipt = JSON.parse(text) as { accepted: number, rejected: unknown[] }
            framesAccepted += receipt.accepted
            framesRejected += receipt.rejected.length
            const second = Math.floor((done - started) / 1000)
            if (second >= 0 && second < job.seconds) perSecond[second] = (perSecond[second] ?? 0) + receipt.accepted
          }
        } catch {
          errors++
        }
        next += job.periodMs
      }
    } finally {
      agent.destroy()
    }
  }

  await Promise.all(job.devices.map((id, index) => device(id, index)))
  const elapsedSeconds = (performance.now() - started) / 1000
  const latency = latencySummary(latencies)
  service.sort((a, b) => a - b)
  const cpu = process.cpuUsage(cpuBefore)
  return {
    requests: latency.requests,
    ok: statusCodes[200] ?? 0,
    statusCodes,
    errors,
    late,
    framesAccepted,
    framesRejected,
    elapsedSeconds,
    perSecond: Array.from({ length: job.seconds }, (_, second) => perSecond[second] ?? 0),
    p50: latency.p50,
    p99: latency.p99,
    max: latency.max,
    serviceP50: quantile(service, 0.5),
    serviceP99: quantile(service, 0.99),
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6
  }
}

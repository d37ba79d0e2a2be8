/**
 * A real listening server for the agent, CLI and client tests (buildApp +
 * listen on 127.0.0.1, temp DATA_DIR), and what they read from it.
 */
import type { TestContext } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp, type App } from '../../core/app.js'
import { testConfig } from '../helper.js'

/**
 * The whole app listening on 127.0.0.1 (`port` 0 = any free one), answering
 * 200 before this resolves; closed and its data dir removed after the test.
 */
export async function listen (t: TestContext, env: Record<string, string> = {}, port = 0): Promise<{ app: App, url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-live-'))
  const app = await buildApp(testConfig(dataDir, env))
  t.after(async () => {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  await app.listen({ host: '127.0.0.1', port })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  await whenAnswering(url)
  return { app, url }
}

/**
 * Waits until the server answers 200: right after start-up a loaded machine can
 * still show the start's event-loop stall, and under-pressure answers 503 then.
 */
async function whenAnswering (url: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if ((await fetch(`${url}/debug/get/exists`)).status === 200) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} did not answer 200 within 15 s`)
}

/**
 * fetch that waits out under-pressure's 503s (honouring Retry-After): on a
 * machine loaded by other work the server may shed a request now and then,
 * which is not what these tests are about. Anything else is returned as is.
 */
export async function patientFetch (input: Request | string, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init)
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(request.clone())
    if (response.status !== 503 || attempt === 20) return response
    await response.arrayBuffer()
    await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1000))
  }
}

/** A GET answered with JSON, waiting out load shedding. */
export async function getJson<T> (url: string): Promise<T> {
  return await (await patientFetch(url)).json() as T
}

/** A loopback port nobody listens on (for a moment). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** doorsense_frames_received_total for `device`, read from GET /metrics as Prometheus would. */
export async function framesReceived (url: string, device: number): Promise<number> {
  const text = await (await patientFetch(`${url}/metrics`)).text()
  const match = new RegExp(`^doorsense_frames_received_total\\{device="${device}"\\} (\\d+)$`, 'm').exec(text)
  return match ? Number(match[1]) : 0
}

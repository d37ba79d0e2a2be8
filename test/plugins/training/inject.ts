/**
 * app.inject as a well-behaved client does it: when the server sheds load
 * (@fastify/under-pressure's 503 FST_UNDER_PRESSURE with Retry-After, which a
 * busy shared test machine trips), wait as told and ask again. Every other
 * answer, 503s of our own included, comes back as it is.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../../core/app.js'

const ATTEMPTS = 5

export async function inject (app: App, options: InjectOptions): Promise<LightMyRequestResponse> {
  for (let attempt = 1; ; attempt++) {
    const response = await app.inject(options)
    if (response.statusCode !== 503 || attempt === ATTEMPTS) return response
    let code: unknown
    try {
      code = response.json<{ code?: string }>().code
    } catch {
      return response
    }
    if (code !== 'FST_UNDER_PRESSURE') return response
    await sleep(Number(response.headers['retry-after'] ?? 1) * 1000)
  }
}

/** The global model's micro-batching as an in-process app's own metrics count it (inference, door-state). */
import type { App } from '../../core/app.js'

/** Model calls and the frames they read so far, and frames still queued for the micro-batcher. */
export interface BatchStats {
  calls: number
  frames: number
  queued: number
}

/** Reads {@link BatchStats} from the app's /metrics. */
export async function batchStats (app: App): Promise<BatchStats> {
  let response = await app.inject({ method: 'GET', url: '/metrics' })
  // while the server sheds load (503 from under-pressure) /metrics is refused too: wait it out
  for (let tries = 0; response.statusCode !== 200 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    response = await app.inject({ method: 'GET', url: '/metrics' })
  }
  if (response.statusCode !== 200) throw new Error(`/metrics answered ${response.statusCode}`)
  const text = response.body
  return {
    calls: Number(/doorsense_inference_batch_frames_count (\d+)/.exec(text)?.[1] ?? 0),
    frames: Number(/doorsense_inference_batch_frames_sum (\d+)/.exec(text)?.[1] ?? 0),
    queued: Number(/doorsense_inference_queue_frames (\d+)/.exec(text)?.[1] ?? 0)
  }
}

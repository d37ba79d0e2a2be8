/**
 * The training-progress streams share the door-state streams' hub: over real
 * sockets, a subscriber that never reads is cut off once its backlog passes
 * MAX_BUFFERED_BYTES, while the subscribers that read keep receiving every
 * event, in the framing the dashboard and the training routes rely on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter, once } from 'node:events'
import { connect } from 'node:net'
import { request as httpRequest } from 'node:http'
import { setImmediate as nextTurn } from 'node:timers/promises'
import Fastify from 'fastify'
import { MAX_BUFFERED_BYTES } from '../../../core/event-stream.js'
import { ProgressStreams } from '../../../plugins/training/progress-streams.js'
import type { TrainingProgress, TrainingState } from '../../../schemas/model.js'

/** A model handler as the streams see it: its state, its progress, and the two events. */
class TrainingSource extends EventEmitter {
  state: TrainingState = 'TRAINING_IN_PROGRESS'
  progress: TrainingProgress | undefined = { state: 'TRAINING_IN_PROGRESS', epoch: 0, epochs: 1_000_000, elapsedSeconds: 0 }
}

/** A reading client: every `progress` epoch it got, in order, and whether its stream ended. */
function reader (port: number): Promise<{ epochs: number[], text: () => string, ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: '/progress', agent: false }, (response) => {
      const epochs: number[] = []
      let all = ''
      let buffer = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        if (all.length < 4096) all += chunk
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const match = /^event: progress\ndata: (.*)$/.exec(message)
          if (match) epochs.push((JSON.parse(match[1]!) as TrainingProgress).epoch)
        }
      })
      resolve({ epochs, text: () => all, ended: once(response, 'close').then(() => {}) })
    }).on('error', reject).end()
  })
}

test('a subscriber that never reads is cut off past MAX_BUFFERED_BYTES; the others keep every event', { timeout: 120_000 }, async (t) => {
  const source = new TrainingSource()
  const streams = new ProgressStreams(source)
  const app = Fastify()
  app.get('/progress', async (request, reply) => streams.open(request, reply))
  app.addHook('preClose', async () => streams.closeAll())
  t.after(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port

  const readers = [await reader(port), await reader(port)]
  // the stalled one: sends its request, then never reads a byte
  const stalled = connect(port, '127.0.0.1')
  t.after(() => stalled.destroy())
  await once(stalled, 'connect')
  stalled.pause()
  stalled.write('GET /progress HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  while (streams.size < 3) await nextTurn()

  // realistic progress events, ~190 bytes each, 500 per turn of the event loop (the readers drain in between)
  const progress = (epoch: number): TrainingProgress => ({
    state: 'TRAINING_IN_PROGRESS',
    version: 'csi-2026-12-01T22-00-00-000Z',
    epoch,
    epochs: 1_000_000,
    loss: 1.234567,
    accuracy: 0.456789,
    validationAccuracy: 0.345678,
    elapsedSeconds: epoch / 10,
    etaSeconds: 1000
  })
  let epoch = 0
  let sentBytes = 0
  // the kernel's socket buffers take the first few MiB; past them the stream's own backlog grows to the cap
  while (streams.size === 3) {
    assert.ok(sentBytes < 256 * MAX_BUFFERED_BYTES, `still subscribed after ${sentBytes} bytes`)
    for (let i = 0; i < 500; i++) {
      source.progress = progress(++epoch)
      source.emit('progress', source.progress)
    }
    sentBytes += 500 * JSON.stringify(progress(epoch)).length
    await nextTurn()
  }
  const cutAtEpoch = epoch
  assert.equal(streams.size, 2, 'only the stalled subscriber was cut off')
  t.diagnostic(`stalled subscriber cut off after ${cutAtEpoch} events (~${(sentBytes / 2 ** 20).toFixed(1)} MiB)`)

  // the readers go on receiving: more progress and a state change
  for (let i = 0; i < 100; i++) source.emit('progress', progress(++epoch))
  source.emit('state', 'FINISHED_TRAINING')
  const last = epoch
  while (readers.some((client) => client.epochs.at(-1) !== last)) await new Promise((resolve) => setTimeout(resolve, 10))
  for (const client of readers) {
    // the snapshot (epoch 0), then every epoch once, in order
    assert.equal(client.epochs.length, last + 1)
    assert.ok(client.epochs.every((value, i) => value === i), 'an event was lost or reordered')
    assert.match(client.text(), /^retry: 2000\n\nevent: progress\ndata: \{"state":"TRAINING_IN_PROGRESS","epoch":0,"epochs":1000000,"elapsedSeconds":0\}\n\n/)
  }

  // what the stalled client gets when it finally reads: a cut-short stream, far from everything
  let received = 0
  stalled.on('data', (chunk: Buffer) => { received += chunk.length })
  stalled.on('error', () => {})
  const stalledClosed = once(stalled, 'close')
  stalled.resume()
  await stalledClosed
  assert.ok(received < sentBytes, `the stalled client got ${received} of ${sentBytes} bytes`)

  // closing ends the other streams
  const ended = Promise.all(readers.map((client) => client.ended))
  await app.close()
  await ended
  assert.equal(streams.size, 0)
})

test('after closeAll a new stream is answered and ended at once, and the source is no longer listened to', async (t) => {
  const source = new TrainingSource()
  const streams = new ProgressStreams(source)
  assert.equal(source.listenerCount('progress'), 1)
  streams.closeAll()
  assert.equal(source.listenerCount('progress'), 0)
  assert.equal(source.listenerCount('state'), 0)
  const app = Fastify()
  app.get('/progress', async (request, reply) => streams.open(request, reply))
  t.after(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const response = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/progress`)
  assert.equal(response.status, 200)
  assert.equal(await response.text(), '')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { ADMIN, buildTestApp } from '../../helper.js'
import { sessionCsv, sessionSlice } from '../../fixtures/training.js'

/** Reads a text stream in the background; `text()` is what arrived so far, `ended` settles when it ends. */
function collect (body: ReadableStream<Uint8Array>): { text: () => string, ended: Promise<void> } {
  let text = ''
  const decoder = new TextDecoder()
  const reader = body.getReader()
  const ended = (async () => {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      text += decoder.decode(value, { stream: true })
    }
  })()
  return { text: () => text, ended }
}

test('a listening server answers /debug/get/exists while it trains, and streams the progress as server-sent events', async (t) => {
  const app = await buildTestApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const imported = await fetch(`${base}/training/post/import`, {
    method: 'POST',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    body: sessionCsv(sessionSlice(60))
  })
  assert.equal(imported.status, 200)

  const stream = await fetch(`${base}/training/get/progress/stream`)
  assert.equal(stream.status, 200)
  assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/)
  const events = collect(stream.body as ReadableStream<Uint8Array>)

  const accepted = await fetch(`${base}/training/post/train`, {
    method: 'POST',
    headers: { ...ADMIN, 'content-type': 'application/json' },
    body: JSON.stringify({ epochs: 10 })
  })
  assert.equal(accepted.status, 202)
  let answered = 0
  while (app.model.state === 'START_TRAINING' || app.model.state === 'TRAINING_IN_PROGRESS') {
    const response = await fetch(`${base}/debug/get/exists`)
    assert.equal(response.status, 200)
    await response.text()
    answered++
    // a client's pace, not a flood: the test asserts answers, not throughput
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  assert.equal(app.model.state, 'FINISHED_TRAINING', app.model.lastFailure?.message)
  assert.ok(answered > 0, 'the server answered while the training ran')
  t.diagnostic(`/debug/get/exists answered ${answered} times during the training`)

  // the stream saw the run: the current progress at once, each epoch, the state changes
  while (!events.text().includes('"state":"FINISHED_TRAINING"}')) await new Promise((resolve) => setTimeout(resolve, 10))
  const text = events.text()
  assert.match(text, /^retry: 2000\n\nevent: progress\ndata: \{"state":"MODEL_DOESNT_EXIST"/)
  assert.match(text, /event: state\ndata: \{"state":"TRAINING_IN_PROGRESS"\}/)
  assert.match(text, /event: state\ndata: \{"state":"FINISHED_TRAINING"\}/)
  const epochs = [...text.matchAll(/event: progress\ndata: (\{.*\})\n/g)].map((match) => JSON.parse(match[1]) as { epoch: number, state: string })
    .filter((progress) => progress.state === 'TRAINING_IN_PROGRESS' && progress.epoch > 0).map((progress) => progress.epoch)
  assert.deepEqual(epochs, Array.from({ length: 10 }, (_, i) => i + 1))

  // closing the app ends every open stream instead of waiting for the clients
  const second = collect((await fetch(`${base}/training/get/progress/stream`)).body as ReadableStream<Uint8Array>)
  while (!second.text().includes('event: progress')) await new Promise((resolve) => setTimeout(resolve, 10))
  await app.close()
  await events.ended
  await second.ended
  assert.match(second.text(), /"state":"FINISHED_TRAINING"/)
})

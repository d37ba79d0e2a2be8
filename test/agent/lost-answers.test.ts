/**
 * The agent against a real server whose answers get lost: a proxy on
 * loopback forwards each frame batch, lets the server commit and answer, and
 * then cuts the agent's socket instead of passing the answer on. The agent
 * retries each such batch with its Idempotency-Key, and every frame is
 * stored exactly once.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from '../../agent/agent.js'
import { HttpTransport } from '../../agent/transport.js'
import { storedFrame } from '../../plugins/rpi-servers/frame-store.js'
import { listen } from '../fixtures/live-server.js'
import { rawPiLines } from '../fixtures/frames.js'

const piFrames = rawPiLines()

interface LossyProxy {
  url: string
  /** Frame batches whose answer was cut off, in order, with the key each carried. */
  lost: Array<string | undefined>
}

/**
 * A proxy to `upstream` that, for the frame batches `loseAnswer` picks
 * (by their 0-based number), destroys the client's socket once the server
 * has answered: the batch is stored, the client never hears so.
 */
async function lossyProxy (t: TestContext, upstream: string, loseAnswer: (batch: number) => boolean): Promise<LossyProxy> {
  const target = new URL(upstream)
  const lost: Array<string | undefined> = []
  let batches = 0
  const proxy = createServer((incoming, outgoing) => {
    // the agent's batches go as bytes, with their device and layout in the query string
    const isBatch = incoming.method === 'POST' && incoming.url?.split('?')[0] === '/server/post/frames'
    const drop = isBatch && loseAnswer(batches++)
    const forwarded = httpRequest({
      host: target.hostname,
      port: target.port,
      method: incoming.method,
      path: incoming.url,
      headers: incoming.headers as IncomingHttpHeaders
    }, (answer) => {
      const chunks: Buffer[] = []
      answer.on('data', (chunk: Buffer) => chunks.push(chunk))
      answer.on('end', () => {
        if (drop) {
          lost.push(incoming.headers['idempotency-key'] as string | undefined)
          incoming.socket.destroy()
          return
        }
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
        outgoing.end(Buffer.concat(chunks))
      })
    })
    forwarded.on('error', () => incoming.socket.destroy())
    incoming.pipe(forwarded)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => {
    proxy.closeAllConnections()
    proxy.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, lost }
}

test('answers lost after the server committed: the agent retries with the same key and every frame is stored once', async (t) => {
  const { app, url } = await listen(t)
  // the answers of batches 0, 1 (its retry), 3 and 6 are lost
  const proxy = await lossyProxy(t, url, (batch) => [0, 1, 3, 6].includes(batch))
  const logs: string[] = []
  const agent = new Agent({
    transport: new HttpTransport({ server: proxy.url, name: 'pi-hall', id: 11, infer: false, timeoutMs: 5000 }),
    batchSize: 50,
    flushMs: 20,
    backoff: { initialMs: 20, maxMs: 80, factor: 2, jitter: 0.5 },
    log: (line) => logs.push(line)
  })
  t.after(() => agent.finish(0))
  agent.start()
  for (const line of piFrames) agent.push(line)
  const summary = await agent.finish(15_000)

  const stored = app.storage.db.prepare('SELECT features, layout FROM rpi_frames WHERE device = 11 ORDER BY id')
    .all() as Array<{ features: Buffer, layout: number }>
  assert.equal(stored.length, 319, 'no batch stored twice')
  assert.equal(proxy.lost.length, 4, 'the proxy cut four answers')
  assert.ok(proxy.lost.every((key) => typeof key === 'string' && key.length === 36), 'every batch carried a key')
  assert.equal(proxy.lost[0], proxy.lost[1], 'the retry of a batch carries its key')
  assert.equal(new Set(proxy.lost).size, 3)
  assert.ok(logs.some((line) => line.startsWith('server did not take a batch')), logs.join('\n'))
  assert.deepEqual({ read: summary.read, sent: summary.sent, dropped: summary.dropped, rejected: summary.rejected, retries: summary.retries },
    { read: 319, sent: 319, dropped: 0, rejected: 0, retries: 4 })

  // each frame once, in input order: the first channel's magnitude of each stored frame against its line
  const ch6 = stored.map(({ features, layout }) => storedFrame(layout, features).features[0])
  const expected = piFrames.map((line) => { const pairs = JSON.parse(line) as number[]; return Math.hypot(pairs[2], pairs[3]) })
  ch6.forEach((value, i) => assert.ok(Math.abs(value - expected[i]) < 1e-4, `frame ${i}`))
  const metrics = await (await fetch(`${url}/metrics`)).text()
  assert.match(metrics, /doorsense_idempotent_replays_total\{route="\/server\/post\/frames"\} 4\n/, 'each lost answer was replayed once')
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest, type ServerResponse } from 'node:http'
import Fastify from 'fastify'
import { EventStreamHub, sseEvent } from '../../core/event-stream.js'

/** A real client of a stream: every `event: n` number it has read, in order. */
async function subscribe (port: number): Promise<{ numbers: number[], until: (count: number) => Promise<number[]>, ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path: '/stream' }, (response) => {
      const numbers: number[] = []
      let buffer = ''
      let wake = (): void => {}
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const data = buffer.slice(0, end).split('\n').find((line) => line.startsWith('data: '))
          buffer = buffer.slice(end + 2)
          if (data) numbers.push(JSON.parse(data.slice(6)) as number)
        }
        wake()
      })
      const ended = new Promise<void>((resolve) => response.on('end', resolve))
      const until = async (count: number): Promise<number[]> => {
        while (numbers.length < count) await new Promise<void>((resolve) => { wake = resolve })
        return numbers
      }
      resolve({ numbers, until, ended })
    })
    request.on('error', reject)
    request.end()
  })
}

test('broadcasts go out at the end of the turn, a whole turn in one write per client, every event in order; a later client gets only its snapshot', async (t) => {
  const hub = new EventStreamHub()
  const opened: ServerResponse[] = []
  const app = Fastify()
  app.get('/stream', (request, reply) => {
    hub.open(request, reply, sseEvent('n', -opened.length - 1))
    opened.push(reply.raw)
  })
  t.after(async () => { hub.closeAll(); await app.close() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port

  const first = await subscribe(port)
  await first.until(1)
  let writes = 0
  const write = opened[0].write.bind(opened[0]) as (chunk: string) => boolean
  opened[0].write = ((chunk: string) => { writes++; return write(chunk) }) as ServerResponse['write']

  for (let n = 0; n < 100; n++) hub.broadcast(sseEvent('n', n))
  assert.equal(writes, 0, 'nothing is written inside the turn that broadcast (the request that caused it is answered first)')
  // a client that opens now: its snapshot already holds what was broadcast, so it is not sent the 100 again
  const second = await subscribe(port)
  assert.equal(writes, 1, 'the 100 events went out in one write, before the second client was added')
  assert.deepEqual(await first.until(101), [-1, ...Array.from({ length: 100 }, (_, n) => n)])
  hub.broadcast(sseEvent('n', 100))
  hub.closeAll()
  await Promise.all([first.ended, second.ended])
  assert.deepEqual(first.numbers.slice(-2), [99, 100], 'closeAll writes what was broadcast before it ends the streams')
  assert.deepEqual(second.numbers, [-2, 100])
})

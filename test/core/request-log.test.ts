/**
 * core/request-log.ts's request loggers: pino's child is made only when a
 * line gets through, and the lines are the ones pino's child writes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import pino from 'pino'
import { requestLoggerFactory } from '../../core/request-log.js'

/** A pino logger at `level` whose lines land in `lines`, and how many children it made. */
function recordingLogger (level: string) {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    }
  })
  const logger = pino({ level }, stream)
  const counts = { children: 0 }
  const child = logger.child
  // pino's children inherit this method: it must make the child of whichever logger it is called on
  logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) {
    counts.children++
    return child.apply(this, args)
  } as typeof logger.child
  return { logger, lines, counts }
}

/** Lets pino's stream deliver what was written. */
const flushed = () => new Promise((resolve) => setImmediate(resolve))

test('a request logger makes no child while nothing gets through its level, and writes pino\'s child\'s line when something does', async () => {
  const { logger, lines, counts } = recordingLogger('info')
  const log = requestLoggerFactory(logger, { reqId: 'req-1' }, {})
  log.debug({ req: 'r' }, 'incoming request')
  log.trace('finer still')
  assert.equal(counts.children, 0)
  assert.equal(log.level, 'info')
  log.info({ statusCode: 404 }, 'request rejected')
  log.warn('and %s', 'formatted')
  await flushed()
  assert.equal(counts.children, 1, 'one child, made once')
  assert.deepEqual(lines.map(({ level, reqId, msg, statusCode }) => ({ level, reqId, msg, statusCode })), [
    { level: 30, reqId: 'req-1', msg: 'request rejected', statusCode: 404 },
    { level: 40, reqId: 'req-1', msg: 'and formatted', statusCode: undefined }
  ])
})

test('a route\'s own level holds: at warn its info lines are dropped and its warnings written', async () => {
  const { logger, lines, counts } = recordingLogger('info')
  const log = requestLoggerFactory(logger, { reqId: 'req-2' }, { level: 'warn' })
  log.info('not at warn')
  assert.equal(counts.children, 0)
  assert.equal(log.level, 'warn')
  log.error(new Error('boom'), 'failed')
  await flushed()
  assert.equal(lines.length, 1)
  assert.equal(lines[0]?.reqId, 'req-2')
  assert.equal(lines[0]?.msg, 'failed')
  assert.equal((lines[0]?.err as { message?: string } | undefined)?.message, 'boom')
})

test('a silent log writes nothing; a child of a request logger keeps the request id and adds its own bindings', async () => {
  const silent = recordingLogger('silent')
  requestLoggerFactory(silent.logger, { reqId: 'req-3' }, {}).fatal('never')
  assert.equal(silent.counts.children, 0)

  const { logger, lines } = recordingLogger('info')
  requestLoggerFactory(logger, { reqId: 'req-4' }, {}).child({ area: 'test' }).info('from the grandchild')
  await flushed()
  assert.deepEqual(lines.map(({ reqId, area, msg }) => ({ reqId, area, msg })), [{ reqId: 'req-4', area: 'test', msg: 'from the grandchild' }])
})

test('Fastify takes it as its childLoggerFactory: request.log lines carry the request id', async (t) => {
  const { logger, lines } = recordingLogger('info')
  const app = Fastify({ loggerInstance: logger, childLoggerFactory: requestLoggerFactory, disableRequestLogging: true })
  t.after(() => app.close())
  app.get('/hello', async (request) => {
    request.log.info('handled')
    return { ok: true }
  })
  const response = await app.inject('/hello')
  assert.equal(response.statusCode, 200)
  await flushed()
  const handled = lines.find((line) => line.msg === 'handled')
  assert.match(String(handled?.reqId), /^req-/)
})

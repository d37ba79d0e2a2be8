/**
 * The denominator of bench/overhead.bench.ts: a bare Fastify 5 — the same
 * package doorsense runs, `Fastify()` with its defaults (no logger, no hooks,
 * no schemas) — serving doorsense's liveness and echo routes with the same
 * answers: `GET /debug/get/exists` answers "Success" as text/plain, `POST
 * /debug/post/echo` answers the JSON body it parsed, serialized again. Run
 * as a child process like doorsense's own (`startChildServer({ script:
 * BARE_SERVER_SCRIPT })`), on HOST:PORT from its environment; stops on SIGTERM.
 */
import Fastify from 'fastify'

const app = Fastify()
app.get('/debug/get/exists', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Success'))
app.post('/debug/post/echo', async (request, reply) => reply.type('application/json; charset=utf-8').send(JSON.stringify(request.body)))

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.once('SIGTERM', () => {
  app.close().then(() => process.exit(0), () => process.exit(1))
})

/**
 * PostgreSQL in the app (DATABASE_URL, docs/cluster.md): the pool as
 * `fastify.postgres`, or null on the embedded default. The stores that live
 * there open their tables through it (each migrates its own schema); the pool
 * closes after them, since this plugin is registered before every area.
 */
import fp from 'fastify-plugin'
import { Postgres } from './postgres.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** PostgreSQL (DATABASE_URL set), or null: the stores use SQLite in DATA_DIR. */
    postgres: Postgres | null
  }
}

export const postgresPlugin = fp<{ url: string | undefined }>(async (app, { url }) => {
  if (url === undefined) {
    app.decorate('postgres', null)
    return
  }
  const postgres = await Postgres.open(url, {
    applicationName: 'doorsense',
    onError: (err) => app.log.warn({ err }, 'postgres: an idle connection failed; the pool opens another')
  })
  app.decorate('postgres', postgres)
  app.addHook('onClose', async () => postgres.close())
}, { name: 'postgres', fastify: '5.x' })

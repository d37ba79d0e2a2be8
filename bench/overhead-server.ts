/**
 * bench/overhead.bench.ts's doorsense with per-request parts left out, to
 * measure what each costs: `buildApp` with `benchWithout` read from
 * OVERHEAD_WITHOUT (comma-separated {@link PER_REQUEST_PARTS} names), every
 * other setting from the environment as `bin/serve.ts` reads it, listening
 * on HOST:PORT; stops on SIGTERM. Started by `startChildServer({ script:
 * OVERHEAD_SERVER_SCRIPT })` (bench/child-server.ts).
 */
import { buildApp, PER_REQUEST_PARTS, type PerRequestPart } from '../core/app.js'
import { loadConfig } from '../core/config.js'

const named = (process.env.OVERHEAD_WITHOUT ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '')
const unknown = named.filter((name) => !(PER_REQUEST_PARTS as readonly string[]).includes(name))
if (unknown.length) throw new Error(`OVERHEAD_WITHOUT names no part ${unknown.join(', ')} (the parts: ${PER_REQUEST_PARTS.join(', ')})`)

const config = loadConfig()
const app = await buildApp(config, { benchWithout: named as PerRequestPart[] })
await app.listen({ host: config.HOST, port: config.PORT })
process.once('SIGTERM', () => {
  app.close().then(() => process.exit(0), () => process.exit(1))
})

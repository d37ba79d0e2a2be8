import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { NotFoundError } from '../../core/errors.js'
import type { DashboardAsset, DashboardAssets } from './assets.js'

export interface DashboardRouteOptions {
  assets: DashboardAssets
}

/** The build's URLs change with every byte, so a browser may keep them for a year without asking again. */
const IMMUTABLE = 'public, max-age=31536000, immutable'
/** The page itself is asked for each time (a cheap 304 when unchanged), so a new build is seen at once. */
const REVALIDATE = 'no-cache'
/** /favicon.ico keeps its URL across builds: kept a day. */
const A_DAY = 'public, max-age=86400'

const AssetParams = Type.Object({
  build: Type.String({ pattern: '^[0-9a-f]{1,64}$' }),
  '*': Type.String()
})

/**
 * GET / (the page), GET /dashboard/<build>/… (its scripts, styles and the
 * vendored modules) and GET /favicon.ico. Static files: hidden from the
 * OpenAPI document.
 */
export const dashboardRoutes: FastifyPluginAsyncTypebox<DashboardRouteOptions> = async (app, { assets }) => {
  app.get('/', { schema: { hide: true } }, async (request, reply) => send(request, reply, assets.index, REVALIDATE))

  // where a browser looks for an icon on a page that names none (a JSON answer, the typedoc site), and Safari always
  const favicon = assets.files.get('assets/favicon.ico')
  if (favicon) app.get('/favicon.ico', { schema: { hide: true } }, async (request, reply) => send(request, reply, favicon, A_DAY))

  app.get('/dashboard/:build/*', { schema: { hide: true, params: AssetParams } }, async (request, reply) => {
    const { build, '*': path } = request.params
    // an old page asking for its old build: a 404 it can recover from by reloading, never another build's bytes cached for a year
    if (build !== assets.build) throw new NotFoundError(`dashboard build ${build} is not served any more (this server has ${assets.build}): reload the page`)
    const asset = assets.files.get(path)
    if (asset === undefined) throw new NotFoundError(`no dashboard file ${path}`)
    return send(request, reply, asset, IMMUTABLE)
  })
}

function send (request: FastifyRequest, reply: FastifyReply, asset: DashboardAsset, cacheControl: string): FastifyReply {
  reply.header('cache-control', cacheControl).header('etag', asset.etag).header('vary', 'accept-encoding')
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send()
  reply.type(asset.contentType)
  // precompressed at start: nothing is compressed per request
  if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) return reply.header('content-encoding', 'gzip').send(asset.gzip)
  return reply.send(asset.body)
}

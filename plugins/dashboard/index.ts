import fp from 'fastify-plugin'
import { loadDashboardAssets, type LoadOptions } from './assets.js'
import { dashboardRoutes } from './routes.js'

export type DashboardOptions = LoadOptions

/**
 * The dashboard area: the web page at `/` (doors, devices, calibration
 * wizard, model) and its files. Every file, the vendored Preact, htm, uPlot
 * and openapi-fetch included, comes from this server (no CDN, no build step);
 * they are read and gzipped once at start. The page talks to the server only
 * through the public HTTP routes.
 */
export default fp<DashboardOptions>(async (app, options) => {
  const assets = loadDashboardAssets(options)
  app.log.debug({ build: assets.build, files: assets.files.size }, 'dashboard files loaded')
  await app.register(dashboardRoutes, { assets })
}, { name: 'dashboard', fastify: '5.x' })

import fp from 'fastify-plugin'
import { join } from 'node:path'
import { ADMIN_TOKEN_FILE } from '../../core/auth.js'
import { loadDashboardAssets, type LoadOptions } from './assets.js'
import { dashboardRoutes } from './routes.js'

export type DashboardOptions = LoadOptions

/**
 * The dashboard area: the web page at `/` (doors, devices, calibration
 * wizard, model) and its files. Every file, the vendored Preact, htm, uPlot
 * and openapi-fetch included, comes from this server (no CDN, no build step);
 * they are read and gzipped once at start. The page talks to the server only
 * through the public HTTP routes; the one setting it is given in the page
 * itself is where the admin token is kept, for its token prompt to say.
 */
export default fp<DashboardOptions>(async (app, options) => {
  // the token prompt names where the admin token is: DATA_DIR/admin-token, unless ADMIN_TOKEN sets it
  const adminTokenFile = app.config.ADMIN_TOKEN ? null : join(app.config.DATA_DIR, ADMIN_TOKEN_FILE)
  const assets = loadDashboardAssets({ adminTokenFile, ...options })
  app.log.debug({ build: assets.build, files: assets.files.size }, 'dashboard files loaded')
  await app.register(dashboardRoutes, { assets })
}, { name: 'dashboard', fastify: '5.x' })

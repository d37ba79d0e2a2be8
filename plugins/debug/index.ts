import fp from 'fastify-plugin'
import { PROJECT_ROOT } from '../../core/project.js'
import { createRedeployLauncher } from './redeploy.js'
import { debugRoutes } from './routes.js'

/**
 * The debug area: liveness, time, versions, the request-logging switch, the
 * redeploy trigger and the last training failure (all legacy routes).
 */
export default fp(async (app) => {
  const launcher = createRedeployLauncher({ projectRoot: PROJECT_ROOT, dataDir: app.config.DATA_DIR })
  // routes in their own context, so their content-type rules stay theirs
  await app.register(debugRoutes, { launcher })
}, {
  name: 'debug',
  fastify: '5.x',
  decorators: { fastify: ['config', 'requestLogging', 'requireAdmin'] }
})

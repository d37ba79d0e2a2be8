import fp from 'fastify-plugin'

/** The debug area (to be built). */
export default fp(async () => {}, { name: 'debug', fastify: '5.x' })

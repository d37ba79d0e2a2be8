import fp from 'fastify-plugin'

/** The docs area (to be built). */
export default fp(async () => {}, { name: 'docs', fastify: '5.x' })

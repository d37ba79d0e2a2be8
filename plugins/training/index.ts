import fp from 'fastify-plugin'

/** The training area (to be built). */
export default fp(async () => {}, { name: 'training', fastify: '5.x' })

import fp from 'fastify-plugin'

/** The model area (to be built). */
export default fp(async () => {}, { name: 'model', fastify: '5.x' })

import fp from 'fastify-plugin'

/** The inference area (to be built). */
export default fp(async () => {}, { name: 'inference', fastify: '5.x' })

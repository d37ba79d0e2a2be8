import fp from 'fastify-plugin'

/** The rpi-servers area (to be built). */
export default fp(async () => {}, { name: 'rpi-servers', fastify: '5.x' })

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError } from './errors.js'

/** Fastify's default longest path parameter, in characters (every route's parameters have far shorter limits of their own). */
export const MAX_PATH_PARAMETER_LENGTH = 100

/**
 * Fastify's `frameworkErrors`: the router's own refusals, made before any
 * route runs, go through the app's error handler like every other 4xx, so
 * they have its body and its log line. A path with a broken percent-encoding
 * (FST_ERR_BAD_URL) stays a 400; a path parameter longer than
 * {@link MAX_PATH_PARAMETER_LENGTH} (FST_ERR_MAX_PARAM_LENGTH, which Fastify
 * would answer 414 with a body of its own that says "Bad Request" and quotes
 * the whole path) is a bad value of that parameter: a 400, as the contract
 * lists for every route with one.
 */
export function answerRouterRefusal (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.send(new BadRequestError(`a path parameter is longer than ${MAX_PATH_PARAMETER_LENGTH} characters`))
    return
  }
  reply.send(err)
}

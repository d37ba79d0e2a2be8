/**
 * Binary request bodies: `application/octet-stream` taken whole as a Buffer
 * by the routes that say so, and the parameters such a body cannot carry
 * itself, given in the query string or in a header.
 */
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { BadRequestError, UnsupportedMediaTypeError } from './errors.js'

/** The media type of a binary body. */
export const OCTET_STREAM = 'application/octet-stream'

/** Whether the request's route lists {@link OCTET_STREAM} in its schema's `consumes`. */
function takesOctetStream (request: FastifyRequest): boolean {
  const consumes = (request.routeOptions.schema as { consumes?: unknown } | undefined)?.consumes
  return Array.isArray(consumes) && consumes.includes(OCTET_STREAM)
}

/**
 * Adds the `application/octet-stream` parser to `app`'s scope: the body
 * reaches a route whose schema lists the type in `consumes` as one Buffer
 * (within the route's body limit: past it a 413, as for JSON); every other
 * route of the scope answers 415, as it did without the parser. A route taking
 * it gives its body schema per content type (`body: { content: { … } }`), so
 * the Buffer is not held to the JSON body's schema.
 */
export function acceptOctetStream (app: FastifyInstance): void {
  app.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer' }, (request, body, done) => {
    if (takesOctetStream(request)) done(null, body)
    else done(new UnsupportedMediaTypeError(request.headers['content-type'] ?? OCTET_STREAM), undefined)
  })
}

/**
 * The request's binary body: the Buffer the parser gave, an empty one for an
 * {@link OCTET_STREAM} request without a body; undefined for any other type.
 */
export function binaryBodyOf (request: FastifyRequest): Buffer | undefined {
  if (Buffer.isBuffer(request.body)) return request.body
  const type = request.headers['content-type']
  return type !== undefined && type.split(';')[0]?.trim().toLowerCase() === OCTET_STREAM ? Buffer.alloc(0) : undefined
}

/** A parameter a binary body's route takes in its query string (`name`) or, for a client that cannot change its URL, in a header. */
export interface BodyParameter {
  /** The query field, e.g. `ID`. */
  query: string
  /** The header, e.g. `X-Device-Id`. */
  header: string
}

/**
 * The value of `parameter` as the route's schemas validated it (querystring
 * and headers), from the query or the header; undefined when neither gives it.
 * @throws BadRequestError (400) when both give it and they differ
 */
export function bodyParameter (request: FastifyRequest, parameter: BodyParameter): unknown {
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.[parameter.query]
  const fromHeader = request.headers[parameter.header.toLowerCase()]
  if (fromQuery !== undefined && fromHeader !== undefined && String(fromQuery) !== String(fromHeader)) {
    throw new BadRequestError(`?${parameter.query}=${String(fromQuery)} and the ${parameter.header} header (${String(fromHeader)}) disagree: give one of them`)
  }
  return fromQuery ?? fromHeader
}

/**
 * Refuses a request that gives any of `parameters` with a body that is not
 * binary: they describe a binary body, and a JSON body says the same in its
 * own fields.
 * @throws BadRequestError (400) naming the first one given
 */
export function refuseBodyParameters (request: FastifyRequest, parameters: readonly BodyParameter[], why: string): void {
  const query = request.query as Record<string, unknown> | undefined
  for (const parameter of parameters) {
    const inHeader = request.headers[parameter.header.toLowerCase()] !== undefined
    const given = query?.[parameter.query] !== undefined ? `?${parameter.query}=` : inHeader ? parameter.header : undefined
    if (given !== undefined) throw new BadRequestError(`${given} is for an ${OCTET_STREAM} body only: ${why}`)
  }
}

/** A route's `config.swaggerTransform`. */
type SwaggerTransform = (route: { schema: FastifySchema, url: string }) => { schema: FastifySchema, url: string }

/**
 * The `config.swaggerTransform` of a route taking {@link OCTET_STREAM}: its
 * document entry lists the binary body (`schema`, e.g. a `format: binary`
 * string) beside the content its body schema gives, which holds the types the
 * route validates (the bytes are taken without a schema).
 */
export function documentOctetStreamBody (schema: TSchema): SwaggerTransform {
  return ({ schema: route, url }) => {
    const body = route.body as { content?: Record<string, unknown> } | undefined
    return { schema: { ...route, body: { content: { ...body?.content, [OCTET_STREAM]: { schema } } } }, url }
  }
}

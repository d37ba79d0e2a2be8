// @ts-check
/**
 * Every call the page makes goes through `api`, openapi-fetch typed with the
 * generated client's `paths` (client/schema.d.ts): a path, parameter, body or
 * answer the server's schema does not have is a type error.
 */
import createClient from '../vendor/openapi-fetch.js'

/** @typedef {import('./types').Paths} Paths */

/** @type {typeof createClient<Paths>} */
const createPageClient = createClient

/** The client of the server that served the page. */
export const api = createPageClient({ baseUrl: '' })

/** A call that did not answer 2xx: the status and the server's message. */
export class HttpError extends Error {
  /**
   * @param {number} status 0 when the server could not be reached
   * @param {string} message
   * @param {number | undefined} [retryAfterSeconds]
   */
  constructor (status, message, retryAfterSeconds) {
    super(message)
    this.status = status
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/**
 * The answer's data, or an {@link HttpError} carrying the server's message.
 * @template {{ data?: unknown, error?: unknown, response: Response }} R
 * @param {Promise<R>} call an openapi-fetch call
 * @returns {Promise<NonNullable<R['data']>>}
 */
export async function must (call) {
  /** @type {R} */
  let result
  try {
    result = await call
  } catch {
    throw new HttpError(0, 'The server cannot be reached. Is doorsense running?')
  }
  const { response } = result
  if (response.ok) return /** @type {NonNullable<R['data']>} */ (result.data)
  const body = /** @type {{ message?: unknown } | undefined} */ (result.error)
  const message = typeof body?.message === 'string' ? body.message : `${response.status} ${response.statusText}`
  const retryAfter = Number(response.headers.get('retry-after'))
  throw new HttpError(response.status, message, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined)
}

/** @param {unknown} err */
export function errorMessage (err) {
  return err instanceof Error ? err.message : String(err)
}

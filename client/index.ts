/**
 * The typed doorsense client: every route, body and answer typed from
 * openapi.json (itself written from the routes' TypeBox schemas), calls made
 * with openapi-fetch. A body that does not match the route's schema is a
 * TypeScript error, not a 400 at run time.
 *
 * ```ts
 * const doorsense = createDoorsenseClient('http://127.0.0.1:20002', { token: process.env.DEVICE_TOKEN })
 * await doorsense.POST('/server/post/keep_alive', { body: { NAME: 'pi-kitchen', ID: 7 } })
 * const { data, error } = await doorsense.POST('/server/post/frames', { body: { ID: 7, frames: [line] } })
 * if (error) throw new Error(error.message)
 * console.log(`${data.accepted} stored`)
 * ```
 *
 * Regenerate the types after a schema change: `npm run openapi && npm run client`.
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch'
import type { components, paths } from './schema.js'

export type { components, paths }

/** A client for one doorsense server. */
export type DoorsenseClient = Client<paths>

/** How to reach the server. */
export interface DoorsenseClientOptions {
  /**
   * Bearer token sent on every call: the DEVICE_TOKEN for a Pi, the
   * ADMIN_TOKEN for admin tools (it also passes device routes). Unset = none.
   */
  token?: string | undefined
  /** Extra headers sent on every call. */
  headers?: Record<string, string>
  /** A fetch of your own (e.g. with a dispatcher); defaults to the global fetch. */
  fetch?: ClientOptions['fetch']
}

/**
 * A typed client of the doorsense server at `baseUrl`
 * (e.g. `http://127.0.0.1:20002`). Calls resolve to `{ data, error, response }`:
 * `data` for a 2xx answer, `error` (the `{statusCode, error, message}` body) otherwise;
 * a server that cannot be reached rejects the call.
 */
export function createDoorsenseClient (baseUrl: string, options: DoorsenseClientOptions = {}): DoorsenseClient {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  return createClient<paths>({ baseUrl, headers, ...(options.fetch ? { fetch: options.fetch } : {}) })
}

// @ts-check
/**
 * The admin token: asked for once, kept in sessionStorage (gone with the
 * tab; never in a URL or a cookie), sent only in the Authorization header,
 * never shown. A 401 forgets it and asks again, saying why.
 */
import { useState } from '../vendor/hooks.js'
import { errorMessage } from './api.js'

const KEY = 'doorsense.adminToken'

/** The person closed the token prompt: the action does not happen. */
export class CancelledError extends Error {
  constructor () {
    super('cancelled')
  }
}

/** @typedef {{ message: string, submit (token: string): void, cancel (): void }} TokenPrompt */
/** @typedef {{ signedIn: boolean, prompt: TokenPrompt | null }} AdminState */

class AdminSession {
  /** @type {Set<() => void>} */
  #listeners = new Set()
  /** @type {AdminState} */
  #state = { signedIn: readToken() !== null, prompt: null }

  /** @returns {AdminState} */
  get () {
    return this.#state
  }

  /** @param {() => void} listener */
  subscribe (listener) {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Forget the token (sign out, or the server refused it). */
  forget () {
    try { sessionStorage.removeItem(KEY) } catch { /* storage off: nothing was kept */ }
    this.#set({ signedIn: false })
  }

  /**
   * Shows the token prompt.
   * @param {string} message why it is asked for
   * @returns {Promise<string>} the token entered; rejects with {@link CancelledError}
   */
  ask (message) {
    this.#state.prompt?.cancel()
    return new Promise((resolve, reject) => {
      this.#set({
        prompt: {
          message,
          submit: (token) => {
            try { sessionStorage.setItem(KEY, token) } catch { /* storage off: asked again next time */ }
            this.#set({ signedIn: true, prompt: null })
            resolve(token)
          },
          cancel: () => {
            this.#set({ prompt: null })
            reject(new CancelledError())
          }
        }
      })
    })
  }

  /**
   * Runs an admin call with the token in its Authorization header, asking for
   * the token first when none is kept, and again after a 401 or 403.
   * @template R an openapi-fetch answer
   * @param {(headers: { authorization: string }) => Promise<R>} call
   * @returns {Promise<R>}
   */
  async run (call) {
    let token = readToken() ?? await this.ask('This needs the admin token.')
    for (;;) {
      const result = await call({ authorization: `Bearer ${token}` })
      const { status } = /** @type {{ response: Response }} */ (result).response
      if (status !== 401 && status !== 403) return result
      this.forget()
      token = await this.ask(status === 401
        ? 'The server did not accept that token (401 Unauthorized). Enter the admin token again.'
        : 'That token may send frames but not change anything (403 Forbidden): enter the admin token, not the device token.')
    }
  }

  /** @param {Partial<AdminState>} change */
  #set (change) {
    this.#state = { ...this.#state, ...change }
    for (const listener of this.#listeners) listener()
  }
}

function readToken () {
  try { return sessionStorage.getItem(KEY) } catch { return null }
}

export const admin = new AdminSession()

/**
 * An admin action's busy flag and problem: `act` runs one, shows its error as
 * the problem (a closed token prompt is none) and returns the action's value,
 * or undefined when it failed.
 */
export function useAdminAction () {
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState(/** @type {string | null} */ (null))
  /** @template T @param {() => Promise<T>} action @returns {Promise<T | undefined>} */
  const act = async (action) => {
    setBusy(true)
    setProblem(null)
    try {
      return await action()
    } catch (err) {
      if (!(err instanceof CancelledError)) setProblem(errorMessage(err))
      return undefined
    } finally {
      setBusy(false)
    }
  }
  return { busy, problem, setProblem, act }
}

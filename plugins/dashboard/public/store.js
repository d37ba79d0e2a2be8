// @ts-check
/** A value many components read and a few modules write, and the hook that re-renders on change. */
import { useEffect, useReducer } from '../vendor/hooks.js'

/**
 * @template T
 * @typedef {{ get (): T, subscribe (listener: () => void): () => void }} Readable
 */

/** @template T */
export class Store {
  /** @type {Set<() => void>} */
  #listeners = new Set()
  /** @type {T} */
  #value

  /** @param {T} value */
  constructor (value) {
    this.#value = value
  }

  /** @returns {T} */
  get () {
    return this.#value
  }

  /** @param {T} value */
  set (value) {
    this.#value = value
    for (const listener of this.#listeners) listener()
  }

  /** @param {() => void} listener */
  subscribe (listener) {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }
}

/**
 * The store's current value; the component re-renders whenever it changes.
 * @template T
 * @param {Readable<T>} store
 * @returns {T}
 */
export function useStore (store) {
  const [, rerender] = useReducer((/** @type {number} */ n) => n + 1, 0)
  useEffect(() => store.subscribe(() => rerender(0)), [store])
  return store.get()
}

/** The time now, ticking once a second, for "5 s ago" labels. */
export const clock = new Store(Date.now())
setInterval(() => clock.set(Date.now()), 1000)

/** What the aria-live region says last; `n` changes on every message so a repeated one is announced again. */
export const announcement = new Store({ n: 0, text: '' })

/** @param {string} text said by screen readers (politely) */
export function announce (text) {
  announcement.set({ n: announcement.get().n + 1, text })
}

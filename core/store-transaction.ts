/**
 * The transaction a keyed request's writes share with its `Idempotency-Key`
 * (core/idempotency-store.ts), whichever engine holds the stores. A store
 * method that can join one is named `…Within(tx, …)` and returns
 * {@link MaybePromise}:
 *
 * - SQLite (`client` null): the app's connection is inside a better-sqlite3
 *   transaction while the keyed write runs, which cannot span an await; so a
 *   SQLite store writes when called, throws when called, and returns a plain
 *   value. A keyed write made only of such calls is synchronous too.
 * - PostgreSQL: `client` holds an open transaction (BEGIN … COMMIT); a store
 *   runs its statements on it and returns a promise, and the key store
 *   awaits the keyed write's value before it records the answer and commits.
 *   A statement that fails rolls back the key with everything else.
 */
import type { PoolClient } from 'pg'

/** A value, or the promise of one: synchronous on SQLite, asynchronous on PostgreSQL. */
export type MaybePromise<T> = T | Promise<T>

/** The open transaction a keyed write joins (see the module comment). */
export interface StoreTransaction {
  /** PostgreSQL: the connection in BEGIN; null on SQLite, whose transaction is the app connection's own. */
  readonly client: PoolClient | null
}

/** SQLite's: the app connection's transaction is ambient. */
export const SQLITE_TRANSACTION: StoreTransaction = Object.freeze({ client: null })

/** No caller's transaction: each store call commits on its own (on SQLite, inside whatever transaction is ambient). */
export const OWN_TRANSACTION: StoreTransaction = SQLITE_TRANSACTION

/** Whether a keyed write's value is still to come (PostgreSQL) rather than ready (SQLite). */
export function isPromise<T> (value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/** `fn` of a value that may still be coming: at once on SQLite, once it comes on PostgreSQL. */
export function thenMaybe<T, U> (value: MaybePromise<T>, fn: (value: T) => U): MaybePromise<U> {
  return isPromise(value) ? value.then(fn) : fn(value)
}

/**
 * The value of a call made inside a SQLite transaction, which cannot wait:
 * @throws when it is a promise (a store on PostgreSQL handed where only SQLite's may be)
 */
export function valueNow<T> (value: MaybePromise<T>, what: string): T {
  if (isPromise(value)) throw new Error(`${what} must be synchronous here (a SQLite store inside a SQLite transaction)`)
  return value
}

/**
 * The `Idempotency-Key` records (core/idempotency.ts is the Fastify plugin
 * over them): a key, its request's fingerprint and the answer, written in the
 * same transaction as the data the request wrote
 * (core/store-transaction.ts). {@link IdempotencyKeyStore} is what the
 * plugin and the routes use; {@link IdempotencyStore} keeps the keys in the
 * app's SQLite database, `PostgresIdempotencyStore`
 * (idempotency-store-postgres.ts) in a cluster's PostgreSQL, and is handed
 * to the plugin in its place.
 */
import type { Database, Statement } from 'better-sqlite3'
import { ConflictError, IdempotencyKeyReusedError } from './errors.js'
import { IDEMPOTENCY_SCHEMA } from './idempotency-schema.js'
import type { Storage } from './storage.js'
import { isPromise, SQLITE_TRANSACTION, type MaybePromise, type StoreTransaction } from './store-transaction.js'

/** The request header, as sent (Node lowercases it in `request.headers`). */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key'

/** One keyed request: which route and device, the client's key, and a hash of what it asked. */
export interface KeyedRequest {
  /** Route and device, e.g. `POST /server/post/frames device 7`. */
  scope: string
  key: string
  /** sha256 (hex) of the request body (and whatever else the answer depends on). */
  fingerprint: string
}

/**
 * A recorded answer: its status and its JSON body, as first sent; or, when
 * `derived`, the digest the route recorded to rebuild it from (a large answer
 * the route can compute again, e.g. a batch's classification).
 */
export interface StoredAnswer {
  status: number
  body: string
  derived: boolean
}

/** How an answer is recorded: its status and its body as the route sends it (the reply's serializer, so a replay is byte for byte the first answer). */
export interface AnswerFormat {
  status?: number
  serialize?: (body: unknown) => string
}

/**
 * A keyed write: what a request stores, run in the transaction that claims
 * its key ({@link StoreTransaction}: on SQLite it must return a plain value,
 * on PostgreSQL it runs its statements on `tx.client` and may return a promise).
 */
export type KeyedWrite<T> = (tx: StoreTransaction) => MaybePromise<T>

/** What {@link IdempotencyKeyStore.once} found or did. */
export type Once<T> = { replayed: false, body: T } | { replayed: true, answer: StoredAnswer }

/** What {@link IdempotencyKeyStore.begin} found or did. */
export type Begun<P> =
  | { kind: 'replay', answer: StoredAnswer }
  /** A request with the same key is under way in this process: await, then begin again. */
  | { kind: 'wait', settled: Promise<void> }
  /** Claimed now: `write` ran and committed with the claim. */
  | { kind: 'started', resumed: false, partial: P }
  /** Claimed earlier, its writes committed, its answer never recorded (a crash, a failure after the write): do the rest again, write nothing. */
  | { kind: 'started', resumed: true, partial: P }

interface KeyRow {
  fingerprint: string
  created_at: number
  status: number | null
  answer: string | null
  partial: string | null
  derived: number
}

export interface IdempotencyStoreOptions {
  /** How long a key is remembered, ms. */
  windowMs: number
  /** Most bytes of recorded answers kept: past it the oldest answered keys go first, whatever their age (default: no bound). */
  maxBytes?: number
  /** Clock in epoch ms. */
  now?: () => number
}

/**
 * What the plugin and the routes need of a key store. `once` serves routes
 * that write and answer in one step; `begin` / `finish` / `abandon` serve a
 * route whose answer comes after an await; the rest is pruning (by age, and
 * by size) and the figures the plugin watches. Asynchronous for PostgreSQL;
 * the SQLite store does its work when called and returns settled promises.
 */
export interface IdempotencyKeyStore {
  /** How long a key is remembered, ms. */
  readonly windowMs: number
  /** Most bytes of recorded answers kept. */
  readonly maxBytes: number
  /**
   * Runs `write` at most once per key, in one transaction with the key and
   * its answer; a repeat within the window gets the recorded answer.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   */
  once<T> (request: KeyedRequest | undefined, write: KeyedWrite<T>, format?: AnswerFormat): Promise<Once<T>>
  /** Starts a keyed request whose answer comes later (see {@link Begun}). */
  begin<P> (request: KeyedRequest, write: KeyedWrite<P>): Promise<Begun<P>>
  /** Records the answer of a request `begin` started (or, given `digest`, only that). */
  finish (request: KeyedRequest, body: unknown, format?: AnswerFormat, digest?: unknown): Promise<void>
  /** Ends a request `begin` started without an answer. */
  abandon (request: KeyedRequest, nothingWritten: boolean): Promise<void>
  /** Deletes up to `limit` keys older than the window. @returns how many */
  prune (limit?: number): Promise<number>
  /** Deletes up to `limit` of the oldest answered keys while the answers take more than `maxBytes`. @returns how many */
  pruneOverSize (limit?: number): Promise<number>
  /** Whether the recorded answers take more than `maxBytes` (by {@link bytes}). */
  readonly overSize: boolean
  /**
   * Bytes the recorded answers take: SQLite's count is exact (one process
   * writes the table); on PostgreSQL it is the table's total as last
   * counted ({@link recount}, which every prune pass ends with) plus what
   * this instance recorded and pruned since, so other instances' answers
   * show at the next count.
   */
  readonly bytes: number
  /** Counts the recorded bytes again from the records. */
  recount (): Promise<void>
  /** Keys recorded (expired ones included until pruned). */
  count (): Promise<number>
}

/**
 * The key table in SQLite (`IDEMPOTENCY_SCHEMA`, idempotency-schema.ts).
 * `once` serves routes that write and answer in one synchronous step;
 * `begin` / `finish` / `abandon` serve a route whose answer comes after an
 * await (a batch classified by the model). Every method does its work when
 * called, synchronously, inside better-sqlite3's transaction where it
 * writes, and returns a settled promise: two calls never interleave.
 */
export class IdempotencyStore implements IdempotencyKeyStore {
  readonly windowMs: number
  readonly maxBytes: number
  readonly #db: Database
  readonly #now: () => number
  /** Bytes of the recorded answers (this connection's count, read once at start). */
  #bytes = 0
  /** Keyed requests under way in this process, by scope and key. */
  readonly #inFlight = new InFlight()
  readonly #select: Statement<[string, string, number], KeyRow>
  readonly #claim: Statement<[string, string, string, number, string | null, number]>
  readonly #complete: Statement<[number, string, number, number, string, string]>
  readonly #release: Statement<[string, string]>
  readonly #prune: Statement<[number, number], { bytes: number }>
  readonly #pruneOldest: Statement<[number], { bytes: number }>
  readonly #count: Statement<[], { count: number }>

  constructor (db: Database, options: IdempotencyStoreOptions) {
    this.#db = db
    this.windowMs = options.windowMs
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    this.#now = options.now ?? Date.now
    this.#recount()
    this.#select = db.prepare('SELECT fingerprint, created_at, status, answer, partial, derived FROM idempotency_keys ' +
      'WHERE scope = ? AND key = ? AND created_at > ?')
    // an expired row is taken over in place: one statement, so two claimants cannot both win
    this.#claim = db.prepare(`INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, partial) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = excluded.created_at,` +
      ` status = NULL, answer = NULL, bytes = 0, derived = 0, partial = excluded.partial
      WHERE idempotency_keys.created_at <= ?`)
    this.#complete = db.prepare('UPDATE idempotency_keys SET status = ?, answer = ?, bytes = ?, derived = ?, partial = NULL WHERE scope = ? AND key = ?')
    this.#release = db.prepare('DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND answer IS NULL')
    this.#prune = db.prepare('DELETE FROM idempotency_keys ' +
      'WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at <= ? ORDER BY created_at LIMIT ?) RETURNING bytes')
    // a request under way (no answer yet) is never cut short: its retry would write again
    this.#pruneOldest = db.prepare('DELETE FROM idempotency_keys ' +
      'WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE answer IS NOT NULL ORDER BY created_at LIMIT ?) RETURNING bytes')
    this.#count = db.prepare('SELECT COUNT(*) AS count FROM idempotency_keys')
  }

  /**
   * Runs `write` at most once per key: in one transaction with the key and
   * its answer (the value `write` returns, as `format` says). A repeat within the
   * window gets the recorded answer and writes nothing. Without a key it just
   * runs `write`. A `write` that throws records nothing: the same key may be
   * sent again. `write` is given {@link SQLITE_TRANSACTION} and must return a
   * plain value when keyed: a better-sqlite3 transaction cannot span an await.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   * @throws Error when a keyed `write` returns a promise (nothing is recorded)
   */
  async once<T> (request: KeyedRequest | undefined, write: KeyedWrite<T>, format: AnswerFormat = {}): Promise<Once<T>> {
    // everything up to the transaction's end runs in this call, before the first await: no other request interleaves
    if (!request) return { replayed: false, body: await write(SQLITE_TRANSACTION) }
    const found = this.#found(request)
    if (found) return { replayed: true, answer: found }
    return this.#db.transaction((): Once<T> => {
      this.#claimOrThrow(request, null)
      const body = synchronous(write(SQLITE_TRANSACTION))
      this.#record(request, format.status ?? 200, (format.serialize ?? JSON.stringify)(body), false)
      return { replayed: false, body }
    })()
  }

  /**
   * Starts a keyed request whose answer comes later: claims the key and runs
   * `write` in one transaction, storing what it returns (JSON) as the partial
   * result a resumed request gets back. Call {@link finish} with the answer or
   * {@link abandon} on failure. `write` must return a plain value, as in {@link once}.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   */
  async begin<P> (request: KeyedRequest, write: KeyedWrite<P>): Promise<Begun<P>> {
    const id = idOf(request)
    const inFlight = this.#inFlight.get(id)
    const row = this.#select.get(request.scope, request.key, this.#now() - this.windowMs)
    if (row) {
      this.#checkFingerprint(request, row)
      if (row.status !== null && row.answer !== null) return { kind: 'replay', answer: { status: row.status, body: row.answer, derived: row.derived === 1 } }
      if (inFlight) return { kind: 'wait', settled: inFlight }
      this.#inFlight.track(id)
      return { kind: 'started', resumed: true, partial: JSON.parse(row.partial ?? 'null') as P }
    }
    if (inFlight) return { kind: 'wait', settled: inFlight }
    const partial = this.#db.transaction(() => {
      const value = synchronous(write(SQLITE_TRANSACTION))
      this.#claimOrThrow(request, JSON.stringify(value ?? null))
      return value
    })()
    this.#inFlight.track(id)
    return { kind: 'started', resumed: false, partial }
  }

  /**
   * Records the answer of a request {@link begin} started: `body` as `format`
   * serializes it, or, given `digest`, only that (JSON): a replay then gets
   * the digest (`derived`) and the route rebuilds the answer from it. What a
   * large answer can be computed again from needs no keeping verbatim.
   */
  async finish (request: KeyedRequest, body: unknown, format: AnswerFormat = {}, digest?: unknown): Promise<void> {
    try {
      if (digest !== undefined) this.#record(request, format.status ?? 200, JSON.stringify(digest), true)
      else this.#record(request, format.status ?? 200, (format.serialize ?? JSON.stringify)(body), false)
    } finally {
      this.#inFlight.untrack(idOf(request))
    }
  }

  /**
   * Ends a request {@link begin} started without an answer. `nothingWritten`:
   * forget the key, so a retry starts afresh; otherwise a retry resumes
   * without writing again.
   */
  async abandon (request: KeyedRequest, nothingWritten: boolean): Promise<void> {
    try {
      if (nothingWritten) this.#release.run(request.scope, request.key)
    } finally {
      this.#inFlight.untrack(idOf(request))
    }
  }

  /**
   * Deletes up to `limit` keys older than the window, oldest first.
   * @returns how many
   */
  async prune (limit = 1000): Promise<number> {
    return this.#forget(this.#prune.all(this.#now() - this.windowMs, limit))
  }

  /**
   * Deletes up to `limit` of the oldest answered keys while the recorded
   * answers take more than `maxBytes`, down to 90 % of it (room for the next ones).
   * @returns how many
   */
  async pruneOverSize (limit = 1000): Promise<number> {
    if (this.#bytes <= this.maxBytes) return 0
    let deleted = 0
    while (this.#bytes > OVER_SIZE_TARGET * this.maxBytes && deleted < limit) {
      // a few at a time: rows run from bytes to a megabyte, and only the excess goes
      const step = this.#forget(this.#pruneOldest.all(Math.min(OVER_SIZE_STEP, limit - deleted)))
      if (step === 0) break
      deleted += step
    }
    return deleted
  }

  /** Whether the recorded answers take more than `maxBytes`. */
  get overSize (): boolean {
    return this.#bytes > this.maxBytes
  }

  /** Bytes the recorded answers take (as this process counted them). */
  get bytes (): number {
    return this.#bytes
  }

  /** Counts the recorded bytes again from the table (a key taken over after its window is not subtracted when it is). */
  async recount (): Promise<void> {
    this.#recount()
  }

  /** Keys recorded (expired ones included until pruned). */
  async count (): Promise<number> {
    return this.#count.get()?.count ?? 0
  }

  #recount (): void {
    this.#bytes = (this.#db.prepare('SELECT COALESCE(SUM(bytes), 0) AS bytes FROM idempotency_keys').get() as { bytes: number }).bytes
  }

  #record (request: KeyedRequest, status: number, answer: string, derived: boolean): void {
    const bytes = rowBytes(request, answer)
    if (this.#complete.run(status, answer, bytes, derived ? 1 : 0, request.scope, request.key).changes === 1) this.#bytes += bytes
  }

  #forget (deleted: ReadonlyArray<{ bytes: number }>): number {
    for (const row of deleted) this.#bytes -= row.bytes
    if (this.#bytes < 0) this.#bytes = 0
    return deleted.length
  }

  /** The recorded answer for `request`, if any; throws on a fingerprint mismatch or a request still under way. */
  #found (request: KeyedRequest): StoredAnswer | undefined {
    const row = this.#select.get(request.scope, request.key, this.#now() - this.windowMs)
    if (!row) return undefined
    this.#checkFingerprint(request, row)
    if (row.status === null || row.answer === null) throw underWayError(request)
    return { status: row.status, body: row.answer, derived: row.derived === 1 }
  }

  /** Claims the key inside the caller's transaction; another writer's live claim (another process) throws. */
  #claimOrThrow (request: KeyedRequest, partial: string | null): void {
    const now = this.#now()
    if (this.#claim.run(request.scope, request.key, request.fingerprint, now, partial, now - this.windowMs).changes === 1) return
    // claimed by another connection between our look and our write: its answer (or a 409) stands
    const row = this.#select.get(request.scope, request.key, now - this.windowMs)
    if (row) this.#checkFingerprint(request, row)
    throw justTakenError(request)
  }

  #checkFingerprint (request: KeyedRequest, row: KeyRow): void {
    checkFingerprint(request, row.fingerprint, row.created_at, this.#now())
  }
}

/**
 * The keyed requests under way in this process, by scope and key: a repeat
 * that arrives meanwhile awaits the first's end ({@link Begun} `wait`).
 */
export class InFlight {
  readonly #settled = new Map<string, Promise<void>>()
  readonly #settle = new Map<string, () => void>()

  /** The promise that settles when the request `id` ends, if it is under way here. */
  get (id: string): Promise<void> | undefined {
    return this.#settled.get(id)
  }

  track (id: string): void {
    let settle: () => void = () => {}
    this.#settled.set(id, new Promise<void>((resolve) => { settle = resolve }))
    this.#settle.set(id, settle)
  }

  untrack (id: string): void {
    this.#settle.get(id)?.()
    this.#settle.delete(id)
    this.#settled.delete(id)
  }
}

/** A key row besides its answer, scope and key: the fingerprint (64 hex), the numbers, SQLite's own. */
const ROW_OVERHEAD_BYTES = 96
/** An over-size prune deletes down to this share of `maxBytes`, room for the next answers. */
export const OVER_SIZE_TARGET = 0.9
/** Rows an over-size prune deletes per statement: they run from bytes to a megabyte, and only the excess goes. */
export const OVER_SIZE_STEP = 10

/** What a key's row is counted as: the answer, and the key, scope and fingerprint beside it. */
export function rowBytes (request: KeyedRequest, answer: string): number {
  return Buffer.byteLength(answer) + request.scope.length + request.key.length + ROW_OVERHEAD_BYTES
}

/** Where {@link InFlight} files a request. */
export function idOf (request: KeyedRequest): string {
  return `${request.scope}\n${request.key}`
}

/** The key as an error message quotes it (it is visible ASCII once checked; cut to stay short). */
export function quoteKey (key: string): string {
  return JSON.stringify(key.length > 48 ? `${key.slice(0, 48)}…` : key)
}

/**
 * @throws IdempotencyKeyReusedError (422) when the row recorded at `createdAt` (epoch ms) has another fingerprint than `request`
 */
export function checkFingerprint (request: KeyedRequest, fingerprint: string, createdAt: number, now: number): void {
  if (fingerprint === request.fingerprint) return
  const ago = Math.max(0, Math.round((now - createdAt) / 1000))
  throw new IdempotencyKeyReusedError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} was used ${ago} s ago ` +
    `for a different request on ${request.scope}: a key names one request, so send a new key with a new request`)
}

/** 409: the key's request has no answer yet (it is still being written, here or by another process). */
export function underWayError (request: KeyedRequest): Error {
  return new ConflictError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} belongs to a request still under way on ${request.scope}: ` +
    'wait for its answer, or send the request again shortly')
}

/** 409: another writer claimed the key between our look and our claim. */
export function justTakenError (request: KeyedRequest): Error {
  return new ConflictError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} was just taken by another request on ${request.scope}: ` +
    'send the request again to get its answer')
}

/**
 * A keyed write's value on SQLite, where it must be ready: the transaction
 * that holds the key cannot span an await.
 * @throws Error when it is a promise (its rejection, if any, is left handled)
 */
function synchronous<T> (value: MaybePromise<T>): T {
  if (!isPromise(value)) return value
  value.then(undefined, () => {})
  throw new Error('a SQLite keyed write must be synchronous: it runs inside a better-sqlite3 transaction, which cannot span an await ' +
    '(a SQLite store returns plain values; a promise here means a PostgreSQL store was called with a SQLite transaction)')
}

/** The SQLite key store over the app's database, its table migrated first ({@link IDEMPOTENCY_SCHEMA}). */
export function sqliteIdempotencyStore (storage: Pick<Storage, 'db' | 'migrate'>, options: IdempotencyStoreOptions): IdempotencyStore {
  storage.migrate(IDEMPOTENCY_SCHEMA)
  return new IdempotencyStore(storage.db, options)
}

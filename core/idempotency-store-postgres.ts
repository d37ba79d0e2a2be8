/**
 * The `Idempotency-Key` records in PostgreSQL (`DATABASE_URL`): the same
 * {@link IdempotencyKeyStore} as the SQLite `IdempotencyStore`
 * (idempotency-store.ts), over `idempotency_keys` of
 * `IDEMPOTENCY_PG_SCHEMA` (idempotency-schema.ts; the columns of SQLite's
 * `IDEMPOTENCY_SCHEMA`, plus a lease), which every instance of a cluster
 * shares: a key retried on another instance replays, or is a 422 with
 * another body, exactly as in one process.
 *
 * A keyed write runs in one transaction on one connection
 * (core/store-transaction.ts): BEGIN, the key claimed, `write({ client })`
 * awaited, the answer recorded, COMMIT; any failure rolls back everything,
 * the key included. The claim is one INSERT … ON CONFLICT DO UPDATE that
 * takes over only an expired row, so of two instances claiming a key at
 * once one inserts and the other waits on its row lock until it commits or
 * rolls back, then finds its answer (or claims the key itself).
 *
 * A request whose answer comes later (`begin`) commits its claim first and
 * its answer later (`finish`); while it is under way its row carries a
 * lease (`lease_until`, {@link PostgresIdempotencyStoreOptions.leaseMs}).
 * A repeat in the same process waits for it, as on SQLite; a repeat on
 * another instance gets a 409 "under way elsewhere, send it again" with a
 * Retry-After rather than resuming it a second time (classifying the batch
 * twice while its first attempt still runs, the load a retry storm
 * doubles). Once the lease lapses (the instance died before answering) or
 * the attempt is abandoned after it wrote, any instance resumes it, writing
 * nothing, as SQLite's store resumes a row with no answer after a restart;
 * unlike SQLite, an instance restarted within the lease answers 409 too
 * until it lapses. Resuming is a conditional UPDATE, so only one instance resumes.
 * Times (`created_at`, the window, the lease) are the instances' own clocks,
 * as on SQLite: hosts whose clocks disagree shift a key's expiry and a
 * lease by as much (NTP keeps that to milliseconds).
 *
 * A keyed write holds one pooled connection from BEGIN to COMMIT, and so
 * does a repeat waiting on its row lock; a write must run its statements on
 * `tx.client`, never on the pool, or a full pool could wait on itself.
 *
 * While a route's own stores still write to SQLite (samples, frames,
 * captures: the keyed write ignores `tx.client`), its data commits when it is
 * written and the key when the PostgreSQL transaction commits: a commit that
 * fails in between leaves data without its key, which a retry stores again.
 * Each store closes that gap as it moves to PostgreSQL and writes on
 * `tx.client`.
 */
import type { PoolClient, QueryResult, QueryResultRow } from 'pg'
import { ConflictError } from './errors.js'
import { IDEMPOTENCY_PG_SCHEMA } from './idempotency-schema.js'
import {
  checkFingerprint, idOf, IDEMPOTENCY_KEY_HEADER, InFlight, justTakenError, OVER_SIZE_STEP, OVER_SIZE_TARGET, quoteKey, rowBytes, underWayError,
  type AnswerFormat, type Begun, type IdempotencyKeyStore, type IdempotencyStoreOptions, type KeyedRequest, type KeyedWrite, type Once,
  type StoredAnswer
} from './idempotency-store.js'
import type { Postgres } from './postgres.js'

export interface PostgresIdempotencyStoreOptions extends IdempotencyStoreOptions {
  /**
   * How long a request `begin` claimed (or resumed) is presumed under way by
   * its instance, ms: meanwhile a repeat on another instance is a 409, after
   * it any instance may resume it (default {@link DEFAULT_LEASE_MS}).
   */
  leaseMs?: number
}

/** A begun request's lease: far above a batch's classification (well under a second), short enough that a dead instance's request is resumed soon. */
export const DEFAULT_LEASE_MS = 30_000

/**
 * The key of the advisory lock an over-size prune holds: the bytes of
 * 'doorsidk' as a 64-bit integer (core/postgres.ts's migrations hold
 * 'doorsens'), so that of several instances past the bound one deletes and
 * the others, once it is done, count what is left.
 */
export const PRUNE_LOCK_KEY = 0x646f6f727369646bn

/** Seconds a 409 "under way on another instance" tells the client to wait (Retry-After). */
const UNDER_WAY_RETRY_AFTER_S = 1

/** A row as pg returns it: bigint columns as strings. */
interface PgKeyRow {
  fingerprint: string
  created_at: string
  status: number | null
  answer: string | null
  partial: string | null
  derived: boolean
  lease_until: string | null
}

/** What a statement runs on: the pool (a statement of its own) or a transaction's client. */
interface Queryable {
  query<R extends QueryResultRow = QueryResultRow> (text: string, values?: unknown[]): Promise<QueryResult<R>>
}

const SELECT = 'SELECT fingerprint, created_at, status, answer, partial, derived, lease_until FROM idempotency_keys ' +
  'WHERE scope = $1 AND key = $2 AND created_at > $3'
// an expired row is taken over in place; a live one, committed or still being claimed, is not: one statement, so
// two claimants cannot both win (the second waits on the first's row lock, then finds its row live)
const CLAIM = `INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, lease_until) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = excluded.created_at,
  status = NULL, answer = NULL, partial = NULL, bytes = 0, derived = false, lease_until = excluded.lease_until
  WHERE idempotency_keys.created_at <= $6`
const SET_PARTIAL = 'UPDATE idempotency_keys SET partial = $3 WHERE scope = $1 AND key = $2'
// the first answer stands: a request resumed elsewhere after its lease lapsed, finishing second, records nothing
const COMPLETE = `UPDATE idempotency_keys SET status = $4, answer = $5, bytes = $6, derived = $7, partial = NULL, lease_until = NULL
  WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND answer IS NULL`
// only one instance resumes an unanswered request: the first whose update finds its lease lapsed (or released)
const RESUME = `UPDATE idempotency_keys SET lease_until = $4
  WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND answer IS NULL AND created_at > $5 AND (lease_until IS NULL OR lease_until <= $6)
  RETURNING partial`
const RELEASE = 'DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND answer IS NULL'
const UNLEASE = 'UPDATE idempotency_keys SET lease_until = NULL WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND answer IS NULL'
// SKIP LOCKED: a row being taken over (or deleted by another instance's prune) is left to that transaction
const PRUNE = `DELETE FROM idempotency_keys WHERE (scope, key) IN (
  SELECT scope, key FROM idempotency_keys WHERE created_at <= $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED
) RETURNING bytes`
// a request under way (no answer yet) is never cut short: its retry would write again
const PRUNE_OLDEST = `DELETE FROM idempotency_keys WHERE (scope, key) IN (
  SELECT scope, key FROM idempotency_keys WHERE answer IS NOT NULL ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED
) RETURNING bytes`
const SUM_BYTES = 'SELECT COALESCE(SUM(bytes), 0) AS bytes FROM idempotency_keys'

/** The key store of a cluster, in PostgreSQL (see the module comment). */
export class PostgresIdempotencyStore implements IdempotencyKeyStore {
  readonly windowMs: number
  readonly maxBytes: number
  readonly #pg: Postgres
  readonly #now: () => number
  readonly #leaseMs: number
  /** The table's bytes as last counted, plus what this instance recorded and pruned since. */
  #bytes = 0
  /** Keyed requests under way in this process (claiming included), by scope and key. */
  readonly #inFlight = new InFlight()

  private constructor (pg: Postgres, options: PostgresIdempotencyStoreOptions) {
    this.#pg = pg
    this.windowMs = options.windowMs
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    this.#now = options.now ?? Date.now
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
  }

  /** Migrates the table ({@link IDEMPOTENCY_PG_SCHEMA}) on `pg` and counts its bytes. */
  static async open (pg: Postgres, options: PostgresIdempotencyStoreOptions): Promise<PostgresIdempotencyStore> {
    await pg.migrate(IDEMPOTENCY_PG_SCHEMA)
    const store = new PostgresIdempotencyStore(pg, options)
    await store.recount()
    return store
  }

  /**
   * Runs `write` at most once per key, in one transaction with the key and
   * its answer; a repeat within the window, on any instance, gets the
   * recorded answer and writes nothing. A repeat while the first is being
   * written waits for it (on its row lock) and replays it. Without a key,
   * `write` still gets a transaction of its own.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   */
  async once<T> (request: KeyedRequest | undefined, write: KeyedWrite<T>, format: AnswerFormat = {}): Promise<Once<T>> {
    if (!request) return { replayed: false, body: await this.#pg.transaction(async (client) => write({ client })) }
    const now = this.#now()
    const found = await this.#select(this.#pg, request, now)
    if (found) return { replayed: true, answer: answerOf(request, found, now) }
    let recorded = 0
    const outcome = await this.#pg.transaction(async (client): Promise<Once<T>> => {
      if (!await this.#claim(client, request, now, null)) {
        // another transaction held the key: it committed (we waited on its row lock), its answer stands
        const row = await this.#select(client, request, now)
        if (!row) throw justTakenError(request)
        return { replayed: true, answer: answerOf(request, row, now) }
      }
      const body = await write({ client })
      recorded = await this.#complete(client, request, format.status ?? 200, (format.serialize ?? JSON.stringify)(body), false)
      return { replayed: false, body }
    })
    this.#bytes += recorded
    return outcome
  }

  /**
   * Starts a keyed request whose answer comes later: claims the key, with a
   * lease, and runs `write` in one transaction, storing what it returns
   * (JSON) as the partial result a resumed request gets back. Call
   * {@link finish} with the answer or {@link abandon} on failure.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   * @throws ConflictError (409, Retry-After) while the request is under way on another instance
   */
  async begin<P> (request: KeyedRequest, write: KeyedWrite<P>): Promise<Begun<P>> {
    const id = idOf(request)
    const inFlight = this.#inFlight.get(id)
    if (inFlight) {
      // under way in this process: only another request under the key, or the answer recorded meanwhile, says more than "wait"
      const now = this.#now()
      const row = await this.#select(this.#pg, request, now)
      if (row) {
        checkFingerprint(request, row.fingerprint, Number(row.created_at), now)
        if (row.status !== null && row.answer !== null) return { kind: 'replay', answer: storedAnswer(row) }
      }
      return { kind: 'wait', settled: inFlight }
    }
    // tracked before the first await: a repeat arriving while this one claims waits for it here, holding no connection
    this.#inFlight.track(id)
    try {
      const begun = await this.#begin(request, write)
      if (begun.kind !== 'started') this.#inFlight.untrack(id)
      return begun
    } catch (err) {
      this.#inFlight.untrack(id)
      throw err
    }
  }

  /**
   * Records the answer of a request {@link begin} started: `body` as `format`
   * serializes it, or, given `digest`, only that (JSON, `derived`). The
   * first answer recorded stands.
   */
  async finish (request: KeyedRequest, body: unknown, format: AnswerFormat = {}, digest?: unknown): Promise<void> {
    try {
      const status = format.status ?? 200
      this.#bytes += digest !== undefined
        ? await this.#complete(this.#pg, request, status, JSON.stringify(digest), true)
        : await this.#complete(this.#pg, request, status, (format.serialize ?? JSON.stringify)(body), false)
    } finally {
      this.#inFlight.untrack(idOf(request))
    }
  }

  /**
   * Ends a request {@link begin} started without an answer. `nothingWritten`:
   * forget the key, so a retry starts afresh; otherwise release its lease,
   * so a retry on any instance resumes it at once without writing again.
   */
  async abandon (request: KeyedRequest, nothingWritten: boolean): Promise<void> {
    try {
      await this.#pg.query(nothingWritten ? RELEASE : UNLEASE, [request.scope, request.key, request.fingerprint])
    } finally {
      this.#inFlight.untrack(idOf(request))
    }
  }

  /**
   * Deletes up to `limit` keys older than the window, oldest first (rows
   * another instance is deleting or taking over meanwhile are skipped).
   * @returns how many
   */
  async prune (limit = 1000): Promise<number> {
    const { rows } = await this.#pg.query<{ bytes: string }>(PRUNE, [this.#now() - this.windowMs, limit])
    return this.#forget(rows)
  }

  /**
   * Deletes up to `limit` of the oldest answered keys while the recorded
   * answers take more than `maxBytes`, down to 90 % of it. Only when this
   * instance's figure ({@link bytes}) says so; then, under an advisory lock
   * that one instance holds at a time, the table's bytes are counted again
   * and only the excess goes, whichever instance deleted some already.
   * @returns how many
   */
  async pruneOverSize (limit = 1000): Promise<number> {
    if (this.#bytes <= this.maxBytes) return 0
    let total = 0
    const deleted = await this.#pg.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [PRUNE_LOCK_KEY.toString()])
      total = await sumBytes(client)
      if (total <= this.maxBytes) return 0
      let count = 0
      while (total > OVER_SIZE_TARGET * this.maxBytes && count < limit) {
        const { rows } = await client.query<{ bytes: string }>(PRUNE_OLDEST, [Math.min(OVER_SIZE_STEP, limit - count)])
        if (rows.length === 0) break
        for (const row of rows) total -= Number(row.bytes)
        count += rows.length
      }
      return count
    })
    this.#bytes = Math.max(0, total)
    return deleted
  }

  /** Whether the recorded answers take more than `maxBytes`, by {@link bytes}. */
  get overSize (): boolean {
    return this.#bytes > this.maxBytes
  }

  /**
   * Bytes the recorded answers take: the table's total as last counted
   * ({@link recount}, which ends every prune pass, a minute apart at most;
   * and an over-size prune), plus what this instance recorded and pruned
   * since. Other instances' answers show at the next count.
   */
  get bytes (): number {
    return this.#bytes
  }

  /** Counts the recorded bytes of every instance again from the table. */
  async recount (): Promise<void> {
    this.#bytes = await sumBytes(this.#pg)
  }

  /** Keys recorded, by every instance (expired ones included until pruned). */
  async count (): Promise<number> {
    const { rows } = await this.#pg.query<{ count: string }>('SELECT COUNT(*) AS count FROM idempotency_keys')
    return Number(rows[0].count)
  }

  async #begin<P> (request: KeyedRequest, write: KeyedWrite<P>): Promise<Begun<P>> {
    const now = this.#now()
    const row = await this.#select(this.#pg, request, now)
    if (row) return this.#replayOrResume(this.#pg, request, row, now)
    return this.#pg.transaction(async (client): Promise<Begun<P>> => {
      if (!await this.#claim(client, request, now, now + this.#leaseMs)) {
        // another instance claimed it first and committed (we waited on its row lock): its answer, or its lease
        const claimed = await this.#select(client, request, now)
        if (!claimed) throw justTakenError(request)
        return this.#replayOrResume(client, request, claimed, now)
      }
      const partial = await write({ client })
      await client.query(SET_PARTIAL, [request.scope, request.key, JSON.stringify(partial ?? null)])
      return { kind: 'started', resumed: false, partial }
    })
  }

  /** A live row `begin` found: its answer; a 409 while another instance's lease runs; else resumed here (if no other instance resumed it first). */
  async #replayOrResume<P> (db: Queryable, request: KeyedRequest, row: PgKeyRow, now: number): Promise<Begun<P>> {
    checkFingerprint(request, row.fingerprint, Number(row.created_at), now)
    if (row.status !== null && row.answer !== null) return { kind: 'replay', answer: storedAnswer(row) }
    if (row.lease_until !== null && Number(row.lease_until) > now) throw underWayElsewhereError(request)
    const { rows } = await db.query<{ partial: string | null }>(RESUME,
      [request.scope, request.key, request.fingerprint, now + this.#leaseMs, now - this.windowMs, now])
    if (rows.length === 0) throw justTakenError(request)
    return { kind: 'started', resumed: true, partial: JSON.parse(rows[0].partial ?? 'null') as P }
  }

  async #select (db: Queryable, request: KeyedRequest, now: number): Promise<PgKeyRow | undefined> {
    const { rows } = await db.query<PgKeyRow>(SELECT, [request.scope, request.key, now - this.windowMs])
    return rows[0]
  }

  /** Claims the key in the caller's transaction. @returns whether it was claimed (false: a live row holds it) */
  async #claim (client: PoolClient, request: KeyedRequest, now: number, leaseUntil: number | null): Promise<boolean> {
    const claimed = await client.query(CLAIM, [request.scope, request.key, request.fingerprint, now, leaseUntil, now - this.windowMs])
    return claimed.rowCount === 1
  }

  /** Records an answer. @returns the bytes it counts for, or 0 when the row already had one (or is gone) */
  async #complete (db: Queryable, request: KeyedRequest, status: number, answer: string, derived: boolean): Promise<number> {
    const bytes = rowBytes(request, answer)
    const done = await db.query(COMPLETE, [request.scope, request.key, request.fingerprint, status, answer, bytes, derived])
    return done.rowCount === 1 ? bytes : 0
  }

  #forget (deleted: ReadonlyArray<{ bytes: string }>): number {
    for (const row of deleted) this.#bytes -= Number(row.bytes)
    if (this.#bytes < 0) this.#bytes = 0
    return deleted.length
  }
}

/** The answer of a row that has one. */
function storedAnswer (row: PgKeyRow): StoredAnswer {
  return { status: row.status ?? 200, body: row.answer ?? 'null', derived: row.derived }
}

/** The recorded answer of a live row `once` found; throws on a fingerprint mismatch or a request still under way. */
function answerOf (request: KeyedRequest, row: PgKeyRow, now: number): StoredAnswer {
  checkFingerprint(request, row.fingerprint, Number(row.created_at), now)
  if (row.status === null || row.answer === null) throw underWayError(request)
  return storedAnswer(row)
}

async function sumBytes (db: Queryable): Promise<number> {
  const { rows } = await db.query<{ bytes: string }>(SUM_BYTES)
  return Number(rows[0].bytes)
}

/** 409 with Retry-After: the key's request was claimed by another instance, which is still working on it. */
function underWayElsewhereError (request: KeyedRequest): Error {
  const err = new ConflictError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} belongs to a request still under way on another instance ` +
    `(${request.scope}): send the request again in a moment to get its answer`)
  return Object.assign(err, { retryAfterSeconds: UNDER_WAY_RETRY_AFTER_S })
}

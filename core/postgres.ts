import pg, { Pool, type PoolClient, type QueryResult, type QueryResultRow } from 'pg'

/**
 * An area's PostgreSQL tables: its name and its migrations in order
 * (migration i, 0-based, is version i + 1), SQL text only. Declared as
 * `<AREA>_PG_SCHEMA` in the same `<area>-schema.ts` as the area's SQLite
 * {@link AreaSchema}; the same rules hold: the name never changes, and a
 * released migration is never edited, only followed.
 */
export interface PgAreaSchema {
  readonly area: string
  readonly migrations: readonly string[]
}

/** Hears a channel's notifications ({@link Postgres.listen}). */
export interface ChannelListener {
  /** A `NOTIFY` on the channel, with its payload ('' without one). */
  notified (payload: string): void
  /** The listening connection broke and is back: notifications sent meanwhile were missed. */
  reconnected?: () => void
}

/** How {@link Postgres.open} connects. */
export interface PostgresOptions {
  /** Most connections the pool holds (default 10, pg's own). */
  max?: number
  /** Shown in pg_stat_activity, so an operator can tell doorsense's connections (and which instance's) apart. */
  applicationName?: string
  /** Longest a new connection may take before it fails, in ms (default 10,000; pg's own default waits forever). */
  connectTimeoutMs?: number
  /** Hears of an idle connection that broke (the server restarted, a network cut); the pool replaces it on next use. */
  onError?: (err: Error) => void
}

/**
 * The key of the advisory lock migrations hold: the bytes of 'doorsens' as a
 * 64-bit integer, fixed forever, so every doorsense instance on a database
 * takes the same lock and nothing else is likely to.
 */
export const MIGRATION_LOCK_KEY = 0x646f6f7273656e73n

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

/**
 * A pool of connections to one PostgreSQL database, the cluster's shared
 * storage (`DATABASE_URL`). Core knows no tables here either: each area
 * brings its {@link PgAreaSchema}, and the store that opens the area on a
 * Postgres migrates it first ({@link Postgres.migrate}).
 */
export class Postgres {
  readonly #pool: Pool
  /** Where it connects, for messages: host:port and database, never the password. */
  readonly where: string
  readonly #url: string
  readonly #closing = new AbortController()
  #closed = false
  /** LISTEN's own connection (a pooled one would hold a slot, and the pool's end waits for it), opened by the first {@link listen}. */
  #listener: pg.Client | undefined
  #listening: Promise<void> | undefined
  readonly #channels = new Map<string, Set<ChannelListener>>()

  private constructor (pool: Pool, where: string, url: string) {
    this.#pool = pool
    this.where = where
    this.#url = url
  }

  /** The URL it was opened on, password included: for a training run's worker thread, which opens its own connection. Never log it. */
  get connectionString (): string {
    return this.#url
  }

  /**
   * Opens a pool on `url` (postgres://user:password@host:port/database) and
   * makes one connection, so that a wrong address fails here rather than on
   * the first request.
   * @throws an Error naming host, port and database (never the password) when it cannot connect
   */
  static async open (url: string, options: PostgresOptions = {}): Promise<Postgres> {
    const target = describeUrl(url)
    const pool = new Pool({
      connectionString: url,
      max: options.max,
      application_name: options.applicationName,
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    })
    // without a listener an idle connection that breaks would crash the process
    pool.on('error', options.onError ?? (() => {}))
    try {
      const client = await pool.connect()
      client.release()
    } catch (err) {
      await pool.end().catch(() => {})
      // the cause is kept for its code, but the message is rebuilt: pg's own may quote the connection string
      throw new Error(`could not connect to PostgreSQL ${target.where}${target.user}: ${scrub(reasonOf(err), target.passwords)}`,
        { cause: scrubbedCause(err, target.passwords) })
    }
    return new Postgres(pool, target.where, url)
  }

  /** Whether {@link close} was called: no query is taken after that. */
  get closed (): boolean {
    return this.#closed
  }

  /** Aborted when {@link close} is called: a store waiting to try a write again stops waiting. */
  get signal (): AbortSignal {
    return this.#closing.signal
  }

  /** Runs one statement on a connection of the pool (its own transaction). */
  async query<R extends QueryResultRow = QueryResultRow> (text: string, values?: unknown[]): Promise<QueryResult<R>> {
    return this.#pool.query<R>(text, values)
  }

  /**
   * Runs `fn` inside one transaction on one connection: committed when `fn`
   * resolves, rolled back when it throws (and the error rethrown).
   */
  async transaction<T> (fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      try {
        await client.query('ROLLBACK')
      } catch (rollbackErr) {
        // a connection that cannot even roll back is dropped from the pool rather than reused mid-transaction
        broken = rollbackErr as Error
      }
      throw err
    } finally {
      client.release(broken)
    }
  }

  /**
   * Applies the migrations of `schema` the database has not recorded yet, in
   * order, all in one transaction that holds the doorsense advisory lock
   * ({@link MIGRATION_LOCK_KEY}): of many instances starting at once, one
   * applies them and the others wait, then find them applied. A migration
   * that fails rolls back every one of this call.
   * @returns the versions applied now (none: the database was up to date)
   * @throws when the database records a newer version of the area than this build knows (a downgrade)
   */
  async migrate (schema: PgAreaSchema): Promise<number[]> {
    const { area, migrations } = schema
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY.toString()])
      // under the lock: CREATE ... IF NOT EXISTS is not safe against a concurrent one
      await client.query(`CREATE TABLE IF NOT EXISTS doorsense_migrations (
        area text NOT NULL,
        version integer NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (area, version)
      )`)
      const current = await versionOf(client, area)
      if (current > migrations.length) {
        throw new Error(`database ${this.where} has ${area} schema version ${current}, this build knows only ${migrations.length}: ` +
          'refusing to run an older build on a newer database')
      }
      const applied: number[] = []
      for (let version = current + 1; version <= migrations.length; version++) {
        await client.query(migrations[version - 1])
        await client.query('INSERT INTO doorsense_migrations (area, version) VALUES ($1, $2)', [area, version])
        applied.push(version)
      }
      return applied
    })
  }

  /** The highest migration version recorded for `area` (0 = none, or no migration ever ran here). */
  async version (area: string): Promise<number> {
    const table = await this.query<{ exists: boolean }>("SELECT to_regclass('doorsense_migrations') IS NOT NULL AS exists")
    if (!table.rows[0].exists) return 0
    return versionOf(this.#pool, area)
  }

  /**
   * Hears `NOTIFY channel` from every connection to the database, this
   * process's included, on one connection of its own. When that connection
   * breaks, it reconnects (every second until it can) and calls each
   * listener's `reconnected`, since what was notified meanwhile is lost: the
   * listener reads again what it keeps.
   * @returns a function that stops this listener
   */
  async listen (channel: string, listener: ChannelListener): Promise<() => void> {
    let listeners = this.#channels.get(channel)
    if (!listeners) {
      listeners = new Set()
      this.#channels.set(channel, listeners)
      await this.#connectListener()
      await this.#listener?.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
    }
    listeners.add(listener)
    return () => { listeners.delete(listener) }
  }

  async #connectListener (): Promise<void> {
    if (this.#listener) return
    this.#listening ??= (async () => {
      const client = new pg.Client({ connectionString: this.#url, application_name: 'doorsense listen' })
      client.on('notification', ({ channel, payload }) => {
        for (const listener of this.#channels.get(channel) ?? []) listener.notified(payload ?? '')
      })
      client.on('error', () => { this.#lostListener(client) })
      client.on('end', () => { this.#lostListener(client) })
      await client.connect()
      for (const channel of this.#channels.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
      this.#listener = client
    })().finally(() => { this.#listening = undefined })
    await this.#listening
  }

  #lostListener (client: pg.Client): void {
    if (this.#listener !== client) return
    this.#listener = undefined
    client.end().catch(() => {})
    if (this.#closed) return
    const retry = (): void => {
      if (this.#closed) return
      this.#connectListener().then(() => {
        for (const listeners of this.#channels.values()) for (const listener of listeners) listener.reconnected?.()
      }, () => { setTimeout(retry, 1000).unref() })
    }
    setTimeout(retry, 1000).unref()
  }

  /** Closes every connection, once the queries under way have finished; twice is harmless. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#closing.abort()
    const listener = this.#listener
    this.#listener = undefined
    await Promise.all([this.#pool.end(), listener?.end().catch(() => {})])
  }
}

async function versionOf (db: Pick<Pool, 'query'>, area: string): Promise<number> {
  const { rows } = await db.query<{ version: number | null }>('SELECT max(version) AS version FROM doorsense_migrations WHERE area = $1', [area])
  return rows[0].version ?? 0
}

/** What a message may say of a connection URL: where it points and as whom, never the password (as written, and decoded). */
function describeUrl (url: string): { where: string, user: string, passwords: string[] } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    // the text itself is not repeated: it may hold a password
    throw new Error('the PostgreSQL URL is not a valid URL (expected postgres://user:password@host:port/database)')
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`the PostgreSQL URL must start with postgres:// (it starts with ${parsed.protocol}//)`)
  }
  const host = parsed.hostname !== '' ? parsed.hostname : parsed.searchParams.get('host') ?? 'localhost'
  const port = parsed.port !== '' ? parsed.port : '5432'
  const user = decodeURIComponent(parsed.username)
  const database = decodeURIComponent(parsed.pathname.slice(1)) || user || '(default)'
  return {
    where: `at ${host}:${port}, database ${database}`,
    user: user === '' ? '' : ` as ${user}`,
    passwords: [...new Set([parsed.password, decodeURIComponent(parsed.password)])].filter((password) => password !== '')
  }
}

/** The reason an error gives; a refused connection to a name with several addresses fails as an AggregateError with no message of its own. */
function reasonOf (err: unknown): string {
  if (err instanceof AggregateError && err.message === '') return err.errors.map(reasonOf).join('; ')
  if (err instanceof Error) return err.message !== '' ? err.message : (err as { code?: string }).code ?? err.name
  return String(err)
}

function scrub (text: string, passwords: readonly string[]): string {
  return passwords.reduce((scrubbed, password) => scrubbed.replaceAll(password, '***'), text)
}

/** The error as a cause that carries its code but no password, should pg's message have quoted one. */
function scrubbedCause (err: unknown, passwords: readonly string[]): unknown {
  if (!(err instanceof Error) || !passwords.some((password) => `${err.message}${err.stack ?? ''}`.includes(password))) return err
  return Object.assign(new Error(scrub(err.message, passwords)), { code: (err as { code?: unknown }).code })
}

import Database from 'better-sqlite3'
import fp from 'fastify-plugin'
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { makePrivate, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js'
import { WalCheckpointer, type CheckpointStats, type WalCheckpointerOptions } from './wal-checkpointer.js'

/** The SQLite file inside DATA_DIR. */
export const DATABASE_FILE = 'doorsense.sqlite'

/** One step of an area's schema history: SQL text or a function run inside the migration's transaction. */
export type Migration = string | ((db: Database.Database) => void)

/**
 * The one embedded database. Core knows no tables: each area brings its own
 * ordered list of migrations and calls {@link Storage.migrate} when it loads.
 */
export class Storage {
  readonly db: Database.Database
  #checkpointer: WalCheckpointer | undefined

  /**
   * @param maxMb largest the database file may grow, in MiB (0 = no limit but the
   *   disk): past it a write fails with SQLITE_FULL, which routes answer as 507
   */
  constructor (dataDir: string, maxMb = 0) {
    // a DATA_DIR created here is the owner's only (an existing one keeps the mode its owner chose)
    mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE })
    const file = join(dataDir, DATABASE_FILE)
    // created 0600 before SQLite opens it (SQLite would make it 0644), and an
    // existing one tightened: the -wal and -shm SQLite creates copy its mode
    closeSync(openSync(file, 'a', PRIVATE_FILE_MODE))
    makePrivate(file)
    makePrivate(`${file}-wal`)
    makePrivate(`${file}-shm`)
    this.db = new Database(file)
    // WAL: readers never block the writer; NORMAL sync keeps every committed
    // transaction across a process crash (only an OS crash can lose the last ones)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 5000')
    this.db.pragma('foreign_keys = ON')
    if (maxMb > 0) this.setMaxBytes(maxMb * 1024 * 1024)
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      area TEXT NOT NULL,
      version INTEGER NOT NULL,
      applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
      PRIMARY KEY (area, version)
    )`)
  }

  /**
   * Applies the migrations of `area` that have not run yet, in order, each in
   * its own transaction. Migration i (0-based) is version i + 1; a list may only
   * grow at its end.
   * @returns the versions applied now
   */
  migrate (area: string, migrations: readonly Migration[]): number[] {
    const current = this.version(area)
    if (current > migrations.length) {
      throw new Error(`database has ${area} schema version ${current}, this build knows only ${migrations.length}: refusing to run an older build on a newer database`)
    }
    const applied: number[] = []
    const record = this.db.prepare('INSERT INTO schema_migrations (area, version) VALUES (?, ?)')
    for (let version = current + 1; version <= migrations.length; version++) {
      const migration = migrations[version - 1]
      this.db.transaction(() => {
        if (typeof migration === 'string') this.db.exec(migration)
        else migration(this.db)
        record.run(area, version)
      })()
      applied.push(version)
    }
    return applied
  }

  /** The highest migration version applied for `area` (0 = none). */
  version (area: string): number {
    const row = this.db.prepare('SELECT MAX(version) AS version FROM schema_migrations WHERE area = ?').get(area) as { version: number | null }
    return row.version ?? 0
  }

  /** Bytes the database takes on disk: its pages plus the write-ahead log not yet checkpointed. */
  sizeBytes (): number {
    const pages = (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number)
    let wal = 0
    try {
      wal = statSync(`${this.db.name}-wal`).size
    } catch {
      // no WAL file between checkpoints
    }
    return pages + wal
  }

  /**
   * Caps the database file at `bytes` (rounded down to whole pages, never below
   * the pages already in use: SQLite keeps the larger of the two).
   * @returns the cap in effect, in bytes
   */
  setMaxBytes (bytes: number): number {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number
    const pages = Math.max(1, Math.floor(bytes / pageSize))
    return (this.db.pragma(`max_page_count = ${pages}`, { simple: true }) as number) * pageSize
  }

  /**
   * Moves WAL checkpoints off the request path: a worker thread checkpoints
   * every `intervalMs` (see {@link WalCheckpointer}). Without it (the CLI, 0)
   * SQLite checkpoints inside the commit that fills the log.
   */
  checkpointInBackground (intervalMs: number, onError?: (err: Error) => void, options: Pick<WalCheckpointerOptions, 'resetFrames'> = {}): void {
    if (intervalMs <= 0 || this.#checkpointer) return
    this.#checkpointer = new WalCheckpointer(this.db, { ...options, file: this.db.name, intervalMs, onError })
  }

  /** What the background checkpoints have done (undefined: SQLite checkpoints inside commits). */
  get checkpoints (): CheckpointStats | undefined {
    return this.#checkpointer?.stats
  }

  /** Stops the background checkpoints and waits for their thread's connection to close. */
  async stopCheckpoints (): Promise<void> {
    await this.#checkpointer?.stop()
  }

  close (): void {
    // a thread stopCheckpoints() did not end yet is ended here (its connection may then outlive this
    // one, leaving the log for the next open to checkpoint)
    this.#checkpointer?.terminate()
    if (this.db.open) this.db.close()
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The embedded SQLite database, opened once, closed with the app. */
    storage: Storage
  }
}

/**
 * Opens {@link Storage} in `dataDir`, decorates `fastify.storage`, checkpoints
 * in the background every `checkpointMs` (0 = inside commits, as SQLite does
 * by itself), closes it on app close.
 */
export const storagePlugin = fp<{ dataDir: string, maxMb?: number, checkpointMs?: number }>(async (app, { dataDir, maxMb, checkpointMs = 0 }) => {
  const storage = new Storage(dataDir, maxMb)
  app.decorate('storage', storage)
  storage.checkpointInBackground(checkpointMs, (err) => app.log.warn({ err }, 'WAL checkpoint'))
  app.addHook('onClose', async () => {
    await storage.stopCheckpoints()
    storage.close()
  })
}, { name: 'storage', fastify: '5.x' })

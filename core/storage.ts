import Database from 'better-sqlite3'
import { closeSync, ftruncateSync, mkdirSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { isStorageFull } from './errors.js'
import { makePrivate, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js'
import type { ServiceLog } from './logger.js'
import { WalCheckpointer, type CheckpointStats, type WalCheckpointerOptions } from './wal-checkpointer.js'

/** The SQLite file inside DATA_DIR. */
export const DATABASE_FILE = 'doorsense.sqlite'

/**
 * The disk space doorsense holds back inside DATA_DIR (STORAGE_RESERVE_MB of
 * zeros): released when the disk is full, so that deletes, and the checkpoint
 * that copies them into the database, still find room for SQLite's
 * write-ahead log.
 */
export const RESERVE_FILE = 'doorsense.reserve'

const MIB = 1024 * 1024
/** The reserve is written in pieces of this size (zeros: a sparse file would hold nothing back). */
const RESERVE_CHUNK = Buffer.alloc(MIB)
/** Below this much free space (or a quarter of the reserve, if larger) the disk counts as full. */
const FULL_BELOW_MIN_BYTES = MIB

/** One step of an area's schema history: SQL text or a function run inside the migration's transaction. */
export type Migration = string | ((db: Database.Database) => void)

/**
 * An area's tables: its name and its migrations in order (migration i,
 * 0-based, is version i + 1). Each area declares one, `<AREA>_SCHEMA` in
 * `<area>-schema.ts` beside the code that owns the tables. Databases in the
 * field record the name and the versions in `schema_migrations`: the name
 * never changes, and a released migration is never edited, only followed.
 */
export interface AreaSchema {
  readonly area: string
  readonly migrations: readonly Migration[]
}

/** How {@link Storage} opens and watches the database. */
export interface StorageOptions {
  /**
   * Largest the database file may grow, in MiB (0 = no limit but the disk):
   * past it a write fails with SQLITE_FULL, which routes answer as 507.
   */
  maxMb?: number
  /**
   * MiB of disk held back in DATA_DIR/doorsense.reserve for deletes on a full
   * disk (0 = none, and one an earlier start wrote is removed). Unset: the
   * reserve is not this Storage's to manage (the CLI beside a server).
   */
  reserveMb?: number
  /** How often the free disk space is looked at, in ms (0 = only when a write found the storage full). */
  diskCheckMs?: number
  /** Hears when the disk fills up and when it has room again. */
  log?: ServiceLog
}

/** How long a reading of the disk's free space stands for a write path's check ({@link Storage.checkDiskIfStale}). */
const FRESH_DISK_READING_MS = 100
/** Free bytes above the full mark a reading needs to stand that long. */
const AMPLE_FREE_BYTES = 256 * MIB

/** Each connection's statement of {@link databaseRoomBytes}. */
const pageStatements = new WeakMap<Database.Database, Database.Statement>()

/** Bytes a write may still add before the database is full: its cap less the pages in use, plus the free pages inside it. */
export function databaseRoomBytes (db: Database.Database): number {
  // asked before every stored batch: one statement prepared once per connection (~9 µs), not four pragmas compiled each time (~68 µs)
  let pages = pageStatements.get(db)
  if (pages === undefined) {
    pages = db.prepare('SELECT page_size, page_count, freelist_count, max_page_count ' +
      'FROM pragma_page_size(), pragma_page_count(), pragma_freelist_count(), pragma_max_page_count()')
    pageStatements.set(db, pages)
  }
  const { page_size: pageSize, page_count: pageCount, freelist_count: freePages, max_page_count: maxPages } = pages.get() as Record<string, number>
  return (Math.max(0, maxPages - pageCount) + freePages) * pageSize
}

/**
 * Removes the reserve of `dataDir`, for a start that finds the disk full
 * before the database is open (the pid file is written first).
 * @returns the bytes released (0: there was none)
 */
export function releaseReserve (dataDir: string): number {
  const file = join(dataDir, RESERVE_FILE)
  const bytes = fileSize(file)
  rmSync(file, { force: true })
  return bytes
}

/**
 * The one embedded database. Core knows no tables: each area brings its own
 * {@link AreaSchema}, and the one module that opens the area on a Storage
 * (a store's constructor or factory, or the area's plugin) migrates it first
 * ({@link Storage.migrate}); code handed only the connection expects the
 * tables and names the schema they come from.
 *
 * A full disk is survived rather than locking everyone out: while the disk
 * has less than {@link StorageOptions.reserveMb}/4 (at least 1 MiB) free, the
 * reserve file is released and the database is held at the size it has, so
 * it grows no further but reuses the pages deletes free (frames replace the
 * oldest unlabelled ones, see plugins/rpi-servers/frame-store.ts), and the
 * released space is left to the write-ahead log: deletes keep working. Once
 * the disk has room for the reserve again, it is written anew and the hold
 * is lifted.
 */
export class Storage {
  readonly db: Database.Database
  readonly #dataDir: string
  readonly #reserveFile: string
  readonly #reserveBytes: number
  readonly #managesReserve: boolean
  readonly #fullBelowBytes: number
  readonly #log: ServiceLog | undefined
  readonly #pageSize: number
  /** SQLite's own max_page_count: no limit but the disk. */
  readonly #unlimitedPages: number
  readonly #openedOnFullDisk: boolean
  readonly #fullListeners = new Set<() => void>()
  /** The cap STORAGE_MAX_MB (or setMaxBytes) asks for, in pages. */
  #maxPages: number
  /** The pages the database is held at while the disk is full; undefined while it may grow. */
  #heldPages: number | undefined
  #diskTimer: NodeJS.Timeout | undefined
  /** The disk's free bytes at the last {@link checkDisk}, and when (performance.now()). */
  #lastFree: { bytes: number, at: number } | undefined
  #checkpointer: WalCheckpointer | undefined

  constructor (dataDir: string, options: StorageOptions = {}) {
    const { maxMb = 0, reserveMb, diskCheckMs = 0, log } = options
    this.#dataDir = dataDir
    this.#reserveFile = join(dataDir, RESERVE_FILE)
    this.#managesReserve = reserveMb !== undefined
    this.#reserveBytes = Math.round((reserveMb ?? 0) * MIB)
    this.#fullBelowBytes = Math.max(FULL_BELOW_MIN_BYTES, this.#reserveBytes / 4)
    this.#log = log
    // a DATA_DIR created here is the owner's only (an existing one keeps the mode its owner chose)
    mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE })
    const file = join(dataDir, DATABASE_FILE)
    // created 0600 before SQLite opens it (SQLite would make it 0644), and an
    // existing one tightened: the -wal and -shm SQLite creates copy its mode
    closeSync(openSync(file, 'a', PRIVATE_FILE_MODE))
    makePrivate(file)
    makePrivate(`${file}-wal`)
    makePrivate(`${file}-shm`)
    // SQLite needs room for its shared-memory file (-shm) to open a WAL database: on a full disk the reserve makes it
    const fullAtStart = this.#freeBytes() < this.#fullBelowBytes
    if (fullAtStart && this.#managesReserve) releaseReserve(dataDir)
    let db = new Database(file)
    let openedOnFullDisk = false
    try {
      this.#configure(db)
    } catch (err) {
      db.close()
      if (!this.#isOutOfRoom(err)) throw err
      // still no room for the -shm: SQLite keeps that index in this process's memory instead, which
      // takes the file lock for this connection alone (no checkpoint thread); reads work, writes that
      // need room fail with SQLITE_FULL (507) until there is some
      db = new Database(file)
      try {
        db.pragma('locking_mode = EXCLUSIVE')
        this.#configure(db)
      } catch (again) {
        db.close()
        throw again
      }
      openedOnFullDisk = true
    }
    this.db = db
    this.#openedOnFullDisk = openedOnFullDisk
    this.#pageSize = db.pragma('page_size', { simple: true }) as number
    this.#unlimitedPages = db.pragma('max_page_count', { simple: true }) as number
    this.#maxPages = maxMb > 0 ? this.#pagesOf(maxMb * MIB) : this.#unlimitedPages
    this.#applyMaxPages()
    this.#startDiskWatch(fullAtStart || openedOnFullDisk)
    if (diskCheckMs > 0) {
      this.#diskTimer = setInterval(() => this.checkDisk(), diskCheckMs)
      this.#diskTimer.unref() // never the reason the process stays up
    }
  }

  #configure (db: Database.Database): void {
    // WAL: readers never block the writer; NORMAL sync keeps every committed
    // transaction across a process crash (only an OS crash can lose the last ones)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('busy_timeout = 5000')
    db.pragma('foreign_keys = ON')
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      area TEXT NOT NULL,
      version INTEGER NOT NULL,
      applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
      PRIMARY KEY (area, version)
    )`)
  }

  /**
   * Applies the migrations of `schema` that have not run yet, in order, each
   * in its own transaction.
   * @returns the versions applied now
   */
  migrate (schema: AreaSchema): number[] {
    const { area, migrations } = schema
    const current = this.version(area)
    if (current > migrations.length) {
      throw new Error(`database has ${area} schema version ${current}, this build knows only ${migrations.length}: ` +
        'refusing to run an older build on a newer database')
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
    const pages = (this.db.pragma('page_count', { simple: true }) as number) * this.#pageSize
    return pages + fileSize(`${this.db.name}-wal`)
  }

  /**
   * Caps the database file at `bytes` (rounded down to whole pages, never below
   * the pages already in use: SQLite keeps the larger of the two). While the
   * disk is full the database stays held at its size, whatever this cap.
   * @returns the cap in effect, in bytes
   */
  setMaxBytes (bytes: number): number {
    this.#maxPages = this.#pagesOf(bytes)
    return this.#applyMaxPages() * this.#pageSize
  }

  /** Whether the database opened on a disk with no room even for SQLite's shared-memory file: reads only, until there is room. */
  get openedOnFullDisk (): boolean {
    return this.#openedOnFullDisk
  }

  /** Whether the disk is full: the reserve is released and the database held at its size. */
  get diskFull (): boolean {
    return this.#heldPages !== undefined
  }

  /**
   * Bytes a write may still add to the database before it is full (see
   * {@link databaseRoomBytes}): Infinity while it has no cap and the disk is
   * not full, where only the disk bounds it, and the disk is
   * {@link checkDisk}'s to watch (asked before every batch of frames: no
   * query then).
   */
  roomBytes (): number {
    if (this.#heldPages === undefined && this.#maxPages === this.#unlimitedPages) return Number.POSITIVE_INFINITY
    return databaseRoomBytes(this.db)
  }

  /**
   * Calls `listener` each time a write found the storage full
   * ({@link noticeFull}): an area with data it may drop makes room there.
   * @returns a function that removes the listener
   */
  onFull (listener: () => void): () => void {
    this.#fullListeners.add(listener)
    return () => this.#fullListeners.delete(listener)
  }

  /**
   * A write failed for lack of room (SQLITE_FULL, ENOSPC): looks at the disk
   * at once (a full one releases the reserve and holds the database at its
   * size) and tells the {@link onFull} listeners, so that the next write finds
   * room. Call it outside any transaction.
   */
  noticeFull (): void {
    const held = this.diskFull
    this.checkDisk()
    // a log copied into the database completely starts over from its beginning, in the room it has
    if (held) this.#checkpoint()
    for (const listener of this.#fullListeners) {
      try {
        listener()
      } catch (err) {
        // no room even for the deletes is what a full disk without its reserve looks like: the next write answers 507 as this one did
        if (!isStorageFull(err)) this.#log?.warn({ err }, 'could not make room in the database')
      }
    }
  }

  /**
   * Looks at the free space of the disk holding DATA_DIR: when it runs short,
   * releases the reserve and holds the database at its size; when there is
   * room for the reserve again, writes it anew and lifts the hold.
   */
  checkDisk (): void {
    if (!this.db.open) return
    const free = this.#freeBytes()
    this.#lastFree = { bytes: free, at: performance.now() }
    if (this.#heldPages === undefined) {
      if (free < this.#fullBelowBytes) this.#hold()
    } else if (free >= this.#reserveBytes + 2 * this.#fullBelowBytes) {
      this.#release(free)
    }
  }

  /**
   * {@link checkDisk}, unless the disk was read moments ago (within
   * {@link FRESH_DISK_READING_MS}) with {@link AMPLE_FREE_BYTES} above where
   * it counts as full: what a write path asks before each write (a statfs
   * call there cost 3 % of a batch of 20 frames). No writer fills that much
   * in that time; one that did would find SQLITE_FULL, whose answer
   * (noticeFull) reads the disk at once, as the timer does every second.
   */
  checkDiskIfStale (): void {
    const last = this.#lastFree
    if (last !== undefined && this.#heldPages === undefined && performance.now() - last.at < FRESH_DISK_READING_MS &&
      last.bytes >= this.#fullBelowBytes + AMPLE_FREE_BYTES) return
    this.checkDisk()
  }

  /** At start: a full disk holds the database, and a reserve that is missing or short is written where there is room for it. */
  #startDiskWatch (full: boolean): void {
    if (this.#reserveBytes === 0) {
      // a reserve an earlier start with a larger STORAGE_RESERVE_MB wrote is given back
      if (this.#managesReserve) rmSync(this.#reserveFile, { force: true })
      if (full || this.#freeBytes() < this.#fullBelowBytes) this.#hold(this.#openedOnFullDisk)
      return
    }
    const have = fileSize(this.#reserveFile)
    if (have > this.#reserveBytes) truncateFile(this.#reserveFile, this.#reserveBytes)
    if (full) {
      this.#hold(this.#openedOnFullDisk)
    } else if (have < this.#reserveBytes && !(this.#freeBytes() >= this.#reserveBytes - have + 2 * this.#fullBelowBytes && this.#writeReserve())) {
      this.#hold()
    } else {
      this.checkDisk()
    }
  }

  /** Releases the reserve and holds the database at its size; `quiet`: bin/serve.ts says so in its start-up line. */
  #hold (quiet = false): void {
    const released = this.#managesReserve ? releaseReserve(this.#dataDir) : 0
    this.#heldPages = this.db.pragma('page_count', { simple: true }) as number
    this.#applyMaxPages()
    // the database file takes its pages from the write-ahead log now, while the released reserve
    // makes room for them: after that the log can start over and the file need not grow again
    this.#checkpoint()
    if (quiet) return
    const freeBytes = this.#freeBytes()
    const reserveReleased = released > 0 ? ` with the ${mib(released)} MiB reserve ${RESERVE_FILE} released` : ''
    this.#log?.warn({ dataDir: this.#dataDir, freeBytes, releasedBytes: released },
      `the disk holding ${this.#dataDir} is full: ${mib(freeBytes)} MiB free${reserveReleased}; ` +
      `the database is held at its ${mib(this.#heldPages * this.#pageSize)} MiB, new frames replace the oldest unlabelled ones and deletes keep working ` +
      `(labelled samples are kept) until the disk has ${mib(this.#reserveBytes + 2 * this.#fullBelowBytes)} MiB free again`)
  }

  #release (freeBytes: number): void {
    if (!this.#writeReserve()) return
    this.#heldPages = undefined
    this.#applyMaxPages()
    const reserveBack = this.#reserveBytes > 0 ? ` and the ${mib(this.#reserveBytes)} MiB reserve is back` : ''
    this.#log?.info({ dataDir: this.#dataDir, freeBytes },
      `the disk holding ${this.#dataDir} has room again (${mib(freeBytes)} MiB free): the database may grow again${reserveBack}`)
  }

  /** Writes the reserve up to its size; false (and the file as it was) when the disk has no room for it. */
  #writeReserve (): boolean {
    if (this.#reserveBytes === 0) return true
    const have = fileSize(this.#reserveFile)
    let fd: number
    try {
      fd = openSync(this.#reserveFile, 'a', PRIVATE_FILE_MODE)
    } catch (err) {
      if (isStorageFull(err)) return false
      throw err
    }
    try {
      for (let size = have; size < this.#reserveBytes; size += RESERVE_CHUNK.length) {
        writeSync(fd, RESERVE_CHUNK, 0, Math.min(RESERVE_CHUNK.length, this.#reserveBytes - size))
      }
      return true
    } catch (err) {
      ftruncateSync(fd, have)
      if (isStorageFull(err)) return false
      throw err
    } finally {
      closeSync(fd)
    }
  }

  #checkpoint (): void {
    if (this.db.inTransaction) return
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)')
    } catch {
      // no room for all the pages the log holds yet: the background checkpoints try again
    }
  }

  #applyMaxPages (): number {
    const pages = Math.min(this.#maxPages, this.#heldPages ?? this.#maxPages)
    return this.db.pragma(`max_page_count = ${pages}`, { simple: true }) as number
  }

  #pagesOf (bytes: number): number {
    return Math.max(1, Math.floor(bytes / this.#pageSize))
  }

  /** Free bytes (for this user) on the disk holding DATA_DIR; Infinity where that cannot be told. */
  #freeBytes (): number {
    try {
      const stats = statfsSync(this.#dataDir)
      return stats.bavail * stats.bsize
    } catch {
      return Infinity
    }
  }

  /** A full disk, as SQLite says it when it cannot even size its shared-memory file. */
  #isOutOfRoom (err: unknown): boolean {
    if (isStorageFull(err)) return true
    const code = (err as { code?: unknown } | null)?.code
    return typeof code === 'string' && code.startsWith('SQLITE_IOERR') && this.#freeBytes() < this.#fullBelowBytes
  }

  /**
   * Moves WAL checkpoints off the request path: a worker thread checkpoints
   * every `intervalMs` (see {@link WalCheckpointer}). Without it (the CLI, 0)
   * SQLite checkpoints inside the commit that fills the log; so it does on a
   * database opened on a full disk, whose lock no other connection may share.
   */
  checkpointInBackground (intervalMs: number, onError?: (err: Error) => void, options: Pick<WalCheckpointerOptions, 'resetFrames'> = {}): void {
    if (intervalMs <= 0 || this.#checkpointer || this.#openedOnFullDisk) return
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
    if (this.#diskTimer) clearInterval(this.#diskTimer)
    this.#diskTimer = undefined
    // a thread stopCheckpoints() did not end yet is ended here (its connection may then outlive this
    // one, leaving the log for the next open to checkpoint)
    this.#checkpointer?.terminate()
    if (this.db.open) this.db.close()
  }
}

function fileSize (file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0 // not there (no WAL between checkpoints, no reserve yet)
  }
}

function truncateFile (file: string, bytes: number): void {
  const fd = openSync(file, 'r+')
  try {
    ftruncateSync(fd, bytes)
  } finally {
    closeSync(fd)
  }
}

function mib (bytes: number): string {
  return (bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0)
}

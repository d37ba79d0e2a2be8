import type { Database, Statement } from 'better-sqlite3'
import { isStorageFull } from '../../core/errors.js'
import { databaseRoomBytes } from '../../core/storage.js'
import { FEATURES, parseFrame, type DecodedFrame, type FrameEncoding } from '../../domain/frames.js'

/**
 * Room one stored frame takes, rounded up: its row and index entries (~165 bytes for a raw frame,
 * ~485 for 106 features, docs/storage.md) and a labelled copy while a capture is open.
 */
const FRAME_ROOM_BYTES = 1024
/** Room kept free beyond a batch for the small writes that go with it (an idempotency key, a Pi's last-seen time). */
const SPARE_ROOM_BYTES = 64 * 1024
/** Room one dropped frame gives back, rounded down (a raw frame's row and index entries take ~165 bytes, a features row's ~485). */
const FRAME_FREED_BYTES = 128

/** How a row's `features` BLOB holds its frame (column `layout`). */
export const FrameLayout = {
  /** 106 float32 features, platform byte order: every row stored before the layout column, and frames posted as features. */
  float32: 0,
  /** A raw frame's values as received, one signed byte each (108 for a Pi, 128 for an ESP32); the features are recomputed from them. */
  int8: 1
} as const
export type FrameLayout = typeof FrameLayout[keyof typeof FrameLayout]
/** Fewest frames dropped at a time. */
const MIN_DROP = 64

/** A decoded frame ready to store (domain/frames.ts): a raw one is stored as its values, as received. */
export type { DecodedFrame }

/** A stored frame as read back. */
export interface StoredFrame {
  id: number
  device: number
  receivedAt: number
  encoding: FrameEncoding
  /** The 106 features: as stored, or recomputed from the raw values (the same float32s the decoder made when the frame came). */
  features: Float32Array
  /** The raw values, for a frame stored as received; absent for one stored as features (and for every row stored before). */
  raw?: Int8Array
}

interface FrameRow {
  id: number
  device: number
  received_at: number
  encoding: FrameEncoding
  features: Buffer
  layout: number
}

/**
 * Most rows one INSERT writes: a batch goes in as few statements (one for
 * up to 100 frames, an agent's largest batch), since each statement's
 * binding and stepping costs more than a row's values (a batch of 20 raw
 * frames 72 → 57 µs, of 100 228 → 146 µs; 500 bound values stay far below
 * SQLite's limit of 32,766).
 */
const INSERT_CHUNK_ROWS = 100

/** What a {@link FrameStore} does when the storage is full. */
export interface FrameStoreOptions {
  /**
   * Looks at the disk before a batch is stored (`Storage.checkDiskIfStale`): a disk
   * running full holds the database at its size first, so that the batch
   * makes its room by dropping frames instead of failing as it commits.
   */
  checkDisk?: () => void
  /** Bytes a write may still add to the database (`Storage.roomBytes`); default: {@link databaseRoomBytes} of the connection. */
  roomBytes?: () => number
  /**
   * An insert found the storage full (SQLITE_FULL, the disk, say): called
   * before the batch is tried once more (`Storage.noticeFull`, which
   * releases the disk reserve of a full disk).
   */
  onFull?: () => void
}

/**
 * The unlabelled frames the Pis post, kept per device (table `rpi_frames`,
 * docs/storage.md). A raw frame is stored as it came, its 108 (Pi) or 128
 * (ESP32) signed 8-bit values in the BLOB (`layout` 1, ~165 bytes a row with
 * its index entries): its features are recomputed from them exactly, by the
 * decoder that made them (domain/frames.ts). A frame posted as features is
 * stored as 106 float32 (`layout` 0, platform byte order, i.e. little-endian
 * on x86 and ARM; ~485 bytes), as every frame was before the layout column:
 * those rows read back as they are. The table is `RPI_SERVERS_SCHEMA`'s
 * (rpi-servers-schema.ts), migrated by the area's plugin before it builds this.
 *
 * A full database does not lock the Pis out: a batch that would not fit
 * first drops the oldest unlabelled frames, of any device (retention's
 * anyway), until it does. Labelled samples live in their own table and are
 * never dropped: once only they are left, frames get 507 like every write.
 */
export class FrameStore {
  private readonly db: Database
  private readonly checkDisk: () => void
  private readonly roomBytes: () => number
  private readonly onFull: () => void
  /** INSERT statements by how many rows they write (1..INSERT_CHUNK_ROWS), prepared when first needed. */
  private readonly inserts = new Map<number, Statement<unknown[]>>()
  private readonly countAll: Statement<[], { count: number }>
  private readonly countDevice: Statement<[number], { count: number }>
  private readonly selectDevice: Statement<[number, number], FrameRow>
  private readonly pruneAge: Statement<[number, number]>
  private readonly pruneDevice: Statement<[number, number]>
  private readonly countPerDevice: Statement<[], { device: number, count: number }>
  private readonly dropOldest: Statement<[number]>
  /** Frames of the largest batch stored so far, the room {@link makeRoom} keeps by default. */
  private largestBatch = 1
  private droppedFrames = 0

  constructor (db: Database, options: FrameStoreOptions = {}) {
    this.db = db
    this.checkDisk = options.checkDisk ?? (() => {})
    this.roomBytes = options.roomBytes ?? (() => databaseRoomBytes(db))
    this.onFull = options.onFull ?? (() => {})
    this.countAll = db.prepare('SELECT COUNT(*) AS count FROM rpi_frames')
    this.countDevice = db.prepare('SELECT COUNT(*) AS count FROM rpi_frames WHERE device = ?')
    this.selectDevice = db.prepare('SELECT id, device, received_at, encoding, features, layout FROM rpi_frames WHERE device = ? ORDER BY id LIMIT ?')
    this.pruneAge = db.prepare('DELETE FROM rpi_frames WHERE id IN (SELECT id FROM rpi_frames WHERE received_at < ? ORDER BY received_at LIMIT ?)')
    this.pruneDevice = db.prepare('DELETE FROM rpi_frames WHERE id IN (SELECT id FROM rpi_frames WHERE device = ? ORDER BY id LIMIT ?)')
    this.countPerDevice = db.prepare('SELECT device, COUNT(*) AS count FROM rpi_frames GROUP BY device')
    this.dropOldest = db.prepare('DELETE FROM rpi_frames WHERE id IN (SELECT id FROM rpi_frames ORDER BY id LIMIT ?)')
  }

  /**
   * Stores `frames` of `device` in one transaction, and runs `alongside` inside
   * that transaction so its writes (e.g. labelled samples) commit or roll back
   * with the frames. A batch that would not fit drops the oldest unlabelled
   * frames first; one that fails for lack of room before `alongside` ran is
   * tried once more after `onFull` (a failure as it commits is not: the door
   * state took the frames in by then).
   */
  insert<T> (device: number, frames: readonly DecodedFrame[], receivedAt: number, alongside: () => T): T {
    this.largestBatch = Math.max(this.largestBatch, frames.length)
    this.checkDisk()
    // inside a caller's transaction a failed write may have rolled all of it back: no second try there
    const retryable = !this.db.inTransaction
    let alongsideRan = false
    const store = this.db.transaction(() => {
      this.makeRoom(roomFor(frames.length))
      for (let start = 0; start < frames.length; start += INSERT_CHUNK_ROWS) {
        const chunk = frames.slice(start, start + INSERT_CHUNK_ROWS)
        const values: unknown[] = new Array(chunk.length * 5)
        chunk.forEach(({ raw, features, encoding }, i) => {
          values[i * 5] = device
          values[i * 5 + 1] = receivedAt
          values[i * 5 + 2] = encoding
          const stored = raw ?? features
          values[i * 5 + 3] = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength)
          values[i * 5 + 4] = raw ? FrameLayout.int8 : FrameLayout.float32
        })
        this.insertStatement(chunk.length).run(...values)
      }
      alongsideRan = true
      return alongside()
    })
    try {
      return store()
    } catch (err) {
      if (!retryable || alongsideRan || !isStorageFull(err)) throw err
      this.onFull()
      return store()
    }
  }

  /** The INSERT of `rows` rows in one statement (ids in row order, as one statement a row gives them). */
  private insertStatement (rows: number): Statement<unknown[]> {
    let statement = this.inserts.get(rows)
    if (statement === undefined) {
      const rowValues = new Array(rows).fill('(?, ?, ?, ?, ?)').join(', ')
      statement = this.db.prepare(`INSERT INTO rpi_frames (device, received_at, encoding, features, layout) VALUES ${rowValues}`)
      this.inserts.set(rows, statement)
    }
    return statement
  }

  /**
   * Drops the oldest unlabelled frames until a write of `bytes` fits in the
   * database (as far as its cap, or the size a full disk holds it at, tells;
   * the default: the largest batch so far). Labelled samples are never touched.
   * @returns how many frames it dropped
   */
  makeRoom (bytes: number = roomFor(this.largestBatch)): number {
    let dropped = 0
    for (let room = this.roomBytes(); room < bytes;) {
      const count = this.dropOldest.run(Math.max(MIN_DROP, Math.ceil((bytes - room) / FRAME_FREED_BYTES))).changes
      if (count === 0) break
      dropped += count
      room = this.roomBytes()
    }
    this.droppedFrames += dropped
    return dropped
  }

  /** Frames dropped to make room since construction (a batch rolled back after its drops counts them too). */
  get dropped (): number {
    return this.droppedFrames
  }

  /**
   * Deletes up to `limit` frames received before `cutoff` (epoch ms), oldest
   * first. Labelled samples live in their own table and are never touched.
   * @returns how many were deleted
   */
  pruneOlderThan (cutoff: number, limit: number): number {
    return this.pruneAge.run(cutoff, limit).changes
  }

  /**
   * The devices holding more than `keep` frames, and by how many (one scan of
   * the device index: read once per retention round, not per batch).
   */
  excessPerDevice (keep: number): Array<{ device: number, excess: number }> {
    return this.countPerDevice.all().filter(({ count }) => count > keep).map(({ device, count }) => ({ device, excess: count - keep }))
  }

  /**
   * Deletes up to `limit` of the oldest frames of `device`.
   * @returns how many were deleted
   */
  pruneOldestOf (device: number, limit: number): number {
    return this.pruneDevice.run(device, limit).changes
  }

  /** Frames stored, for one device or all. */
  count (device?: number): number {
    return (device === undefined ? this.countAll.get() : this.countDevice.get(device))?.count ?? 0
  }

  /** The first `limit` stored frames of `device`, oldest first, whichever layout each was stored in. */
  list (device: number, limit = 1000): StoredFrame[] {
    return this.selectDevice.all(device, limit).map((row) => {
      const frame = { id: row.id, device: row.device, receivedAt: row.received_at, encoding: row.encoding }
      return { ...frame, ...storedFrame(row.layout, row.features) }
    })
  }
}

/**
 * A stored BLOB's frame: its features, and its raw values when it was stored as received.
 * @throws Error for a layout or a length this build does not know (a newer build's row)
 */
export function storedFrame (layout: number, blob: Uint8Array): { features: Float32Array, raw?: Int8Array } {
  if (layout === FrameLayout.int8) {
    // copies: the row's Buffer may be a view into a shared pool
    const raw = new Int8Array(Uint8Array.from(blob).buffer)
    return { features: parseFrame(Array.from(raw)), raw }
  }
  if (layout !== FrameLayout.float32 || blob.byteLength !== FEATURES * 4) {
    throw new Error(`a stored frame of layout ${layout} and ${blob.byteLength} bytes: this build reads layout 0 (${FEATURES * 4} bytes) and 1`)
  }
  // copy: the row's Buffer may sit at an offset not aligned for float32
  return { features: new Float32Array(Uint8Array.from(blob).buffer) }
}

/** The room a batch of `frames` is given before it is stored. */
function roomFor (frames: number): number {
  return frames * FRAME_ROOM_BYTES + SPARE_ROOM_BYTES
}

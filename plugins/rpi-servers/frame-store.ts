import type { Database, Statement } from 'better-sqlite3'
import type { FrameEncoding } from '../../domain/frames.js'

/** A decoded frame ready to store. */
export interface DecodedFrame {
  features: Float32Array
  encoding: FrameEncoding
}

/** A stored frame as read back. */
export interface StoredFrame {
  id: number
  device: number
  receivedAt: number
  encoding: FrameEncoding
  features: Float32Array
}

interface FrameRow {
  id: number
  device: number
  received_at: number
  encoding: FrameEncoding
  features: Buffer
}

/**
 * The unlabelled frames the Pis post, kept per device (table `rpi_frames`:
 * features as one BLOB of 106 float32, platform byte order, i.e. little-endian on x86 and ARM).
 */
export class FrameStore {
  private readonly db: Database
  private readonly insertOne: Statement<[number, number, string, Buffer]>
  private readonly countAll: Statement<[], { count: number }>
  private readonly countDevice: Statement<[number], { count: number }>
  private readonly selectDevice: Statement<[number, number], FrameRow>
  private readonly pruneAge: Statement<[number, number]>
  private readonly pruneDevice: Statement<[number, number]>
  private readonly countPerDevice: Statement<[], { device: number, count: number }>

  constructor (db: Database) {
    this.db = db
    this.insertOne = db.prepare('INSERT INTO rpi_frames (device, received_at, encoding, features) VALUES (?, ?, ?, ?)')
    this.countAll = db.prepare('SELECT COUNT(*) AS count FROM rpi_frames')
    this.countDevice = db.prepare('SELECT COUNT(*) AS count FROM rpi_frames WHERE device = ?')
    this.selectDevice = db.prepare('SELECT id, device, received_at, encoding, features FROM rpi_frames WHERE device = ? ORDER BY id LIMIT ?')
    this.pruneAge = db.prepare('DELETE FROM rpi_frames WHERE id IN (SELECT id FROM rpi_frames WHERE received_at < ? ORDER BY received_at LIMIT ?)')
    this.pruneDevice = db.prepare('DELETE FROM rpi_frames WHERE id IN (SELECT id FROM rpi_frames WHERE device = ? ORDER BY id LIMIT ?)')
    this.countPerDevice = db.prepare('SELECT device, COUNT(*) AS count FROM rpi_frames GROUP BY device')
  }

  /**
   * Stores `frames` of `device` in one transaction, and runs `alongside` inside
   * that transaction so its writes (e.g. labelled samples) commit or roll back
   * with the frames.
   */
  insert<T> (device: number, frames: readonly DecodedFrame[], receivedAt: number, alongside: () => T): T {
    return this.db.transaction(() => {
      for (const frame of frames) {
        this.insertOne.run(device, receivedAt, frame.encoding, Buffer.from(frame.features.buffer, frame.features.byteOffset, frame.features.byteLength))
      }
      return alongside()
    })()
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

  /** The first `limit` stored frames of `device`, oldest first. */
  list (device: number, limit = 1000): StoredFrame[] {
    return this.selectDevice.all(device, limit).map((row) => ({
      id: row.id,
      device: row.device,
      receivedAt: row.received_at,
      encoding: row.encoding,
      // copy: the row's Buffer may sit at an offset not aligned for float32
      features: new Float32Array(new Uint8Array(row.features).buffer)
    }))
  }
}

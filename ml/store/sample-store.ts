/**
 * Labelled samples in SQLite: one row per frame, the features as a float32
 * BLOB, the door angle, the device and where the sample came from. Rows keep
 * their insertion order (the id), which the blocked split relies on. The
 * tables are `TRAINING_SCHEMA` (training-schema.ts), migrated by SampleStore.
 */
import { EventEmitter } from 'node:events'
import type { Storage } from '../../core/storage.js'
import type { ModelKind } from '../../schemas/model.js'
import type { DatasetSummary, LabelCount, SampleSource } from '../../schemas/training.js'
import { TRAINING_SCHEMA } from './training-schema.js'

/** A sample to store. */
export interface NewSample {
  kind: ModelKind
  angle: number
  features: Float32Array
  device?: number | null
  source: SampleSource
}

/** Which samples a delete removes; an absent field matches every sample. */
export interface SampleFilter {
  angle?: number
  source?: SampleSource
  /** Any of these sources. */
  sources?: readonly SampleSource[]
  device?: number | null
  /** Only samples stored after the one with this id (see {@link SampleStore.lastId}). */
  afterId?: number
}

/** An earlier CSV import, as the duplicate check names it. */
export interface ImportRecord {
  id: number
  device: number | null
  contentSha256: string
  rows: number
  importedAt: string
}

/** Rows of one kind in insertion order, as a training run takes them. */
export interface StoredTrainingSet {
  kind: ModelKind
  features: Float32Array[]
  angles: number[]
}

/** What a `deleted` event of {@link SampleStore} tells: the kind and filter of a delete, and how many samples it removed. */
export interface SampleDeletion {
  kind: ModelKind
  filter: SampleFilter
  removed: number
}

/**
 * The samples table. The server keeps one (`fastify.samples`, from the
 * training area), so that a cache of counts (a door's calibration) hears of
 * every delete through its `deleted` event, whoever ran it.
 */
export class SampleStore extends EventEmitter<{ deleted: [SampleDeletion] }> {
  readonly #db: Storage['db']

  constructor (storage: Storage) {
    super()
    storage.migrate(TRAINING_SCHEMA)
    this.#db = storage.db
  }

  /**
   * Stores samples in one transaction: all of them or, on any error, none.
   * @returns how many were stored
   */
  insert (samples: readonly NewSample[], at = new Date()): number {
    if (samples.length === 0) return 0
    const recordedAt = at.toISOString()
    const statement = this.#db.prepare('INSERT INTO training_samples (kind, angle, features, device, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?)')
    this.#db.transaction(() => {
      for (const sample of samples) {
        statement.run(sample.kind, sample.angle, blobOf(sample.features), sample.device ?? null, sample.source, recordedAt)
      }
    })()
    return samples.length
  }

  /**
   * Stores the samples of one CSV import and the import itself (content hash,
   * device, row count) in one transaction, unless the same content is stored
   * for the device already and `allowDuplicate` is not set (checked in the
   * same transaction, so two importers cannot both pass it).
   * @returns the new import's id, or the earlier import it duplicates (nothing stored then)
   */
  insertImport (
    samples: readonly NewSample[],
    contentSha256: string,
    device: number | null,
    options: { allowDuplicate?: boolean, at?: Date } = {}
  ): { importId: number } | { duplicateOf: ImportRecord } {
    const importedAt = (options.at ?? new Date()).toISOString()
    const statement = this.#db.prepare('INSERT INTO training_samples (kind, angle, features, device, source, recorded_at, import_id) ' +
      'VALUES (?, ?, ?, ?, ?, ?, ?)')
    // immediate: the duplicate check and the write see the same database
    return this.#db.transaction(() => {
      const earlier = options.allowDuplicate ? undefined : this.earlierImport(contentSha256, device)
      if (earlier) return { duplicateOf: earlier }
      const importId = Number(this.#db.prepare('INSERT INTO training_imports (device, content_sha256, rows, imported_at) VALUES (?, ?, ?, ?)')
        .run(device, contentSha256, samples.length, importedAt).lastInsertRowid)
      for (const sample of samples) {
        statement.run(sample.kind, sample.angle, blobOf(sample.features), sample.device ?? null, sample.source, importedAt, importId)
      }
      return { importId }
    }).immediate()
  }

  /**
   * The latest import of the same content for the same device (null = none)
   * whose samples are still (at least partly) stored: one deleted since does
   * not count.
   */
  earlierImport (contentSha256: string, device: number | null): ImportRecord | undefined {
    const row = this.#db.prepare(`SELECT id, device, content_sha256 AS contentSha256, rows, imported_at AS importedAt FROM training_imports i
      WHERE content_sha256 = ? AND device IS ? AND EXISTS (SELECT 1 FROM training_samples WHERE import_id = i.id)
      ORDER BY id DESC LIMIT 1`).get(contentSha256, device) as ImportRecord | undefined
    return row
  }

  /**
   * All samples of a kind (and filter), oldest first, read on this
   * connection: a door's calibration, the CLI. The global training's run
   * reads its own ({@link readTrainingSet}), off the event loop.
   */
  trainingSet (kind: ModelKind, filter: SampleFilter = {}): StoredTrainingSet {
    return readTrainingSet(this.#db, kind, filter)
  }

  /**
   * Rows per label of a kind, what a training is checked on before it starts:
   * a count, not the rows (the run reads those itself, off the event loop).
   */
  labelCounts (kind: ModelKind): Map<number, number> {
    const rows = this.#db.prepare('SELECT angle, COUNT(*) AS count FROM training_samples WHERE kind = ? GROUP BY angle')
      .all(kind) as Array<{ angle: number, count: number }>
    return new Map(rows.map((row) => [row.angle, row.count]))
  }

  /** The database file: a training run opens it itself to read its samples. */
  get file (): string {
    return this.#db.name
  }

  /** The id of the newest sample (0 when there is none): later samples have higher ids. */
  lastId (): number {
    return (this.#db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM training_samples').get() as { id: number }).id
  }

  /** How many samples of a kind match every given filter. */
  countWhere (kind: ModelKind, filter: SampleFilter): number {
    const { where, values } = whereOf(kind, filter)
    return (this.#db.prepare(`SELECT COUNT(*) AS n FROM training_samples WHERE ${where}`).get(...values) as { n: number }).n
  }

  /** How many samples of a kind are stored. */
  count (kind: ModelKind): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM training_samples WHERE kind = ?').get(kind) as { n: number }).n
  }

  /**
   * Removes the samples of a kind that match every given filter (a device of
   * null matches samples stored without one).
   * @returns how many were removed
   */
  delete (kind: ModelKind, filter: SampleFilter): number {
    const { where, values } = whereOf(kind, filter)
    const removed = this.#db.prepare(`DELETE FROM training_samples WHERE ${where}`).run(...values).changes
    this.emit('deleted', { kind, filter, removed })
    return removed
  }

  /** Samples per angle among those matching `filter`, ascending. */
  countsByAngle (kind: ModelKind, filter: SampleFilter = {}): LabelCount[] {
    const { where, values } = whereOf(kind, filter)
    return this.#db.prepare(`SELECT angle, COUNT(*) AS count FROM training_samples WHERE ${where} GROUP BY angle ORDER BY angle`).all(...values) as LabelCount[]
  }

  /** Counts per device and label of the samples of one source: every device's in one query. */
  countsByDeviceAndAngle (kind: ModelKind, source: string): Array<{ device: number, angle: number, count: number }> {
    return this.#db.prepare('SELECT device, angle, COUNT(*) AS count FROM training_samples ' +
      'WHERE kind = ? AND source = ? AND device IS NOT NULL GROUP BY device, angle ORDER BY device, angle')
      .all(kind, source) as Array<{ device: number, angle: number, count: number }>
  }

  /** Counts per label, source and device. */
  summary (kind: ModelKind): DatasetSummary {
    const by = (column: string) => this.#db
      .prepare(`SELECT ${column} AS key, COUNT(*) AS count FROM training_samples WHERE kind = ? GROUP BY ${column} ORDER BY ${column}`)
      .all(kind) as Array<{ key: number | string | null, count: number }>
    return {
      kind,
      total: this.count(kind),
      labels: by('angle').map((row) => ({ angle: row.key as number, count: row.count })),
      sources: by('source').map((row) => ({ source: row.key as SampleSource, count: row.count })),
      devices: by('device').map((row) => ({ device: row.key as number | null, count: row.count }))
    }
  }
}

/** Samples per angle, ascending. */
export function labelCounts (angles: Iterable<number>): LabelCount[] {
  const counts = new Map<number, number>()
  for (const angle of angles) counts.set(angle, (counts.get(angle) ?? 0) + 1)
  return [...counts].sort((a, b) => a[0] - b[0]).map(([angle, count]) => ({ angle, count }))
}

/** The WHERE clause of a kind and a filter (a device of null matches samples stored without one). */
/**
 * All samples of a kind (and filter), oldest first, read from a connection:
 * the store's, or a training run's own. The rows are views into one buffer:
 * one allocation instead of one per row.
 */
export function readTrainingSet (db: Pick<Storage['db'], 'prepare'>, kind: ModelKind, filter: SampleFilter = {}): StoredTrainingSet {
  const { where, values } = whereOf(kind, filter)
  const rows = db.prepare(`SELECT angle, features FROM training_samples WHERE ${where} ORDER BY id`).raw().all(...values) as Array<[number, Buffer]>
  let bytes = 0
  for (const [, blob] of rows) bytes += blob.byteLength
  // copied: a Buffer's offset need not be 4-byte aligned
  const all = new Uint8Array(bytes)
  const features: Float32Array[] = new Array(rows.length)
  const angles: number[] = new Array(rows.length)
  let offset = 0
  for (let i = 0; i < rows.length; i++) {
    const [angle, blob] = rows[i]
    all.set(blob, offset)
    features[i] = new Float32Array(all.buffer, offset, blob.byteLength / Float32Array.BYTES_PER_ELEMENT)
    angles[i] = angle
    offset += blob.byteLength
  }
  return { kind, features, angles }
}
function whereOf (kind: ModelKind, filter: SampleFilter): { where: string, values: Array<string | number> } {
  const clauses = ['kind = ?']
  const values: Array<string | number> = [kind]
  if (filter.angle !== undefined) { clauses.push('angle = ?'); values.push(filter.angle) }
  if (filter.source !== undefined) { clauses.push('source = ?'); values.push(filter.source) }
  if (filter.sources !== undefined) { clauses.push(`source IN (${filter.sources.map(() => '?').join(', ') || 'NULL'})`); values.push(...filter.sources) }
  if (filter.afterId !== undefined) { clauses.push('id > ?'); values.push(filter.afterId) }
  if (filter.device === null) clauses.push('device IS NULL')
  else if (filter.device !== undefined) { clauses.push('device = ?'); values.push(filter.device) }
  return { where: clauses.join(' AND '), values }
}

function blobOf (features: Float32Array): Buffer {
  return Buffer.from(features.buffer, features.byteOffset, features.byteLength)
}

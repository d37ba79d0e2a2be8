/**
 * Labelled samples: one row per frame, the features as a float32 BLOB, the
 * door angle, the device and where the sample came from. Rows keep their
 * insertion order (the id), which the blocked split relies on. The tables
 * are `TRAINING_SCHEMA` / `TRAINING_PG_SCHEMA` (training-schema.ts),
 * migrated by the store that opens them.
 */
import { EventEmitter } from 'node:events'
import { SQLITE_TRANSACTION, type MaybePromise, type StoreTransaction } from '../../core/store-transaction.js'
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

/** What a CSV import stored: the new import's id, or the earlier import it duplicates (nothing stored then). */
export type ImportOutcome = { importId: number } | { duplicateOf: ImportRecord }

/**
 * The labelled samples, on SQLite ({@link SqliteSampleStore}) or PostgreSQL
 * (`PostgresSampleStore`, sample-store-postgres.ts). The server keeps one
 * (`fastify.samples`, from the training area), so that a cache of counts (a
 * door's calibration) hears of every delete through its `deleted` event,
 * whoever ran it (on PostgreSQL: whichever instance). The `…Within` methods
 * join a keyed request's transaction (core/store-transaction.ts).
 */
export interface SampleStore extends EventEmitter<{ deleted: [SampleDeletion] }> {
  /** Where a training run reads the samples itself ({@link readTrainingSet}): the SQLite file, or the postgres:// URL. */
  readonly location: string
  /** Stores samples in the transaction `tx`: all of them or, on any error, none. @returns how many were stored */
  insertWithin (tx: StoreTransaction, samples: readonly NewSample[], at?: Date): MaybePromise<number>
  /** Stores samples in a transaction of their own. @returns how many were stored */
  insert (samples: readonly NewSample[], at?: Date): Promise<number>
  /**
   * Stores the samples of one CSV import and the import itself (content hash,
   * device, row count) in the transaction `tx`, unless the same content is
   * stored for the device already and `allowDuplicate` is not set (checked in
   * the same transaction, under a lock, so two importers cannot both pass it).
   */
  insertImportWithin (tx: StoreTransaction, samples: readonly NewSample[], contentSha256: string, device: number | null,
    options?: { allowDuplicate?: boolean, at?: Date }): MaybePromise<ImportOutcome>
  /** The latest import of the same content for the same device whose samples are still (at least partly) stored. */
  earlierImport (contentSha256: string, device: number | null): Promise<ImportRecord | undefined>
  /** All samples of a kind (and filter), oldest first: a door's calibration, the CLI. */
  trainingSet (kind: ModelKind, filter?: SampleFilter): Promise<StoredTrainingSet>
  /** Rows per label of a kind, what a training is checked on before it starts. */
  labelCounts (kind: ModelKind): Promise<Map<number, number>>
  /** The id of the newest sample (0 when there is none): later samples have higher ids. */
  lastId (): Promise<number>
  /** How many samples of a kind match every given filter. */
  countWhere (kind: ModelKind, filter: SampleFilter): Promise<number>
  /** How many samples of a kind are stored. */
  count (kind: ModelKind): Promise<number>
  /** Removes the samples of a kind that match every given filter (a device of null matches samples stored without one). @returns how many */
  delete (kind: ModelKind, filter: SampleFilter): Promise<number>
  /** Samples per angle among those matching `filter`, ascending. */
  countsByAngle (kind: ModelKind, filter?: SampleFilter): Promise<LabelCount[]>
  /** Counts per device and label of the samples of one source: every device's in one query. */
  countsByDeviceAndAngle (kind: ModelKind, source: string): Promise<Array<{ device: number, angle: number, count: number }>>
  /** Counts per label, source and device. */
  summary (kind: ModelKind): Promise<DatasetSummary>
  /** Stops hearing of other instances' deletes (PostgreSQL); the pool is the app's to close. */
  close (): Promise<void>
}

/**
 * The samples in the app's SQLite database. Every method does its work when
 * called and throws when called (a `…Within` returns a plain value), so a
 * call composes inside the app connection's transaction; the others return
 * settled promises to keep the interface.
 */
export class SqliteSampleStore extends EventEmitter<{ deleted: [SampleDeletion] }> implements SampleStore {
  readonly #db: Storage['db']

  constructor (storage: Storage) {
    super()
    storage.migrate(TRAINING_SCHEMA)
    this.#db = storage.db
  }

  get location (): string {
    return this.#db.name
  }

  insertWithin (_tx: StoreTransaction, samples: readonly NewSample[], at = new Date()): number {
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

  async insert (samples: readonly NewSample[], at = new Date()): Promise<number> {
    return this.insertWithin(SQLITE_TRANSACTION, samples, at)
  }

  insertImportWithin (
    _tx: StoreTransaction,
    samples: readonly NewSample[],
    contentSha256: string,
    device: number | null,
    options: { allowDuplicate?: boolean, at?: Date } = {}
  ): ImportOutcome {
    const importedAt = (options.at ?? new Date()).toISOString()
    const statement = this.#db.prepare('INSERT INTO training_samples (kind, angle, features, device, source, recorded_at, import_id) ' +
      'VALUES (?, ?, ?, ?, ?, ?, ?)')
    const store = this.#db.transaction((): ImportOutcome => {
      const earlier = options.allowDuplicate ? undefined : this.#earlierImport(contentSha256, device)
      if (earlier) return { duplicateOf: earlier }
      const importId = Number(this.#db.prepare('INSERT INTO training_imports (device, content_sha256, rows, imported_at) VALUES (?, ?, ?, ?)')
        .run(device, contentSha256, samples.length, importedAt).lastInsertRowid)
      for (const sample of samples) {
        statement.run(sample.kind, sample.angle, blobOf(sample.features), sample.device ?? null, sample.source, importedAt, importId)
      }
      return { importId }
    })
    // immediate: the duplicate check and the write see the same database (inside a caller's transaction it is a savepoint of that)
    return store.immediate()
  }

  async earlierImport (contentSha256: string, device: number | null): Promise<ImportRecord | undefined> {
    return this.#earlierImport(contentSha256, device)
  }

  #earlierImport (contentSha256: string, device: number | null): ImportRecord | undefined {
    return this.#db.prepare(`SELECT id, device, content_sha256 AS contentSha256, rows, imported_at AS importedAt FROM training_imports i
      WHERE content_sha256 = ? AND device IS ? AND EXISTS (SELECT 1 FROM training_samples WHERE import_id = i.id)
      ORDER BY id DESC LIMIT 1`).get(contentSha256, device) as ImportRecord | undefined
  }

  async trainingSet (kind: ModelKind, filter: SampleFilter = {}): Promise<StoredTrainingSet> {
    return readSqliteTrainingSet(this.#db, kind, filter)
  }

  async labelCounts (kind: ModelKind): Promise<Map<number, number>> {
    const rows = this.#db.prepare('SELECT angle, COUNT(*) AS count FROM training_samples WHERE kind = ? GROUP BY angle')
      .all(kind) as Array<{ angle: number, count: number }>
    return new Map(rows.map((row) => [row.angle, row.count]))
  }

  async lastId (): Promise<number> {
    return (this.#db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM training_samples').get() as { id: number }).id
  }

  async countWhere (kind: ModelKind, filter: SampleFilter): Promise<number> {
    const { where, values } = whereOf(kind, filter, sqlitePlaceholder)
    return (this.#db.prepare(`SELECT COUNT(*) AS n FROM training_samples WHERE ${where}`).get(...values) as { n: number }).n
  }

  async count (kind: ModelKind): Promise<number> {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM training_samples WHERE kind = ?').get(kind) as { n: number }).n
  }

  async delete (kind: ModelKind, filter: SampleFilter): Promise<number> {
    return this.deleteNow(kind, filter)
  }

  /** {@link delete}, done when it returns: for a caller that must delete and go on in the same event-loop turn (a capture cancelled). */
  deleteNow (kind: ModelKind, filter: SampleFilter): number {
    const { where, values } = whereOf(kind, filter, sqlitePlaceholder)
    const removed = this.#db.prepare(`DELETE FROM training_samples WHERE ${where}`).run(...values).changes
    this.emit('deleted', { kind, filter, removed })
    return removed
  }

  async countsByAngle (kind: ModelKind, filter: SampleFilter = {}): Promise<LabelCount[]> {
    const { where, values } = whereOf(kind, filter, sqlitePlaceholder)
    return this.#db.prepare(`SELECT angle, COUNT(*) AS count FROM training_samples WHERE ${where} GROUP BY angle ORDER BY angle`).all(...values) as LabelCount[]
  }

  async countsByDeviceAndAngle (kind: ModelKind, source: string): Promise<Array<{ device: number, angle: number, count: number }>> {
    return this.#db.prepare('SELECT device, angle, COUNT(*) AS count FROM training_samples ' +
      'WHERE kind = ? AND source = ? AND device IS NOT NULL GROUP BY device, angle ORDER BY device, angle')
      .all(kind, source) as Array<{ device: number, angle: number, count: number }>
  }

  async summary (kind: ModelKind): Promise<DatasetSummary> {
    const by = (column: string) => this.#db
      .prepare(`SELECT ${column} AS key, COUNT(*) AS count FROM training_samples WHERE kind = ? GROUP BY ${column} ORDER BY ${column}`)
      .all(kind) as Array<{ key: number | string | null, count: number }>
    return summaryOf(kind, await this.count(kind), by('angle'), by('source'), by('device'))
  }

  async close (): Promise<void> {}
}

/** A summary from its counts per column (both engines group the same way). */
type GroupCounts = Array<{ key: number | string | null, count: number }>

export function summaryOf (kind: ModelKind, total: number, angles: GroupCounts, sources: GroupCounts, devices: GroupCounts): DatasetSummary {
  return {
    kind,
    total,
    labels: angles.map((row) => ({ angle: Number(row.key), count: row.count })),
    sources: sources.map((row) => ({ source: row.key as SampleSource, count: row.count })),
    devices: devices.map((row) => ({ device: row.key === null ? null : Number(row.key), count: row.count }))
  }
}

/** Samples per angle, ascending. */
export function labelCounts (angles: Iterable<number>): LabelCount[] {
  const counts = new Map<number, number>()
  for (const angle of angles) counts.set(angle, (counts.get(angle) ?? 0) + 1)
  return [...counts].sort((a, b) => a[0] - b[0]).map(([angle, count]) => ({ angle, count }))
}

/**
 * All samples of a kind (and filter), oldest first, read from an SQLite
 * connection: the store's, or a training run's own.
 */
export function readSqliteTrainingSet (db: Pick<Storage['db'], 'prepare'>, kind: ModelKind, filter: SampleFilter = {}): StoredTrainingSet {
  const { where, values } = whereOf(kind, filter, sqlitePlaceholder)
  const rows = db.prepare(`SELECT angle, features FROM training_samples WHERE ${where} ORDER BY id`).raw().all(...values) as Array<[number, Buffer]>
  return trainingSetOf(kind, rows)
}

/** Rows of (angle, features BLOB) as a training set: the rows are views into one buffer, one allocation instead of one per row. */
export function trainingSetOf (kind: ModelKind, rows: ReadonlyArray<readonly [number, Uint8Array]>): StoredTrainingSet {
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
/** SQLite's parameter: `?`. */
const sqlitePlaceholder = (): string => '?'

/**
 * The WHERE clause of a kind and a filter (a device of null matches samples
 * stored without one), with each engine's parameters: `placeholder(n)` names
 * the n-th value (1-based), `$n` on PostgreSQL.
 */
export function whereOf (kind: ModelKind, filter: SampleFilter, placeholder: (n: number) => string): { where: string, values: Array<string | number> } {
  const values: Array<string | number> = []
  const param = (value: string | number): string => {
    values.push(value)
    return placeholder(values.length)
  }
  const clauses = [`kind = ${param(kind)}`]
  if (filter.angle !== undefined) clauses.push(`angle = ${param(filter.angle)}`)
  if (filter.source !== undefined) clauses.push(`source = ${param(filter.source)}`)
  if (filter.sources !== undefined) clauses.push(`source IN (${filter.sources.map(param).join(', ') || 'NULL'})`)
  if (filter.afterId !== undefined) clauses.push(`id > ${param(filter.afterId)}`)
  if (filter.device === null) clauses.push('device IS NULL')
  else if (filter.device !== undefined) clauses.push(`device = ${param(filter.device)}`)
  return { where: clauses.join(' AND '), values }
}

function blobOf (features: Float32Array): Buffer {
  return Buffer.from(features.buffer, features.byteOffset, features.byteLength)
}

/**
 * The labelled samples on PostgreSQL (`DATABASE_URL`, docs/cluster.md): the
 * store every instance of a cluster shares, so a calibration captured
 * through one instance trains on another. Same interface and answers as
 * {@link SqliteSampleStore}, on the same tables (`TRAINING_SCHEMA`'s, made on
 * PostgreSQL by `TRAINING_PG_SCHEMA`); the `deleted` event reaches every instance
 * through `NOTIFY`, so each one's cache of calibration counts hears of a
 * delete another instance ran.
 */
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { ClientBase, PoolClient, QueryResult, QueryResultRow } from 'pg'
import type { Postgres } from '../../core/postgres.js'
import type { StoreTransaction } from '../../core/store-transaction.js'
import type { ModelKind } from '../../schemas/model.js'
import type { DatasetSummary, LabelCount } from '../../schemas/training.js'
import {
  summaryOf, trainingSetOf, whereOf,
  type ImportOutcome, type ImportRecord, type NewSample, type SampleDeletion, type SampleFilter, type SampleStore, type StoredTrainingSet
} from './sample-store.js'
import { TRAINING_PG_SCHEMA } from './training-schema.js'

/** Where a delete is told to every instance. */
const DELETED_CHANNEL = 'doorsense_samples_deleted'

const pgPlaceholder = (n: number): string => `$${n}`

/** A transaction's client or the pool: what runs one statement. */
interface Queryable {
  query<R extends QueryResultRow> (text: string, values?: unknown[]): Promise<QueryResult<R>>
}

/** One statement's rows. */
async function rowsOf<R extends QueryResultRow> (db: Queryable, text: string, values: unknown[] = []): Promise<R[]> {
  return (await db.query<R>(text, values)).rows
}

export class PostgresSampleStore extends EventEmitter<{ deleted: [SampleDeletion] }> implements SampleStore {
  readonly #db: Postgres
  /** This store's mark on its own notifications, so a delete is emitted once here. */
  readonly #origin = randomUUID()
  #unlisten: (() => void) | undefined

  private constructor (db: Postgres) {
    super()
    this.#db = db
  }

  /** Migrates the training area's tables on `db` and listens for other instances' deletes. */
  static async open (db: Postgres): Promise<PostgresSampleStore> {
    await db.migrate(TRAINING_PG_SCHEMA)
    const store = new PostgresSampleStore(db)
    store.#unlisten = await db.listen(DELETED_CHANNEL, {
      notified: (payload) => {
        const { origin, ...deletion } = JSON.parse(payload) as SampleDeletion & { origin: string }
        if (origin !== store.#origin) store.emit('deleted', deletion)
      },
      // deletes may have been missed: a cache of counts starts again
      reconnected: () => store.emit('deleted', { kind: 'csi', filter: {}, removed: 0 })
    })
    return store
  }

  get location (): string {
    return this.#db.connectionString
  }

  async insertWithin (tx: StoreTransaction, samples: readonly NewSample[], at = new Date()): Promise<number> {
    if (samples.length === 0) return 0
    if (!tx.client) return this.insert(samples, at)
    await insertRows(tx.client, samples, at.toISOString(), null)
    return samples.length
  }

  async insert (samples: readonly NewSample[], at = new Date()): Promise<number> {
    if (samples.length === 0) return 0
    // one statement: all of them or none
    await insertRows(this.#db, samples, at.toISOString(), null)
    return samples.length
  }

  async insertImportWithin (
    tx: StoreTransaction,
    samples: readonly NewSample[],
    contentSha256: string,
    device: number | null,
    options: { allowDuplicate?: boolean, at?: Date } = {}
  ): Promise<ImportOutcome> {
    const store = async (client: PoolClient): Promise<ImportOutcome> => {
      // two instances importing the same content: the second waits here, then finds the first's import
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [contentSha256])
      const earlier = options.allowDuplicate ? undefined : await earlierImportOn(client, contentSha256, device)
      if (earlier) return { duplicateOf: earlier }
      const importedAt = (options.at ?? new Date()).toISOString()
      const [{ id }] = await rowsOf<{ id: number }>(client,
        'INSERT INTO training_imports (device, content_sha256, rows, imported_at) VALUES ($1, $2, $3, $4) RETURNING id',
        [device, contentSha256, samples.length, importedAt])
      await insertRows(client, samples, importedAt, id)
      return { importId: id }
    }
    return tx.client ? store(tx.client) : this.#db.transaction(store)
  }

  async earlierImport (contentSha256: string, device: number | null): Promise<ImportRecord | undefined> {
    return earlierImportOn(this.#db, contentSha256, device)
  }

  async trainingSet (kind: ModelKind, filter: SampleFilter = {}): Promise<StoredTrainingSet> {
    return this.#db.transaction(async (client) => readPostgresTrainingSet(client, kind, filter))
  }

  async labelCounts (kind: ModelKind): Promise<Map<number, number>> {
    const rows = await rowsOf<{ angle: number, count: number }>(this.#db,
      'SELECT angle, COUNT(*)::integer AS count FROM training_samples WHERE kind = $1 GROUP BY angle', [kind])
    return new Map(rows.map((row) => [row.angle, row.count]))
  }

  async lastId (): Promise<number> {
    const [{ id }] = await rowsOf<{ id: string }>(this.#db, 'SELECT COALESCE(MAX(id), 0) AS id FROM training_samples')
    return Number(id)
  }

  async countWhere (kind: ModelKind, filter: SampleFilter): Promise<number> {
    const { where, values } = whereOf(kind, filter, pgPlaceholder)
    const [{ n }] = await rowsOf<{ n: number }>(this.#db, `SELECT COUNT(*)::integer AS n FROM training_samples WHERE ${where}`, values)
    return n
  }

  async count (kind: ModelKind): Promise<number> {
    return this.countWhere(kind, {})
  }

  async delete (kind: ModelKind, filter: SampleFilter): Promise<number> {
    const { where, values } = whereOf(kind, filter, pgPlaceholder)
    const removed = await this.#db.transaction(async (client) => {
      const { rowCount } = await client.query(`DELETE FROM training_samples WHERE ${where}`, values)
      // sent on commit: the other instances hear of it once the rows are gone
      await client.query('SELECT pg_notify($1, $2)', [DELETED_CHANNEL, JSON.stringify({ kind, filter, removed: rowCount ?? 0, origin: this.#origin })])
      return rowCount ?? 0
    })
    this.emit('deleted', { kind, filter, removed })
    return removed
  }

  async countsByAngle (kind: ModelKind, filter: SampleFilter = {}): Promise<LabelCount[]> {
    const { where, values } = whereOf(kind, filter, pgPlaceholder)
    return rowsOf<LabelCount>(this.#db,
      `SELECT angle, COUNT(*)::integer AS count FROM training_samples WHERE ${where} GROUP BY angle ORDER BY angle`, values)
  }

  async countsByDeviceAndAngle (kind: ModelKind, source: string): Promise<Array<{ device: number, angle: number, count: number }>> {
    return rowsOf(this.#db, 'SELECT device, angle, COUNT(*)::integer AS count FROM training_samples ' +
      'WHERE kind = $1 AND source = $2 AND device IS NOT NULL GROUP BY device, angle ORDER BY device, angle', [kind, source])
  }

  async summary (kind: ModelKind): Promise<DatasetSummary> {
    const by = async (column: string) => rowsOf<{ key: number | string | null, count: number }>(this.#db,
      `SELECT ${column} AS key, COUNT(*)::integer AS count FROM training_samples WHERE kind = $1 GROUP BY ${column} ORDER BY ${column} NULLS FIRST`, [kind])
    const [total, angles, sources, devices] = await Promise.all([this.count(kind), by('angle'), by('source'), by('device')])
    return summaryOf(kind, total, angles, sources, devices)
  }

  async close (): Promise<void> {
    this.#unlisten?.()
    this.#unlisten = undefined
  }
}

/** Inserts samples in one statement, in their order (the ids follow it). */
async function insertRows (db: Queryable, samples: readonly NewSample[], recordedAt: string, importId: number | null): Promise<void> {
  await db.query(`INSERT INTO training_samples (kind, angle, features, device, source, recorded_at, import_id)
    SELECT kind, angle, features, device, source, $6, $7
    FROM unnest($1::text[], $2::float8[], $3::bytea[], $4::integer[], $5::text[]) WITH ORDINALITY AS s (kind, angle, features, device, source, n)
    ORDER BY n`, [
    samples.map((sample) => sample.kind),
    samples.map((sample) => sample.angle),
    samples.map((sample) => Buffer.from(sample.features.buffer, sample.features.byteOffset, sample.features.byteLength)),
    samples.map((sample) => sample.device ?? null),
    samples.map((sample) => sample.source),
    recordedAt,
    importId
  ])
}

async function earlierImportOn (db: Queryable, contentSha256: string, device: number | null): Promise<ImportRecord | undefined> {
  const [row] = await rowsOf<ImportRecord>(db, `SELECT id, device, content_sha256 AS "contentSha256", rows, imported_at AS "importedAt" FROM training_imports i
    WHERE content_sha256 = $1 AND device IS NOT DISTINCT FROM $2 AND EXISTS (SELECT 1 FROM training_samples WHERE import_id = i.id)
    ORDER BY id DESC LIMIT 1`, [contentSha256, device])
  return row
}

/** All samples of a kind (and filter), oldest first, read from PostgreSQL: one of the store's connections, or a training run's own. */
export async function readPostgresTrainingSet (db: ClientBase, kind: ModelKind, filter: SampleFilter = {}): Promise<StoredTrainingSet> {
  const { where, values } = whereOf(kind, filter, pgPlaceholder)
  const text = `SELECT angle, features FROM training_samples WHERE ${where} ORDER BY id`
  const { rows } = await db.query<[number, Buffer]>({ text, values, rowMode: 'array' })
  return trainingSetOf(kind, rows)
}

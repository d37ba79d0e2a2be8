/**
 * The log of training runs in the `model_trainings` table: when each started
 * and ended, how, and why it failed. Two stores behind one interface
 * ({@link TrainingLog}): SQLite (`MODEL_SCHEMA`, model-schema.ts, which
 * ModelStore migrates before it builds this) and PostgreSQL
 * (`MODEL_PG_SCHEMA`, migrated by `ModelStore.openPostgresTables`), where
 * the log is the cluster's: every instance writes its runs there, and each
 * row names the instance that runs it.
 */
import type Database from 'better-sqlite3'
import type { Postgres } from '../../core/postgres.js'
import type { ModelKind, TrainingFailure } from '../../schemas/model.js'

/** How a training run ended. */
export type TrainingEnd = 'finished' | 'failed' | 'interrupted'

/** The log of training runs, on either engine (see the module comment). */
export interface TrainingLog {
  /** Records a training that starts now. @returns its id */
  beginTraining (version: string, kind: ModelKind): Promise<number>
  /** Records how a training ended. */
  endTraining (id: number, status: TrainingEnd, seconds: number, message?: string): Promise<void>
  /** The failure of the latest training that ended, if it failed or was interrupted. */
  lastFailure (): Promise<TrainingFailure | undefined>
  /** Seconds the latest finished training took. */
  lastTrainingSeconds (): Promise<number | undefined>
  /**
   * Start-up only: a training still "running" that this process's
   * predecessor on the same store began belongs to a process that died, so
   * it is marked interrupted, with a message saying so. (SQLite: every one;
   * PostgreSQL: this instance's only, the others' may be running.)
   * @returns one failure per training marked, in the order they started
   */
  markRunningInterrupted (): Promise<TrainingFailure[]>
}

interface TrainingRow {
  id: number
  version: string
  started_at: string
  ended_at: string | null
  status: 'running' | TrainingEnd
  seconds: number | null
  message: string | null
}

/** The failure a row that ended badly tells of; undefined for none or a finished one. */
function failureOf (row: Pick<TrainingRow, 'version' | 'started_at' | 'ended_at' | 'status' | 'message'> | undefined): TrainingFailure | undefined {
  if (!row || row.status === 'finished') return undefined
  return { at: row.ended_at ?? row.started_at, message: row.message ?? `training of ${row.version} ${row.status}`, version: row.version }
}

/** What a training left running by a process that died is marked with. */
function interruptedMessage (version: string, startedAt: string): string {
  return `training of ${version} (started ${startedAt}) was interrupted: the server stopped or crashed while it ran`
}

/** The `model_trainings` table of the service's SQLite database: the runs of this DATA_DIR. */
export class SqliteTrainingLog implements TrainingLog {
  readonly #db: Database.Database

  /** @param db a database `MODEL_SCHEMA` is migrated on */
  constructor (db: Database.Database) {
    this.#db = db
  }

  async beginTraining (version: string, kind: ModelKind): Promise<number> {
    const result = this.#db.prepare("INSERT INTO model_trainings (version, kind, started_at, status) VALUES (?, ?, ?, 'running')")
      .run(version, kind, new Date().toISOString())
    return Number(result.lastInsertRowid)
  }

  async endTraining (id: number, status: TrainingEnd, seconds: number, message?: string): Promise<void> {
    this.#db.prepare('UPDATE model_trainings SET status = ?, ended_at = ?, seconds = ?, message = ? WHERE id = ?')
      .run(status, new Date().toISOString(), seconds, message ?? null, id)
  }

  async lastFailure (): Promise<TrainingFailure | undefined> {
    return failureOf(this.#db.prepare("SELECT * FROM model_trainings WHERE status != 'running' ORDER BY id DESC LIMIT 1").get() as TrainingRow | undefined)
  }

  async lastTrainingSeconds (): Promise<number | undefined> {
    const row = this.#db.prepare("SELECT seconds FROM model_trainings WHERE status = 'finished' ORDER BY id DESC LIMIT 1")
      .get() as { seconds: number } | undefined
    return row?.seconds
  }

  /** Every training still "running": one process at a time serves a DATA_DIR, so none of them still runs. */
  async markRunningInterrupted (): Promise<TrainingFailure[]> {
    const running = this.#db.prepare("SELECT * FROM model_trainings WHERE status = 'running'").all() as TrainingRow[]
    const now = new Date().toISOString()
    const failures: TrainingFailure[] = []
    for (const row of running) {
      const message = interruptedMessage(row.version, row.started_at)
      this.#db.prepare("UPDATE model_trainings SET status = 'interrupted', ended_at = ?, message = ? WHERE id = ?").run(now, message, row.id)
      failures.push({ at: now, message, version: row.version })
    }
    return failures
  }
}

/**
 * The `model_trainings` table in PostgreSQL, the cluster's log: the latest
 * failure and the latest training's seconds are the cluster's latest. Each
 * run records the instance that began it (`instance`), and
 * {@link markRunningInterrupted} marks only the runs of this one: another
 * instance's "running" row may well be running, on a live instance.
 *
 * So `instance` must be the same across restarts of one instance (its
 * runs left running by a crash are then its own to mark when it comes
 * back) and differ between instances: ModelStore passes INSTANCE_URL, or
 * else host name and DATA_DIR. An instance that never comes back leaves its
 * running rows as they are; they count for neither the last failure nor the
 * last seconds.
 */
export class PostgresTrainingLog implements TrainingLog {
  readonly #pg: Postgres
  /** This instance, as its rows name it. */
  readonly instance: string

  /** @param pg a database `MODEL_PG_SCHEMA` is migrated on (ModelStore.openPostgresTables) */
  constructor (pg: Postgres, instance: string) {
    this.#pg = pg
    this.instance = instance
  }

  async beginTraining (version: string, kind: ModelKind): Promise<number> {
    const { rows } = await this.#pg.query<{ id: string }>(
      "INSERT INTO model_trainings (version, kind, instance, started_at, status) VALUES ($1, $2, $3, $4, 'running') RETURNING id",
      [version, kind, this.instance, new Date().toISOString()])
    return Number(rows[0].id)
  }

  async endTraining (id: number, status: TrainingEnd, seconds: number, message?: string): Promise<void> {
    await this.#pg.query('UPDATE model_trainings SET status = $2, ended_at = $3, seconds = $4, message = $5 WHERE id = $1',
      [id, status, new Date().toISOString(), seconds, message ?? null])
  }

  async lastFailure (): Promise<TrainingFailure | undefined> {
    const { rows } = await this.#pg.query<TrainingRow>("SELECT * FROM model_trainings WHERE status <> 'running' ORDER BY id DESC LIMIT 1")
    return failureOf(rows[0])
  }

  async lastTrainingSeconds (): Promise<number | undefined> {
    const { rows } = await this.#pg.query<{ seconds: number }>("SELECT seconds FROM model_trainings WHERE status = 'finished' ORDER BY id DESC LIMIT 1")
    return rows[0]?.seconds
  }

  /** This instance's trainings still "running" (a predecessor of this process's, dead); the other instances' are left alone. */
  async markRunningInterrupted (): Promise<TrainingFailure[]> {
    return this.#pg.transaction(async (client) => {
      // locked until the end: what this marks is what it reports, whatever else writes meanwhile
      const { rows } = await client.query<{ id: string, version: string, started_at: string }>(
        "SELECT id, version, started_at FROM model_trainings WHERE status = 'running' AND instance = $1 ORDER BY id FOR UPDATE", [this.instance])
      const now = new Date().toISOString()
      const failures: TrainingFailure[] = []
      for (const row of rows) {
        const message = interruptedMessage(row.version, row.started_at)
        await client.query("UPDATE model_trainings SET status = 'interrupted', ended_at = $2, message = $3 WHERE id = $1", [row.id, now, message])
        failures.push({ at: now, message, version: row.version })
      }
      return failures
    })
  }
}

/**
 * The log of training runs in the `model_trainings` table: when each started
 * and ended, how, and why it failed. The table is the model area's
 * (`MODEL_SCHEMA`, model-schema.ts), which ModelStore migrates before it builds this.
 */
import type Database from 'better-sqlite3'
import type { ModelKind, TrainingFailure } from '../../schemas/model.js'

/** How a training run ended. */
export type TrainingEnd = 'finished' | 'failed' | 'interrupted'

interface TrainingRow {
  id: number
  version: string
  started_at: string
  ended_at: string | null
  status: 'running' | TrainingEnd
  seconds: number | null
  message: string | null
}

/** The `model_trainings` table. */
export class TrainingLog {
  readonly #db: Database.Database

  /** @param db a database `MODEL_SCHEMA` is migrated on */
  constructor (db: Database.Database) {
    this.#db = db
  }

  /** Records a training that starts now. @returns its id */
  beginTraining (version: string, kind: ModelKind): number {
    const result = this.#db.prepare("INSERT INTO model_trainings (version, kind, started_at, status) VALUES (?, ?, ?, 'running')")
      .run(version, kind, new Date().toISOString())
    return Number(result.lastInsertRowid)
  }

  /** Records how a training ended. */
  endTraining (id: number, status: TrainingEnd, seconds: number, message?: string): void {
    this.#db.prepare('UPDATE model_trainings SET status = ?, ended_at = ?, seconds = ?, message = ? WHERE id = ?')
      .run(status, new Date().toISOString(), seconds, message ?? null, id)
  }

  /** The failure of the latest training, if the latest one failed or was interrupted. */
  lastFailure (): TrainingFailure | undefined {
    const row = this.#db.prepare("SELECT * FROM model_trainings WHERE status != 'running' ORDER BY id DESC LIMIT 1").get() as TrainingRow | undefined
    if (!row || row.status === 'finished') return undefined
    return { at: row.ended_at ?? row.started_at, message: row.message ?? `training of ${row.version} ${row.status}`, version: row.version }
  }

  /** Seconds the latest finished training took. */
  lastTrainingSeconds (): number | undefined {
    const row = this.#db.prepare("SELECT seconds FROM model_trainings WHERE status = 'finished' ORDER BY id DESC LIMIT 1")
      .get() as { seconds: number } | undefined
    return row?.seconds
  }

  /**
   * Start-up only: a training still "running" belongs to a process that died,
   * so it is marked interrupted, with a message saying so.
   * @returns one failure per training marked
   */
  markRunningInterrupted (): TrainingFailure[] {
    const running = this.#db.prepare("SELECT * FROM model_trainings WHERE status = 'running'").all() as TrainingRow[]
    const now = new Date().toISOString()
    const failures: TrainingFailure[] = []
    for (const row of running) {
      const message = `training of ${row.version} (started ${row.started_at}) was interrupted: the server stopped or crashed while it ran`
      this.#db.prepare("UPDATE model_trainings SET status = 'interrupted', ended_at = ?, message = ? WHERE id = ?").run(now, message, row.id)
      failures.push({ at: now, message, version: row.version })
    }
    return failures
  }
}

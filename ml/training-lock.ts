/**
 * The hook a training asks before it starts: in a cluster only one instance
 * may train a scope (the global model, or one door's) at a time, so the
 * model handler takes a lease on the scope first and gives it back when the
 * run ends. Embedded, there is no hook (the handler's own busy checks are
 * enough in one process). ml/ defines the shape; the cluster area supplies it.
 */
import type { TrainingProgress } from '../schemas/model.js'

/** What a training is for: the global model, or one door's own. */
export type TrainingScope = { kind: 'global' } | { kind: 'door', device: number }

/** The right to train a scope, held until {@link TrainingLease.release}. */
export interface TrainingLease {
  /** The run's version once it is named, and its progress: what the other instances show. Never throws. */
  update (status: { version?: string, progress?: Omit<TrainingProgress, 'state'> }): void
  /** Gives the scope back; never rejects (a lease that cannot be deleted lapses by itself). */
  release (): Promise<void>
}

/**
 * Takes the scope for one run.
 * @throws a 409 error (TrainingBusyError, CalibrationBusyError) naming who holds it when another run does
 */
export type TrainingLock = (scope: TrainingScope) => Promise<TrainingLease>

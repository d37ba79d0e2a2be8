/**
 * Start-up recovery over the version folders, their catalogue and the
 * training log: whatever moment the last process died at, afterwards only
 * versions whose folder verifies are usable, each kind's active version is one
 * of them (or none), and no training is left "running".
 */
import type { ModelKind, TrainingFailure } from '../../schemas/model.js'
import type { TrainingLog } from './training-log.js'
import type { VersionCatalogue } from './version-catalogue.js'
import type { VersionFiles, VersionMetaFile } from './version-files.js'

/** What start-up found and did. */
export interface RecoveryReport {
  /** Temp folders of interrupted writes, removed. */
  removedTemp: string[]
  /** Complete folders written just before a crash (no row yet), now listed, not active. */
  adopted: string[]
  /** Folders or rows that do not verify: ignored, never loaded. */
  broken: Array<{ version: string, reason: string }>
  /** Kinds whose active version was broken and which fell back to an older one (or to none). */
  fellBack: Array<{ kind: ModelKind, from: string, to: string | undefined }>
  /** Trainings that were running when the process died. */
  interrupted: TrainingFailure[]
  /**
   * A new cluster's catalogue (shared, empty until this start): the versions
   * made active as this DATA_DIR's embedded catalogue had them (ModelStore.recover).
   */
  seeded?: string[]
}

/** The three parts recovery works over. */
export interface RecoveryParts {
  files: VersionFiles
  catalogue: VersionCatalogue
  trainings: TrainingLog
}

/**
 * Removes temp folders, verifies every recorded version, adopts complete
 * folders that a crash left without a row, falls back from a broken active
 * version to the last good one, and marks trainings left "running" as
 * interrupted. Run once at start-up, before anything else touches the parts.
 *
 * On a shared catalogue (PostgreSQL: the cluster's rows, this instance's
 * folders) a row whose folder is not here is another instance's version,
 * neither usable nor broken here (the cluster's model sync brings it when
 * it is activated); a folder without a row is adopted unless another
 * instance recorded the name first (then it must hold the same weights);
 * and nothing falls back: the active versions are the cluster's, which the
 * other instances may well be serving, so a folder broken here makes this
 * instance serve none rather than move every instance off it.
 * @param usable filled with the meta file of every version that verified
 */
export async function recoverVersions ({ files, catalogue, trainings }: RecoveryParts, usable: Map<string, VersionMetaFile>): Promise<RecoveryReport> {
  const report: RecoveryReport = { removedTemp: [], adopted: [], broken: [], fellBack: [], interrupted: [] }
  // a temp folder is a write that never reached its rename: never a version
  report.removedTemp = files.removeTempFolders()

  const recorded = await catalogue.recorded()
  for (const { version, weightsSha256 } of recorded) {
    if (catalogue.shared && !files.exists(version)) continue
    const verified = files.verify(version, weightsSha256)
    if (typeof verified === 'string') report.broken.push({ version, reason: verified })
    else usable.set(version, verified)
  }

  // renamed into place but the process died before the row: the folder is complete, so keep it
  for (const name of files.unrecordedFolders(new Set(recorded.map((row) => row.version)))) {
    const verified = files.verify(name)
    if (typeof verified === 'string') {
      report.broken.push({ version: name, reason: verified })
      continue
    }
    if (catalogue.shared) {
      const held = await catalogue.insertIfAbsent(verified)
      if (held !== verified.weightsSha256) {
        report.broken.push({ version: name, reason: `weights SHA-256 ${verified.weightsSha256} does not match the database (${held})` })
        continue
      }
    } else {
      await catalogue.insert(verified)
    }
    usable.set(name, verified)
    report.adopted.push(name)
  }

  if (!catalogue.shared) {
    for (const kind of ['csi', 'rssi'] as const) {
      const active = await catalogue.activeVersion(kind)
      if (active === undefined || usable.has(active)) continue
      const to = (await catalogue.previouslyActive(kind)).find((version) => usable.has(version))
      await catalogue.fallBack(kind, to)
      report.fellBack.push({ kind, from: active, to })
    }

    // a door whose active version broke falls back to its previous good one, else to the global model
    for (const [device, active] of await catalogue.activeDoorVersions()) {
      if (usable.has(active)) continue
      const to = (await catalogue.previouslyActiveForDoor(device)).find((version) => usable.has(version))
      if (to === undefined) await catalogue.deactivateDoor(device)
      else await catalogue.activate(to, 'csi')
      report.fellBack.push({ kind: 'csi', from: active, to })
    }
  }

  report.interrupted = await trainings.markRunningInterrupted()
  return report
}

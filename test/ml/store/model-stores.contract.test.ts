/**
 * The contract of the model area's two stores, the version catalogue
 * (version-catalogue.ts) and the training log (training-log.ts): the same
 * cases against SQLite in a temp DATA_DIR and PostgreSQL in a fresh database
 * (skipped with the reason when it is not running, outside CI). A "restart"
 * is a new store over the same database; "elsewhere" is a second handle on it
 * (another process on the DATA_DIR, or another instance of a cluster).
 *
 * Then what only a shared catalogue has, through ModelStore: instances with
 * DATA_DIRs of their own on one PostgreSQL (another's version is not broken
 * here, its row is kept when its folder is imported, a folder broken here
 * moves no instance off the cluster's active version, a new cluster's
 * catalogue is seeded from the first instance's embedded one), and the runs
 * another live instance has "running", which a restart here leaves alone.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Postgres } from '../../../core/postgres.js'
import { Storage } from '../../../core/storage.js'
import { DOOR_MODEL_FORMAT, type DoorModelMeta } from '../../../ml/door/model-types.js'
import { MODEL_SCHEMA } from '../../../ml/store/model-schema.js'
import { ModelStore, WEIGHTS_FILE } from '../../../ml/store/model-store.js'
import { SqliteTrainingLog, type TrainingLog } from '../../../ml/store/training-log.js'
import { SqliteVersionCatalogue, type VersionCatalogue } from '../../../ml/store/version-catalogue.js'
import type { VersionMetaFile } from '../../../ml/store/version-files.js'
import type { ModelVersionInfo } from '../../../schemas/model.js'
import { metaFileOf, smallModel } from '../../fixtures/version.js'
import { testDatabaseOrSkip } from '../../fixtures/postgres.js'
import { tempDir } from '../../helper.js'

/** The two stores, as one process opens them. */
interface Stores {
  catalogue: VersionCatalogue
  trainings: TrainingLog
}

/** One test's database, through either engine. */
interface Backend {
  /**
   * The stores over the database as a process starting now opens them; on
   * PostgreSQL as instance `instance` (default 'a'), which SQLite has no notion of.
   */
  open (instance?: string): Promise<Stores>
}

interface Engine {
  name: 'sqlite' | 'postgres'
  /** A backend on a fresh database, or undefined once the test is skipped. */
  backend (t: TestContext): Promise<Backend | undefined>
}

const sqlite: Engine = {
  name: 'sqlite',
  async backend (t) {
    const dir = tempDir(t)
    return {
      async open () {
        const storage = new Storage(dir)
        t.after(() => storage.close())
        storage.migrate(MODEL_SCHEMA)
        return { catalogue: new SqliteVersionCatalogue(storage.db), trainings: new SqliteTrainingLog(storage.db) }
      }
    }
  }
}

/** A pool on a test database, closed after the test. */
async function pool (t: TestContext, url: string): Promise<Postgres> {
  const pg = await Postgres.open(url, { max: 2, applicationName: 'doorsense-contract' })
  t.after(() => pg.close())
  return pg
}

const postgres: Engine = {
  name: 'postgres',
  async backend (t) {
    const database = await testDatabaseOrSkip(t)
    if (!database) return undefined
    return {
      async open (instance = 'a') {
        const pg = await pool(t, database.url)
        return ModelStore.openPostgresTables(pg, instance)
      }
    }
  }
}

/** A door version's meta file: its door-state accuracy and the verdict of its calibration gate, as the catalogue reads them. */
type Gate = { activate: boolean, balancedAccuracy: number | null, refusedBy?: string }
function doorFile (version: string, device: number, gate: Gate, createdAt: string): VersionMetaFile {
  const meta = {
    format: DOOR_MODEL_FORMAT,
    labels: [0, 15, 90],
    trainingSeconds: 2.25,
    evaluation: { doorState: { accuracy: 0.875 } },
    gate: { floor: 0.8, acceptAjarAsClosed: false, closedOrAjar: [], reasons: [], ...gate }
  } as unknown as DoorModelMeta
  return { version, kind: 'csi', createdAt, weightsFile: 'weights.bin', weightsSha256: `${device}`.padStart(64, 'd'), device, meta }
}

const T0 = '2025-01-01T00:00:00.000Z'
const T1 = '2025-02-01T00:00:00.000Z'
const T2 = '2025-03-01T00:00:00.000Z'

/** Every version's row of the cases below, as `info` answers before any activation. */
const EXPECTED: Record<string, ModelVersionInfo> = {
  'csi-old': {
    version: 'csi-old',
    kind: 'csi',
    createdAt: T0,
    active: false,
    labels: [0, 90],
    trainingSeconds: 1,
    weightsSha256: 'a'.repeat(64),
    scope: 'global',
    accuracy: 0.75
  },
  'rssi-x': {
    version: 'rssi-x', kind: 'rssi', createdAt: T1, active: false, labels: [0, 90], trainingSeconds: 3, weightsSha256: 'c'.repeat(64), scope: 'global'
  },
  'door5-refused': {
    version: 'door5-refused',
    kind: 'csi',
    createdAt: T2,
    active: false,
    labels: [0, 15, 90],
    trainingSeconds: 2.25,
    weightsSha256: '5'.padStart(64, 'd'),
    scope: 'door',
    device: 5,
    accuracy: 0.875,
    gate: { passed: false, balancedAccuracy: 0.625, refusedBy: 'floor' }
  },
  'door32767-passed': {
    version: 'door32767-passed',
    kind: 'csi',
    createdAt: T2,
    active: false,
    labels: [0, 15, 90],
    trainingSeconds: 2.25,
    weightsSha256: '32767'.padStart(64, 'd'),
    scope: 'door',
    device: 32767,
    accuracy: 0.875,
    gate: { passed: true }
  }
}

async function insertAll (catalogue: VersionCatalogue): Promise<void> {
  await catalogue.insert(metaFileOf('csi-old', smallModel(1), 'a'.repeat(64), T0))
  const rssi = smallModel(3, 'rssi')
  delete rssi.meta.evaluation
  await catalogue.insert(metaFileOf('rssi-x', rssi, 'c'.repeat(64), T1))
  await catalogue.insert(doorFile('door5-refused', 5, { activate: false, balancedAccuracy: 0.625, refusedBy: 'floor' }, T2))
  await catalogue.insert(doorFile('door32767-passed', 32767, { activate: true, balancedAccuracy: null }, T2))
}

/** Activation stamps are to the millisecond: a pause keeps "latest activation first" unambiguous. */
const tick = () => sleep(3)

for (const engine of [sqlite, postgres]) {
  test(`${engine.name}: versions are recorded with every column, listed newest first, and read back alike after a restart`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const { catalogue } = await backend.open()
    assert.deepEqual(await catalogue.recorded(), [])
    assert.deepEqual(await catalogue.list(), [])
    await insertAll(catalogue)

    for (const stores of [catalogue, (await backend.open()).catalogue]) {
      assert.equal(await stores.has('csi-old'), true)
      assert.equal(await stores.has('csi-none'), false)
      assert.deepEqual(await stores.recorded(), ['csi-old', 'rssi-x', 'door5-refused', 'door32767-passed'].map((version) => ({
        version, weightsSha256: EXPECTED[version].weightsSha256
      })), 'in insertion order')
      // newest first; the two door versions of one time by name, descending (byte order: '3' < '5')
      assert.deepEqual((await stores.list()).map((info) => info.version), ['door5-refused', 'door32767-passed', 'rssi-x', 'csi-old'])
      assert.deepEqual((await stores.list('rssi')).map((info) => info.version), ['rssi-x'])
      for (const [version, expected] of Object.entries(EXPECTED)) assert.deepEqual(await stores.info(version), expected, version)
      assert.deepEqual(await stores.list(), [EXPECTED['door5-refused'], EXPECTED['door32767-passed'], EXPECTED['rssi-x'], EXPECTED['csi-old']])
      assert.equal('accuracy' in (await stores.info('rssi-x') ?? {}), false, 'no evaluation, no accuracy key')
      assert.equal(await stores.info('csi-none'), undefined)
      assert.equal(await stores.deviceOf('door5-refused'), 5)
      assert.equal(await stores.deviceOf('csi-old'), undefined)
      assert.equal(await stores.deviceOf('csi-none'), undefined)
    }
    await assert.rejects(catalogue.insert(metaFileOf('csi-old', smallModel(2), 'e'.repeat(64), T2)), /UNIQUE|unique constraint/)
    assert.deepEqual(await catalogue.info('csi-old'), EXPECTED['csi-old'], 'the row as it was')
  })

  test(`${engine.name}: insertIfAbsent records a new name, keeps a recorded one as it is, and says which weights the row holds`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const { catalogue } = await backend.open()
    assert.equal(await catalogue.insertIfAbsent(metaFileOf('csi-a', smallModel(1), 'a'.repeat(64), T0)), 'a'.repeat(64))
    assert.equal(await catalogue.insertIfAbsent(metaFileOf('csi-a', smallModel(2), 'b'.repeat(64), T1)), 'a'.repeat(64))
    assert.deepEqual(await catalogue.recorded(), [{ version: 'csi-a', weightsSha256: 'a'.repeat(64) }])
    assert.equal((await catalogue.info('csi-a'))?.createdAt, T0)
  })

  test(`${engine.name}: one active version per kind and per door; activations are remembered; a fallback is no activation`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const { catalogue } = await backend.open()
    await insertAll(catalogue)
    await catalogue.insert(metaFileOf('csi-new', smallModel(2), 'b'.repeat(64), T1))
    await catalogue.insert(doorFile('door5-second', 5, { activate: true, balancedAccuracy: 0.9 }, T2))
    assert.equal(await catalogue.activeVersion('csi'), undefined)
    assert.deepEqual(await catalogue.activeDoorVersions(), new Map())

    await catalogue.activate('csi-old', 'csi')
    await tick()
    await catalogue.activate('rssi-x', 'rssi')
    await catalogue.activate('door5-refused', 'csi')
    await tick()
    await catalogue.activate('csi-new', 'csi')
    await catalogue.activate('door32767-passed', 'csi')
    await tick()
    await catalogue.activate('door5-second', 'csi')

    const check = async (stores: VersionCatalogue): Promise<void> => {
      assert.equal(await stores.activeVersion('csi'), 'csi-new', 'a door version is no global one')
      assert.equal(await stores.activeVersion('rssi'), 'rssi-x')
      assert.deepEqual(await stores.activeDoorVersions(), new Map([[5, 'door5-second'], [32767, 'door32767-passed']]))
      assert.deepEqual((await stores.list()).filter((info) => info.active).map((info) => info.version).sort(),
        ['csi-new', 'door32767-passed', 'door5-second', 'rssi-x'])
      assert.equal((await stores.info('door5-refused'))?.active, false)
      assert.deepEqual(await stores.previouslyActive('csi'), ['csi-new', 'csi-old'])
      assert.deepEqual(await stores.previouslyActiveForDoor(5), ['door5-second', 'door5-refused'])
      assert.deepEqual(await stores.previouslyActiveForDoor(6), [])
    }
    await check(catalogue)
    await check((await backend.open()).catalogue)

    await catalogue.fallBack('csi', 'csi-old')
    assert.equal(await catalogue.activeVersion('csi'), 'csi-old')
    assert.deepEqual(await catalogue.previouslyActive('csi'), ['csi-new', 'csi-old'], 'a fallback stamps nothing')
    await catalogue.fallBack('csi', undefined)
    assert.equal(await catalogue.activeVersion('csi'), undefined)
    assert.equal(await catalogue.activeVersion('rssi'), 'rssi-x', 'the other kind stays')
    await catalogue.deactivateDoor(5)
    await catalogue.deactivateDoor(77) // none: nothing happens
    assert.deepEqual(await catalogue.activeDoorVersions(), new Map([[32767, 'door32767-passed']]))
    assert.deepEqual(await catalogue.previouslyActiveForDoor(5), ['door5-second', 'door5-refused'], 'its versions stay listed')

    // the active row must name a recorded version; nothing changes when it does not
    await assert.rejects(catalogue.activate('csi-unrecorded', 'csi'), /FOREIGN KEY|foreign key constraint/)
    assert.equal(await catalogue.activeVersion('csi'), undefined)
    assert.deepEqual(await (await backend.open()).catalogue.activeDoorVersions(), new Map([[32767, 'door32767-passed']]))
  })

  test(`${engine.name}: changedElsewhere answers true first, then only after a version was recorded elsewhere`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const { catalogue } = await backend.open()
    const elsewhere = (await backend.open('b')).catalogue
    assert.equal(await catalogue.changedElsewhere(), true, 'the first call')
    assert.equal(await catalogue.changedElsewhere(), false)
    assert.equal(await catalogue.changedElsewhere(), false)
    await elsewhere.insert(metaFileOf('csi-a', smallModel(1), 'a'.repeat(64), T0))
    assert.equal(await catalogue.changedElsewhere(), true)
    assert.equal(await catalogue.changedElsewhere(), false)
    await elsewhere.insertIfAbsent(metaFileOf('csi-b', smallModel(2), 'b'.repeat(64), T1))
    assert.equal(await catalogue.changedElsewhere(), true)
    assert.deepEqual((await catalogue.recorded()).map((row) => row.version), ['csi-a', 'csi-b'])
  })

  test(`${engine.name}: the latest ended run decides the failure, the latest finished one the seconds; a restart reads them back`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const { trainings: log } = await backend.open()
    assert.equal(await log.lastFailure(), undefined)
    assert.equal(await log.lastTrainingSeconds(), undefined)

    await log.endTraining(await log.beginTraining('csi-a', 'csi'), 'finished', 12.5)
    const failed = await log.beginTraining('csi-b', 'csi')
    await log.endTraining(failed, 'failed', 1, 'out of memory')
    const failure = await log.lastFailure()
    assert.equal(failure?.version, 'csi-b')
    assert.equal(failure?.message, 'out of memory')
    assert.ok(!Number.isNaN(Date.parse(failure?.at ?? '')))
    assert.equal(await log.lastTrainingSeconds(), 12.5)
    const again = (await backend.open()).trainings
    assert.deepEqual(await again.lastFailure(), failure)
    assert.equal(await again.lastTrainingSeconds(), 12.5)

    const running = await log.beginTraining('csi-c', 'csi')
    assert.equal((await log.lastFailure())?.version, 'csi-b', 'a running training has not ended')
    await log.endTraining(await log.beginTraining('rssi-d', 'rssi'), 'interrupted', 2)
    assert.equal((await log.lastFailure())?.message, 'training of rssi-d interrupted', 'no message: one is made up')
    await log.endTraining(running, 'finished', 3.75)
    assert.equal((await log.lastFailure())?.version, 'rssi-d', 'the latest run to start decides, not the latest to end')
    await log.endTraining(await log.beginTraining('csi-e', 'csi'), 'finished', 4)
    assert.equal(await log.lastFailure(), undefined)
    assert.equal(await log.lastTrainingSeconds(), 4)
    assert.equal(await (await backend.open()).trainings.lastTrainingSeconds(), 4)
  })

  test(`${engine.name}: at a restart, the runs left running are marked interrupted with a message, once`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const before = (await backend.open()).trainings
    await before.endTraining(await before.beginTraining('csi-done', 'csi'), 'finished', 4)
    await before.beginTraining('csi-a', 'csi')
    await before.beginTraining('rssi-b', 'rssi')

    const log = (await backend.open()).trainings
    const interrupted = await log.markRunningInterrupted()
    assert.deepEqual(interrupted.map((failure) => failure.version), ['csi-a', 'rssi-b'], 'in the order they started')
    for (const failure of interrupted) {
      assert.match(failure.message, /^training of \S+ \(started .+\) was interrupted: the server stopped or crashed while it ran$/)
      assert.ok(!Number.isNaN(Date.parse(failure.at)))
    }
    assert.deepEqual(await log.lastFailure(), interrupted[1])
    assert.equal(await log.lastTrainingSeconds(), 4)
    assert.deepEqual(await log.markRunningInterrupted(), [], 'nothing is left running')
    assert.deepEqual(await (await backend.open()).trainings.lastFailure(), interrupted[1])
  })
}

test('postgres: a restart marks only its own instance\'s runs interrupted; another live instance\'s keep running, and end as they end', async (t) => {
  const backend = await postgres.backend(t)
  if (!backend) return
  const a = (await backend.open('a')).trainings
  const b = (await backend.open('b')).trainings
  await a.beginTraining('csi-a', 'csi')
  const onB = await b.beginTraining('door5-b', 'csi')

  // A crashes and comes back; B goes on training
  const restarted = (await backend.open('a')).trainings
  assert.deepEqual((await restarted.markRunningInterrupted()).map((failure) => failure.version), ['csi-a'])
  assert.equal((await restarted.lastFailure())?.version, 'csi-a')
  await b.endTraining(onB, 'finished', 6.5)
  assert.equal(await restarted.lastTrainingSeconds(), 6.5, 'the cluster\'s latest')
  assert.equal(await restarted.lastFailure(), undefined, 'B\'s run, started later, finished')

  // a run B leaves running is B's to mark when it comes back, not A's
  await b.beginTraining('csi-c', 'csi')
  assert.deepEqual(await (await backend.open('a')).trainings.markRunningInterrupted(), [])
  assert.deepEqual((await (await backend.open('b')).trainings.markRunningInterrupted()).map((failure) => failure.version), ['csi-c'])
})

test('postgres: a training log needs the name of its instance', async (t) => {
  const database = await testDatabaseOrSkip(t)
  if (!database) return
  await assert.rejects(ModelStore.openPostgresTables(await pool(t, database.url), ''), /needs the name of its instance/)
})

/** An instance of a cluster: its own DATA_DIR (folders and embedded SQLite), the shared PostgreSQL. */
async function instance (t: TestContext, url: string, name: string, dataDir = tempDir(t)): Promise<{ store: ModelStore, dataDir: string }> {
  const storage = new Storage(dataDir)
  t.after(() => storage.close())
  const store = await ModelStore.open({ storage, dataDir, postgres: await pool(t, url), instance: name })
  return { store, dataDir }
}

test('postgres: instances with DATA_DIRs of their own share the versions\' rows: another\'s version is not broken here, its import keeps the row, ' +
  'and a folder broken here moves no instance off the active version', async (t) => {
  const database = await testDatabaseOrSkip(t)
  if (!database) return
  const a = await instance(t, database.url, 'a')
  assert.deepEqual(await a.store.recover(), { removedTemp: [], adopted: [], broken: [], fellBack: [], interrupted: [], seeded: [] })
  assert.equal(a.store.shared, true)
  const version = await a.store.newVersionName('csi', new Date(T0))
  await a.store.write(version, smallModel(1))
  await a.store.activate(version)

  const b = await instance(t, database.url, 'b')
  const report = await b.store.recover()
  // A's version is not here yet: neither usable nor broken (and the catalogue held a version already: nothing seeded)
  assert.deepEqual(report, { removedTemp: [], adopted: [], broken: [], fellBack: [], interrupted: [] })
  assert.equal(await b.store.activeVersion('csi', false), version, 'the cluster\'s active version, untouched')
  assert.equal(await b.store.activeVersion('csi'), undefined, 'not usable here')
  assert.deepEqual(await b.store.list(), [])
  assert.equal(await b.store.newVersionName('csi', new Date(T0)), `${version}-2`, 'the name is taken')

  // the cluster's model sync brings the files: the row A recorded is kept
  const imported = await b.store.importVersion(version, await a.store.exportVersion(version))
  assert.deepEqual(imported, await a.store.info(version))
  assert.equal(imported.active, true)
  assert.equal(await b.store.activeVersion('csi'), version)
  assert.deepEqual((await b.store.list()).map((info) => info.version), [version])
  await assert.rejects(b.store.importVersion(version, await a.store.exportVersion(version)), /exists already/, 'here now')

  // the same name with other weights (made by a store of another cluster) is refused
  const foreignDir = tempDir(t)
  const foreign = new Storage(foreignDir)
  t.after(() => foreign.close())
  const other = new ModelStore(foreign, foreignDir)
  await other.recover()
  await other.write(version, smallModel(2))
  const c = await instance(t, database.url, 'c')
  await c.store.recover()
  await assert.rejects(c.store.importVersion(version, await other.exportVersion(version)), /differ from the [0-9a-f]{64} the database records/)

  // A's folder breaks; a restart of A reports it, and leaves the cluster's active version where it is
  const weights = join(a.dataDir, 'models', version, WEIGHTS_FILE)
  const bytes = readFileSync(weights)
  bytes[0] ^= 0xff
  writeFileSync(weights, bytes)
  const restarted = await instance(t, database.url, 'a', a.dataDir)
  const afterBreak = await restarted.store.recover()
  assert.deepEqual(afterBreak.broken.map((entry) => entry.version), [version])
  assert.deepEqual(afterBreak.fellBack, [])
  assert.equal(await restarted.store.activeVersion('csi'), undefined, 'A serves none')
  assert.equal(await b.store.activeVersion('csi'), version, 'B still serves it')
})

test('postgres: a new cluster\'s catalogue is seeded with the first instance\'s embedded active versions; ' +
  'what one instance records and activates, another sees at its next read', async (t) => {
  const database = await testDatabaseOrSkip(t)
  if (!database) return
  // the DATA_DIR of an embedded instance, moving to the cluster: a global and a door version active in its SQLite
  const dataDir = tempDir(t)
  const embedded = new Storage(dataDir)
  const alone = new ModelStore(embedded, dataDir)
  await alone.recover()
  await alone.write('csi-embedded', smallModel(1), new Date(T0))
  await alone.write('door5-embedded', smallModel(2), new Date(T1), 5)
  await alone.write('csi-inactive', smallModel(3), new Date(T2))
  await alone.activate('csi-embedded')
  await alone.activate('door5-embedded')
  embedded.close()

  const first = await instance(t, database.url, 'a', dataDir)
  const report = await first.store.recover()
  assert.deepEqual(report.adopted.sort(), ['csi-embedded', 'csi-inactive', 'door5-embedded'])
  assert.deepEqual(report.seeded, ['csi-embedded', 'door5-embedded'])
  assert.equal(await first.store.activeVersion('csi'), 'csi-embedded')
  assert.deepEqual(await first.store.activeDoorVersions(), new Map([[5, 'door5-embedded']]))

  // a second instance with an embedded catalogue of its own joins a cluster that has one: it is not seeded again
  const secondDir = tempDir(t)
  const secondEmbedded = new Storage(secondDir)
  const secondAlone = new ModelStore(secondEmbedded, secondDir)
  await secondAlone.recover()
  await secondAlone.write('csi-second', smallModel(4), new Date(T2))
  await secondAlone.activate('csi-second')
  secondEmbedded.close()
  const second = await instance(t, database.url, 'b', secondDir)
  const joined = await second.store.recover()
  assert.deepEqual(joined.adopted, ['csi-second'])
  assert.equal(joined.seeded, undefined)
  assert.equal(await second.store.activeVersion('csi', false), 'csi-embedded', 'the cluster\'s, not its own')

  // what the second records, the first lists at its next read (once its folder is there); activations too
  assert.deepEqual((await first.store.list()).map((info) => info.version), ['csi-inactive', 'door5-embedded', 'csi-embedded'])
  await first.store.importVersion('csi-second', await second.store.exportVersion('csi-second'))
  await second.store.activate('csi-second')
  assert.equal(await first.store.activeVersion('csi'), 'csi-second')
  assert.deepEqual((await first.store.list()).filter((info) => info.active).map((info) => info.version), ['csi-second', 'door5-embedded'])
})

/**
 * The durable folder format of a model version: `DATA_DIR/models/<version>/`
 * holding `model.json` (tfjs layers format), `weights.bin` and `meta.json`
 * (standardisation statistics, labels, options, evaluation, the weights'
 * SHA-256). A version is written into a temp folder, synced, and renamed into
 * place, so a crash at any moment leaves the old set of versions or the new
 * one, never a half-written version. Files only: which versions are recorded
 * and active lives in SQLite (see version-catalogue.ts).
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type * as tfjs from '@tensorflow/tfjs'
import type { ModelKind } from '../../schemas/model.js'
import { isDoorMeta, type StorableModel, type StoredMeta } from '../model-types.js'

/** Folder of the versions inside DATA_DIR. */
export const MODELS_DIR = 'models'
/** Prefix of a version folder still being written. */
export const TEMP_PREFIX = '.tmp-'
/** The tfjs layers-format topology and weights manifest of a version. */
export const MODEL_FILE = 'model.json'
/** The raw weight bytes of a version. */
export const WEIGHTS_FILE = 'weights.bin'
/** A version's {@link VersionMetaFile}, written last. */
export const META_FILE = 'meta.json'

/** What a version name looks like (also keeps path parameters out of other folders). */
export const VERSION_PATTERN = /^[a-z0-9][a-z0-9-]{0,79}$/

/** The contents of a version's meta.json. */
export interface VersionMetaFile<M extends StoredMeta = StoredMeta> {
  version: string
  kind: ModelKind
  createdAt: string
  weightsFile: string
  weightsSha256: string
  /** The door a door-scope version belongs to; absent for the global models. */
  device?: number
  meta: M
}

/** A version complete in its temp folder, not yet renamed into place. */
export interface StagedVersion {
  tempDir: string
  file: VersionMetaFile
}

/** Throws unless `version` is a valid version name (so it can never name a path outside the models folder). */
export function checkVersionName (version: string): void {
  if (!VERSION_PATTERN.test(version)) throw new Error(`bad version name ${JSON.stringify(version)}`)
}

/** The version folders under one models folder: write, verify, read back, list. */
export class VersionFiles {
  /** The models folder (created if missing). */
  readonly modelsDir: string

  constructor (modelsDir: string) {
    this.modelsDir = modelsDir
    mkdirSync(this.modelsDir, { recursive: true })
  }

  /** The folder a version has (or would have); the name is not checked. */
  dir (version: string): string {
    return join(this.modelsDir, version)
  }

  /** Whether anything by this name is in the models folder. */
  exists (version: string): boolean {
    return existsSync(this.dir(version))
  }

  /**
   * Removes the temp folders of interrupted writes.
   * @returns the names removed
   */
  removeTempFolders (): string[] {
    const removed: string[] = []
    for (const name of readdirSync(this.modelsDir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue
      rmSync(join(this.modelsDir, name), { recursive: true, force: true })
      removed.push(name)
    }
    return removed
  }

  /**
   * Names of the folders that look like versions and are not in `recorded`
   * (temp folders, stray files and odd names left out), unverified. Recorded
   * names are skipped before any stat, so their folders are only ever read by
   * {@link VersionFiles.verify}.
   */
  unrecordedFolders (recorded: ReadonlySet<string>): string[] {
    return readdirSync(this.modelsDir).filter((name) =>
      !name.startsWith(TEMP_PREFIX) && !recorded.has(name) && VERSION_PATTERN.test(name) &&
      statSync(join(this.modelsDir, name)).isDirectory())
  }

  /**
   * First half of a write: the complete version in a fresh temp folder, every
   * file fsynced (a crash now leaves only that folder, which start-up removes).
   * Does not check whether the name is taken.
   */
  async stage (version: string, model: StorableModel, createdAt = new Date(), device?: number): Promise<StagedVersion> {
    checkVersionName(version)
    const weights = joinWeightData(model.artifacts.weightData)
    const file: VersionMetaFile = {
      version,
      kind: isDoorMeta(model.meta) ? 'csi' : model.meta.kind,
      createdAt: createdAt.toISOString(),
      weightsFile: WEIGHTS_FILE,
      weightsSha256: sha256(weights),
      meta: model.meta
    }
    if (device !== undefined) file.device = device
    // random suffix: two stagings of one name never share a folder
    const tempDir = join(this.modelsDir, `${TEMP_PREFIX}${version}-${randomBytes(4).toString('hex')}`)
    await mkdir(tempDir)
    try {
      await writeDurably(join(tempDir, WEIGHTS_FILE), weights)
      await writeDurably(join(tempDir, MODEL_FILE), JSON.stringify(modelJson(model.artifacts)))
      // meta.json last: a folder with a valid meta.json has its other files complete
      await writeDurably(join(tempDir, META_FILE), JSON.stringify(file, null, 2))
      await syncDir(tempDir)
    } catch (err) {
      await rm(tempDir, { recursive: true, force: true })
      throw err
    }
    return { tempDir, file }
  }

  /** Second half of a write: rename the staged folder into place and sync the models folder so the name survives a power cut. */
  async commit (staged: StagedVersion): Promise<void> {
    await rename(staged.tempDir, this.dir(staged.file.version))
    await syncDir(this.modelsDir)
  }

  /**
   * Checks a version folder: meta.json readable and naming this version, the
   * other files present, the weights matching their hash (and `expectedSha256`,
   * the database's, when given).
   * @returns the meta file, or why the folder is unusable
   */
  verify (version: string, expectedSha256?: string): VersionMetaFile | string {
    const dir = this.dir(version)
    try {
      const file = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as VersionMetaFile
      if (file.version !== version) return `meta.json names version ${JSON.stringify(file.version)}`
      JSON.parse(readFileSync(join(dir, MODEL_FILE), 'utf8'))
      const hash = sha256(readFileSync(join(dir, file.weightsFile)))
      if (hash !== file.weightsSha256) return `weights SHA-256 ${hash} does not match meta.json`
      if (expectedSha256 !== undefined && hash !== expectedSha256) return `weights SHA-256 ${hash} does not match the database (${expectedSha256})`
      return file
    } catch (err) {
      return (err as Error).message
    }
  }

  /**
   * Reads a verified version's files back as tfjs model artifacts, checking
   * the weights against their SHA-256 again (the disk may have changed since).
   */
  async load (file: VersionMetaFile): Promise<tfjs.io.ModelArtifacts> {
    const dir = this.dir(file.version)
    const weights = await readFile(join(dir, file.weightsFile))
    const hash = sha256(weights)
    if (hash !== file.weightsSha256) throw new Error(`model version ${file.version}: weights SHA-256 is ${hash}, meta.json says ${file.weightsSha256}`)
    return artifactsOf(JSON.parse(await readFile(join(dir, MODEL_FILE), 'utf8')) as ModelJson, weights)
  }

  /**
   * A verified version's three files as they lie on disk (what another
   * instance needs to write the same version), the weights checked again.
   */
  async read (file: VersionMetaFile): Promise<VersionBundle> {
    const dir = this.dir(file.version)
    const [meta, model, weights] = await Promise.all([
      readFile(join(dir, META_FILE)), readFile(join(dir, MODEL_FILE)), readFile(join(dir, file.weightsFile))
    ])
    const hash = sha256(weights)
    if (hash !== file.weightsSha256) throw new Error(`model version ${file.version}: weights SHA-256 is ${hash}, meta.json says ${file.weightsSha256}`)
    return { meta, model, weights }
  }
}

/** A version's files as bytes: `meta.json`, `model.json` and the weights. */
export interface VersionBundle {
  meta: Uint8Array
  model: Uint8Array
  weights: Uint8Array
}

/**
 * Parses a bundle of version `version` (read by {@link VersionFiles.read}
 * elsewhere) back into its meta file and model, checking the name and the
 * weights' hash, so a bundle from anywhere is written only when it is whole.
 * @throws when a file is not JSON, names another version, or the weights do not match
 */
export function fromBundle (version: string, bundle: VersionBundle): { file: VersionMetaFile, model: StorableModel } {
  checkVersionName(version)
  const decoder = new TextDecoder()
  const file = JSON.parse(decoder.decode(bundle.meta)) as VersionMetaFile
  if (file.version !== version) throw new Error(`model version ${version}: meta.json names version ${JSON.stringify(file.version)}`)
  const weights = Buffer.from(bundle.weights)
  const hash = sha256(weights)
  if (hash !== file.weightsSha256) throw new Error(`model version ${version}: weights SHA-256 is ${hash}, meta.json says ${file.weightsSha256}`)
  const artifacts = artifactsOf(JSON.parse(decoder.decode(bundle.model)) as ModelJson, weights)
  return { file, model: { artifacts, meta: file.meta } }
}

/** tfjs artifacts from a `model.json` and the weight bytes it describes. */
function artifactsOf (json: ModelJson, weights: Buffer<ArrayBuffer>): tfjs.io.ModelArtifacts {
  const artifacts: tfjs.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy
  }
  if (json.trainingConfig) artifacts.trainingConfig = json.trainingConfig
  return artifacts
}

/** The tfjs `model.json` layout (what tf.loadLayersModel reads over HTTP). */
interface ModelJson {
  modelTopology: tfjs.io.ModelArtifacts['modelTopology']
  weightsManifest: Array<{ paths: string[], weights: tfjs.io.WeightsManifestEntry[] }>
  format?: string
  generatedBy?: string
  convertedBy?: string | null
  trainingConfig?: tfjs.io.TrainingConfig
}

function modelJson (artifacts: tfjs.io.ModelArtifacts): ModelJson {
  const json: ModelJson = {
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null
  }
  if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig
  return json
}

/** tfjs may hand the weights as one buffer or as several. */
export function joinWeightData (data: tfjs.io.ModelArtifacts['weightData']): Buffer {
  if (data === undefined) return Buffer.alloc(0)
  const parts = Array.isArray(data) ? data : [data]
  return Buffer.concat(parts.map((part) => Buffer.from(part)))
}

/** Hex SHA-256. */
export function sha256 (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Writes a new file (never overwriting) and fsyncs it before returning. */
async function writeDurably (path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx')
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** fsync a folder, so the names created or renamed in it survive a power cut. */
async function syncDir (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

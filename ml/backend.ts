/**
 * TensorFlow.js backend choice: the fastest package that loads. The native
 * packages are optional dependencies (their installers download libtensorflow,
 * which fails offline), so they are imported dynamically and may be missing.
 */
import type { BackendInfo } from '../schemas/model.js'
import type { Tf } from './model-types.js'
import type { ServiceLog } from '../core/logger.js'

/** What TF_BACKEND asks for. */
export type BackendRequest = BackendInfo['requested']

/** A concrete backend. */
export type BackendName = Exclude<BackendRequest, 'auto'>

/** The npm package behind each backend. */
export const BACKEND_PACKAGES: Readonly<Record<BackendName, string>> = Object.freeze({
  gpu: '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
  cpu: '@tensorflow/tfjs'
})

/** The order `auto` tries them in: fastest first. */
export const AUTO_ORDER: readonly BackendName[] = ['gpu', 'node', 'cpu']

/** A loaded backend. */
export interface ChosenBackend {
  tf: Tf
  name: BackendName
  /** True for the libtensorflow packages, which must train in a child process, not a worker thread. */
  native: boolean
  info: BackendInfo
}

/** A forced backend (TF_BACKEND=gpu|node|cpu) that cannot load: a start-up error. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError'
}

/**
 * Loads the backend `requested` names, or for `auto` the first of gpu, node,
 * cpu that loads.
 * @throws {BackendUnavailableError} naming the package when a forced backend cannot load
 */
export async function chooseBackend (requested: BackendRequest, log?: ServiceLog): Promise<ChosenBackend> {
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested]
  const failures: string[] = []
  for (const name of candidates) {
    try {
      const chosen = await loadBackend(name, requested)
      log?.info({ backend: chosen.info.backend, package: chosen.info.package, tfjsVersion: chosen.info.tfjsVersion, requested }, 'TensorFlow.js backend chosen')
      return chosen
    } catch (err) {
      const reason = `${BACKEND_PACKAGES[name]} cannot be loaded: ${firstLine(err)}`
      if (requested !== 'auto') {
        throw new BackendUnavailableError(`TF_BACKEND=${requested} but ${reason} (install it, or set TF_BACKEND=auto to use the fastest backend that loads)`)
      }
      failures.push(reason)
      log?.debug({ package: BACKEND_PACKAGES[name], reason: firstLine(err) }, 'TensorFlow.js backend unavailable, trying the next')
    }
  }
  // unreachable in practice: the pure-JS package is a dependency
  throw new BackendUnavailableError(`no TensorFlow.js backend loads: ${failures.join('; ')}`)
}

/** Imports one backend package and makes its backend the active one. */
export async function loadBackend (name: BackendName, requested: BackendRequest = name): Promise<ChosenBackend> {
  const packageName = BACKEND_PACKAGES[name]
  const imported = await import(packageName) as Tf & { default?: Tf }
  // the native packages are CommonJS: their API may sit on `default`
  const tf: Tf = typeof imported.tensor === 'function' ? imported : imported.default as Tf
  // a server's logs are not the place for tfjs's "install tfjs-node" banner
  tf.enableProdMode()
  if (name === 'cpu') {
    if (!await tf.setBackend('cpu')) throw new Error('the cpu backend did not initialise')
  } else {
    await tf.ready()
    if (tf.getBackend() !== 'tensorflow') throw new Error(`it registered backend "${tf.getBackend()}", not "tensorflow"`)
  }
  return {
    tf,
    name,
    native: name !== 'cpu',
    info: { requested, backend: tf.getBackend(), package: packageName, tfjsVersion: tfjsVersionOf(tf) }
  }
}

/** The tfjs version; the native packages report theirs under their own key. */
function tfjsVersionOf (tf: Tf): string {
  const version = tf.version as unknown as Record<string, string> | string
  return typeof version === 'string' ? version : version.tfjs ?? version['tfjs-core'] ?? 'unknown'
}

function firstLine (err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0]
}

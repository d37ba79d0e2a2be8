/**
 * Every door's latest state, shared by the cluster: the owner of a door's
 * partition puts its state in the KV bucket `<c>_doors` (key `d<device>`), and
 * every instance watches the bucket to serve `/doors`, the streams and Home
 * Assistant. The bucket has no ttl and keeps one value per key: door states
 * survive a restart of the whole cluster.
 */
import { EventEmitter } from 'node:events'
import type { KV } from '@nats-io/kv'
import type { ClusterConnection } from './connection.js'
import { isDevice, MAX_DEVICE } from './names.js'
import { StreamReader } from './stream-reader.js'

export interface DoorBoardOptions {
  /** A value that is not JSON (skipped), a watch's consumer lost and made again. Default: ignored. */
  onError?: (err: unknown) => void
}

const KEY = /^d(\d{1,5})$/
/** The KV client's operation header: a delete or purge leaves a marker message with it. */
const OPERATION_HEADER = 'KV-Operation'

function keyOf (device: number): string {
  if (!isDevice(device)) throw new RangeError(`door board: device ${device} is not an integer 0..${MAX_DEVICE}`)
  return `d${device}`
}

/** The device of key `d<device>`, or undefined for another key. */
function deviceOf (key: string): number | undefined {
  const match = KEY.exec(key)
  if (match === null) return undefined
  const device = Number(match[1])
  return isDevice(device) ? device : undefined
}

/** See the module's doc. */
export class DoorBoard extends EventEmitter<{ put: [device: number, value: unknown], deleted: [device: number] }> {
  readonly #conn: ClusterConnection
  readonly #kv: KV
  readonly #onError: (err: unknown) => void
  #watching: Promise<void> | undefined
  #reader: StreamReader | undefined
  #stopped = false

  private constructor (conn: ClusterConnection, kv: KV, options: DoorBoardOptions) {
    super()
    this.#conn = conn
    this.#kv = kv
    this.#onError = options.onError ?? (() => {})
  }

  /** Opens the bucket, creating it when missing. */
  static async open (conn: ClusterConnection, options: DoorBoardOptions = {}): Promise<DoorBoard> {
    const kv = await conn.kvm.create(conn.names.doorsBucket, { history: 1 })
    return new DoorBoard(conn, kv, options)
  }

  /** Sets the door's state (any JSON value); resolves once JetStream stored it. */
  async put (device: number, value: unknown): Promise<void> {
    const json = JSON.stringify(value)
    if (json === undefined) throw new TypeError(`door board: the value for door ${device} is not JSON`)
    await this.#kv.put(keyOf(device), json)
  }

  /** Removes the door (a delete marker, so watchers see `deleted`). */
  async delete (device: number): Promise<void> {
    await this.#kv.delete(keyOf(device))
  }

  /** Every door's current state, read now. */
  async all (): Promise<Map<number, unknown>> {
    const devices: number[] = []
    for await (const key of await this.#kv.keys()) {
      const device = deviceOf(key)
      if (device !== undefined) devices.push(device)
    }
    const doors = new Map<number, unknown>()
    await Promise.all(devices.map(async (device) => {
      const entry = await this.#kv.get(keyOf(device))
      // deleted between the listing and the read
      if (entry === null || entry.operation !== 'PUT') return
      try {
        doors.set(device, entry.json())
      } catch (error) {
        this.#onError(new Error(`door board: door ${device}'s value is not JSON`, { cause: error }))
      }
    }))
    return new Map([...doors].sort(([a], [b]) => a - b))
  }

  /**
   * Emits `put` for every current value, then `put` or `deleted` for every
   * change, until stop(). Resolves once the current values were emitted.
   * Calling it again returns the same promise.
   */
  watch (): Promise<void> {
    this.#watching ??= this.#watch()
    return this.#watching
  }

  /** Stops the watch (no event after it resolves). */
  async stop (): Promise<void> {
    this.#stopped = true
    await this.#watching?.catch(() => {})
    await this.#reader?.stop()
  }

  async #watch (): Promise<void> {
    if (this.#stopped) return
    const { names } = this.#conn
    const prefix = `$KV.${names.doorsBucket}.`
    this.#reader = await StreamReader.start(this.#conn, {
      stream: `KV_${names.doorsBucket}`,
      filterSubject: `${prefix}>`,
      namePrefix: `${names.cluster}_doors_watch`,
      start: 'last-per-subject',
      onError: this.#onError,
      onMessage: (message, initial) => {
        const device = deviceOf(message.subject.slice(prefix.length))
        if (device === undefined) return
        const operation = message.headers?.get(OPERATION_HEADER) ?? ''
        if (operation === 'DEL' || operation === 'PURGE') {
          // a door deleted before the watch began is simply not among the current values
          if (!initial) this.emit('deleted', device)
          return
        }
        let value: unknown
        try {
          value = JSON.parse(new TextDecoder().decode(message.data))
        } catch (error) {
          this.#onError(new Error(`door board: door ${device}'s value is not JSON (seq ${message.seq})`, { cause: error }))
          return
        }
        this.emit('put', device, value)
      }
    })
    if (this.#stopped) {
      await this.#reader.stop()
      return
    }
    await this.#reader.initialRead
  }
}

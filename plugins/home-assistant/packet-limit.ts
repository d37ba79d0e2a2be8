import { Duplex } from 'node:stream'
import type { IStream, MqttClient } from 'mqtt'

/**
 * A ceiling on the MQTT packets doorsense reads, enforced before a byte of
 * an oversized one is buffered. MQTT.js has none of its own for MQTT 3.1.1:
 * its parser holds a whole packet before anything looks at its size (and its
 * `properties.maximumPacketSize` check, MQTT 5 only, runs after that too),
 * while Aedes speaks no MQTT 5 at all. So the broker's byte stream goes
 * through {@link IncomingPacketLimit} on its way to the parser.
 */

/** What was skipped: the packet's whole size and whether the broker held it (the retain flag). */
export interface SkippedPacket {
  bytes: number
  retain: boolean
}

/** An oversized packet that cannot be skipped safely; the connection is dropped (the code makes MQTT.js report it). */
export class PacketTooLargeError extends Error {
  override name = 'PacketTooLargeError'
  readonly code = 'DS_MQTT_PACKET_TOO_LARGE'
}

/** MQTT's PUBLISH, the high nibble of a packet's first byte. */
const PUBLISH = 3
const NOTHING = Buffer.alloc(0)

/**
 * Splits the broker's byte stream into packets by their fixed header alone
 * (one byte of type and flags, one to four of remaining length) and lets
 * through, unchanged, every packet of at most `maxBytes`. A larger QoS 0
 * PUBLISH is skipped as its bytes arrive, never held. Anything else that large
 * would leave the session wrong if skipped (a QoS 1 or 2 PUBLISH wants its
 * acknowledgement), so it is an error; doorsense subscribes at QoS 0, so the
 * broker sends it nothing else that large.
 */
export class IncomingPacketLimit {
  readonly maxBytes: number
  private readonly onSkipped: (packet: SkippedPacket) => void
  /** The fixed header read so far, possibly begun in an earlier chunk. */
  private header: number[] = []
  /** Bytes of the current packet still to let through. */
  private passing = 0
  /** Bytes of the current (oversized) packet still to drop. */
  private skipping = 0

  constructor (maxBytes: number, onSkipped: (packet: SkippedPacket) => void) {
    this.maxBytes = maxBytes
    this.onSkipped = onSkipped
  }

  /**
   * The bytes of `chunk` to hand to the MQTT parser, in order.
   * @throws PacketTooLargeError for an oversized packet other than a QoS 0 PUBLISH, or a malformed length
   */
  filter (chunk: Buffer): Buffer {
    const kept: Buffer[] = []
    /** Start of the run of this chunk's bytes being kept. */
    let runStart = 0
    /** Header bytes that arrived in earlier chunks and were held back until the header was whole. */
    let carried = this.header.length
    let at = 0
    while (at < chunk.length) {
      if (this.skipping > 0) {
        const count = Math.min(this.skipping, chunk.length - at)
        this.skipping -= count
        at += count
        runStart = at
        continue
      }
      if (this.passing > 0) {
        const count = Math.min(this.passing, chunk.length - at)
        this.passing -= count
        at += count
        continue
      }
      const byte = chunk[at++] as number
      this.header.push(byte)
      if (this.header.length === 1 || (byte & 0x80) !== 0) {
        if (this.header.length === 5) throw new PacketTooLargeError('malformed MQTT packet: its remaining length runs past four bytes')
        continue
      }
      const header = this.header
      this.header = []
      const held = carried
      carried = 0
      let remaining = 0
      for (let i = header.length - 1; i >= 1; i--) remaining = remaining * 128 + ((header[i] as number) & 0x7f)
      const bytes = header.length + remaining
      if (bytes <= this.maxBytes) {
        // a header begun in an earlier chunk is the first thing in this one: its held bytes go first
        if (held > 0) kept.push(Buffer.from(header.slice(0, held)))
        this.passing = remaining
        continue
      }
      const first = header[0] as number
      if (first >> 4 !== PUBLISH || ((first >> 1) & 3) !== 0) {
        throw new PacketTooLargeError(`the broker sent an MQTT packet of ${bytes} bytes (type ${first >> 4}), larger than the ${this.maxBytes} allowed`)
      }
      const headerStart = at - (header.length - held)
      if (headerStart > runStart) kept.push(chunk.subarray(runStart, headerStart))
      this.skipping = remaining
      runStart = at
      this.onSkipped({ bytes, retain: (first & 1) === 1 })
    }
    // an unfinished header is held back until its last byte arrives
    const end = at - (this.header.length - carried)
    if (end > runStart) kept.push(chunk.subarray(runStart, end))
    return kept.length === 0 ? NOTHING : kept.length === 1 ? kept[0] as Buffer : Buffer.concat(kept)
  }
}

/**
 * The broker's connection with the reading side through an
 * {@link IncomingPacketLimit}; writes, end and destroy go straight to it.
 */
class LimitedStream extends Duplex {
  private readonly connection: Duplex

  constructor (socket: Duplex, limit: IncomingPacketLimit) {
    super()
    this.connection = socket
    socket.on('data', (chunk: Buffer) => {
      let kept: Buffer
      try {
        kept = limit.filter(chunk)
      } catch (error) {
        this.destroy(error as Error)
        return
      }
      if (kept.length > 0 && !this.push(kept)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (error: Error) => this.destroy(error))
    socket.on('close', () => this.destroy())
  }

  override _read (): void {
    this.connection.resume()
  }

  override _write (chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.connection.write(chunk, encoding, callback)
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    // MQTT.js writes a packet in pieces (corked): hand them over together
    this.connection.cork()
    for (let i = 0; i < chunks.length - 1; i++) this.connection.write((chunks[i] as { chunk: Buffer }).chunk)
    this.connection.write((chunks[chunks.length - 1] as { chunk: Buffer }).chunk, callback)
    this.connection.uncork()
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.connection.end(callback)
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.connection.destroy()
    callback(error)
  }
}

/**
 * Puts every connection `client` makes (the first and each reconnect) through
 * an {@link IncomingPacketLimit} of `maxBytes`. Call it on a client created
 * with `manualConnect: true`, before `client.connect()`.
 * @throws Error when MQTT.js no longer builds its streams the way this expects
 */
export function limitIncomingPackets (client: MqttClient, maxBytes: number, onSkipped: (packet: SkippedPacket) => void): void {
  // MQTT.js offers no hook on its transport; it builds each connection's stream by this
  // (private) function, the same since MQTT.js 1. A change there fails here, loudly, at start
  const internals = client as unknown as { streamBuilder?: (client: MqttClient) => IStream }
  const build = internals.streamBuilder
  if (typeof build !== 'function') throw new Error('MQTT.js has no streamBuilder to wrap: cannot limit the size of incoming MQTT packets')
  // on Node the stream is a net.Socket or tls.TLSSocket: a node:stream Duplex
  internals.streamBuilder = (owner) => new LimitedStream(build(owner) as Duplex, new IncomingPacketLimit(maxBytes, onSkipped))
}

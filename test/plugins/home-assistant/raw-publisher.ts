import { once } from 'node:events'
import net from 'node:net'

/**
 * A device that publishes one huge payload without holding it: a raw MQTT
 * 3.1.1 client that writes the PUBLISH header, then streams the payload in
 * 64 KiB pieces with backpressure. MQTT.js would need the whole payload in
 * one Buffer, which would blur what a memory measurement in this process sees.
 */
export async function streamPublish (port: number, topic: string, payloadBytes: number, options: { retain?: boolean } = {}): Promise<void> {
  const socket = net.connect(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    const clientId = Buffer.from(`raw-${Math.random().toString(16).slice(2, 10)}`)
    const connectBody = Buffer.concat([
      Buffer.from([0x00, 0x04]), Buffer.from('MQTT'), Buffer.from([0x04, 0x02, 0x00, 0x3c]),
      lengthPrefixed(clientId)
    ])
    socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(connectBody.length), connectBody]))
    const [connack] = await once(socket, 'data') as [Buffer]
    if (connack[0] !== 0x20 || connack[3] !== 0x00) throw new Error(`broker refused the raw client: ${connack.toString('hex')}`)
    const topicBytes = lengthPrefixed(Buffer.from(topic))
    const header = Buffer.concat([Buffer.from([0x30 | (options.retain === true ? 0x01 : 0x00)]), remainingLength(topicBytes.length + payloadBytes), topicBytes])
    socket.write(header)
    const piece = Buffer.alloc(64 * 1024, '1')
    for (let left = payloadBytes; left > 0; left -= piece.length) {
      if (!socket.write(left >= piece.length ? piece : piece.subarray(0, left))) await once(socket, 'drain')
    }
    const closed = once(socket, 'close')
    socket.end(Buffer.from([0xe0, 0x00])) // DISCONNECT
    await closed
  } finally {
    socket.destroy()
  }
}

function lengthPrefixed (bytes: Buffer): Buffer {
  const length = Buffer.alloc(2)
  length.writeUInt16BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** MQTT's variable-length "remaining length": 7 bits a byte, high bit = more. */
export function remainingLength (value: number): Buffer {
  const bytes: number[] = []
  do {
    let byte = value % 128
    value = Math.floor(value / 128)
    if (value > 0) byte |= 0x80
    bytes.push(byte)
  } while (value > 0)
  return Buffer.from(bytes)
}

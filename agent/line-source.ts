/**
 * Where the agent's CSI lines come from: standard input (a recording, or
 * another program's output) or the ESP32's serial port. Either way the agent
 * sees an async iterable of lines, without their line endings.
 */
import type { Duplex, Readable } from 'node:stream'
import { createInterface, type Interface } from 'node:readline'

/** A source of text lines the agent forwards. */
export interface LineSource {
  /** The lines, as they arrive; ends at end of input (or when closed). */
  readonly lines: AsyncIterable<string>
  /** What is being read, for messages ("stdin", "/dev/ttyUSB0 at 921600 baud"). */
  readonly name: string
  /** Set when the input ended by failure (a serial port unplugged) rather than by end of input. */
  readonly failure: Error | undefined
  /** Stops reading: `lines` ends after the lines already read. */
  close (): Promise<void>
}

/** Thrown when the serial port cannot be used (package missing, port cannot be opened). */
export class SerialPortError extends Error {
  override name = 'SerialPortError'
}

/**
 * The reader's lines as an iterable that buffers from now on: readline makes
 * its buffering iterator only when first asked, and lines read before that are lost.
 */
function linesOf (reader: Interface): AsyncIterable<string> {
  const iterator = reader[Symbol.asyncIterator]()
  return { [Symbol.asyncIterator]: () => iterator }
}

/** Lines of a readable stream (standard input by default); `\r\n` endings are handled. */
export function streamLines (input: Readable = process.stdin, name = 'stdin'): LineSource {
  const reader = createInterface({ input, crlfDelay: Infinity, terminal: false })
  return {
    lines: linesOf(reader),
    name,
    failure: undefined,
    async close () {
      reader.close()
      // stdin would otherwise keep the process alive waiting for more input
      input.pause()
    }
  }
}

/** The part of serialport's SerialPort class the agent uses. */
export interface SerialPortLike extends Duplex {
  open (callback: (err: Error | null) => void): void
  close (callback?: (err: Error | null) => void): void
  readonly isOpen: boolean
}

/** The part of the `serialport` package the agent uses. */
export interface SerialPortModule {
  SerialPort: new (options: { path: string, baudRate: number, autoOpen: false }) => SerialPortLike
}

/**
 * Loads the optional `serialport` package. It is imported only when a serial
 * port is asked for, so a Pi fed through --stdin needs no native module.
 * @param specifier the package to load (a parameter so tests can name a missing one)
 * @throws {SerialPortError} saying how to install it when it is missing
 */
export async function loadSerialPort (specifier = 'serialport'): Promise<SerialPortModule> {
  try {
    // a variable specifier: tsc and bundlers must not require the optional package at build time
    return await import(specifier) as SerialPortModule
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new SerialPortError('reading a serial port needs the optional "serialport" package, which is not installed: ' +
        'install it with `npm install serialport` (it builds a native module), or pipe the lines in with --stdin')
    }
    throw new SerialPortError(`the "serialport" package failed to load: ${(err as Error).message}`)
  }
}

/**
 * Opens `path` at `baudRate` and reads its lines (ESP32-CSI-Tool prints one
 * CSI_DATA line per packet).
 * @param load where the serialport module comes from (tests pass its mock binding)
 * @throws {SerialPortError} when the package is missing or the port cannot be opened
 */
export async function serialLines (path: string, baudRate: number, load: () => Promise<SerialPortModule> = () => loadSerialPort()): Promise<LineSource> {
  const { SerialPort } = await load()
  const port = new SerialPort({ path, baudRate, autoOpen: false })
  await new Promise<void>((resolve, reject) => port.open((err) => {
    if (err) reject(new SerialPortError(`cannot open serial port ${path}: ${err.message}`))
    else resolve()
  }))
  const name = `${path} at ${baudRate} baud`
  let failure: Error | undefined
  let closing = false
  // an unplugged adapter closes the port by itself: the lines end, and the agent must not call that a normal end
  const reader = createInterface({ input: port, crlfDelay: Infinity, terminal: false })
  port.on('error', (err: Error) => {
    failure ??= new SerialPortError(`serial port ${path} failed: ${err.message}`)
  })
  port.on('close', () => {
    if (!closing) failure ??= new SerialPortError(`serial port ${path} closed unexpectedly`)
    // a port closed by a disconnect may never end its stream: end the lines here
    reader.close()
  })
  return {
    lines: linesOf(reader),
    name,
    get failure () { return failure },
    async close () {
      closing = true
      reader.close()
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()))
    }
  }
}

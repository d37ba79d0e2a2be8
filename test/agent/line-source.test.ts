import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { once } from 'node:events'
import { SerialPortMock } from 'serialport'
import { loadSerialPort, serialLines, SerialPortError, streamLines, type SerialPortModule } from '../../agent/line-source.js'

async function collect (lines: AsyncIterable<string>, count = Infinity): Promise<string[]> {
  const seen: string[] = []
  for await (const line of lines) {
    seen.push(line)
    if (seen.length >= count) break
  }
  return seen
}

test('stream lines: split across chunks, \\r\\n and \\n endings, a last line without ending', async () => {
  const input = new PassThrough()
  const source = streamLines(input, 'test input')
  input.write('CSI_DATA,AP,1 2')
  input.write(' 3\r\n[0,0,1]\n\n')
  input.end('[4,5,6]')
  assert.deepEqual(await collect(source.lines), ['CSI_DATA,AP,1 2 3', '[0,0,1]', '', '[4,5,6]'])
  assert.equal(source.failure, undefined)
  assert.equal(source.name, 'test input')
})

test('close() ends the lines of an input that is still open (a stop signal)', async () => {
  const input = new PassThrough()
  const source = streamLines(input)
  input.write('one\ntwo\n')
  const reading = collect(source.lines)
  await new Promise((resolve) => setImmediate(resolve))
  await source.close()
  assert.deepEqual(await reading, ['one', 'two'])
})

/** serialport's own mock binding, with a handle on the ports the agent opens. */
function mockSerial (): { load: () => Promise<SerialPortModule>, opened: SerialPortMock[] } {
  const opened: SerialPortMock[] = []
  class RecordedPort extends SerialPortMock {
    constructor (options: ConstructorParameters<typeof SerialPortMock>[0]) {
      super(options)
      opened.push(this)
    }
  }
  return { load: async () => ({ SerialPort: RecordedPort as unknown as SerialPortModule['SerialPort'] }), opened }
}

test('serial lines: opens the port at the baud rate and reads CSI lines as they arrive', async (t) => {
  SerialPortMock.binding.createPort('/dev/ttyDOORSENSE0')
  t.after(() => SerialPortMock.binding.reset())
  const { load, opened } = mockSerial()
  const source = await serialLines('/dev/ttyDOORSENSE0', 921600, load)
  assert.equal(source.name, '/dev/ttyDOORSENSE0 at 921600 baud')
  const port = opened[0]
  assert.equal(port.baudRate, 921600)
  assert.ok(port.isOpen)
  const reading = collect(source.lines, 3)
  port.port!.emitData('I (312) boot\r\nCSI_DATA,AP,[1 2')
  port.port!.emitData(' 3]\r\n[0,0,7]\r\n')
  assert.deepEqual(await reading, ['I (312) boot', 'CSI_DATA,AP,[1 2 3]', '[0,0,7]'])
  await source.close()
  assert.equal(port.isOpen, false)
  assert.equal(source.failure, undefined, 'closing it ourselves is no failure')
})

test('serial lines: a port that closes by itself (adapter unplugged) ends the lines with a failure', async (t) => {
  SerialPortMock.binding.createPort('/dev/ttyDOORSENSE1')
  t.after(() => SerialPortMock.binding.reset())
  const { load, opened } = mockSerial()
  const source = await serialLines('/dev/ttyDOORSENSE1', 115200, load)
  const reading = collect(source.lines)
  opened[0].port!.emitData('[0,0,1]\n')
  await new Promise((resolve) => setTimeout(resolve, 20))
  opened[0].close()
  await once(opened[0], 'close')
  assert.deepEqual(await reading, ['[0,0,1]'])
  assert.ok(source.failure instanceof SerialPortError)
  assert.match(source.failure.message, /serial port \/dev\/ttyDOORSENSE1 closed unexpectedly/)
})

test('serial lines: a port that does not exist is a clear error', async () => {
  const { load } = mockSerial()
  await assert.rejects(serialLines('/dev/ttyNOPE', 921600, load), (err: Error) => {
    assert.ok(err instanceof SerialPortError)
    assert.match(err.message, /^cannot open serial port \/dev\/ttyNOPE: /)
    return true
  })
})

test('a missing serialport package says how to install it', async () => {
  await assert.rejects(loadSerialPort('serialport-package-that-is-not-installed'), (err: Error) => {
    assert.ok(err instanceof SerialPortError)
    assert.match(err.message, new RegExp(
      'needs the optional "serialport" package, which is not installed: ' +
      'install it with `npm install serialport`.*or pipe the lines in with --stdin'
    ))
    return true
  })
  // and the installed one loads
  const module = await loadSerialPort()
  assert.equal(typeof module.SerialPort, 'function')
})

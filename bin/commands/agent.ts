/**
 * `doorsense agent`: the program that runs on each Raspberry Pi. It reads CSI
 * lines from the ESP32's serial port (or stdin), forwards them in batches to
 * the server, keeps the Pi on the live list, and survives server restarts.
 * Exit codes ({@link EXIT}): 0 every frame read was accepted, 1 bad usage or
 * the input could not be read, 2 the server rejected frames, 3 frames were
 * left unsent (server unreachable or refusing to the end, or dropped from a
 * full queue); 3 wins over 2; 4 lines were read but none was a frame (e.g. a
 * session CSV piped in).
 */
import { Agent, DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_MS, DEFAULT_KEEP_ALIVE_MS, DEFAULT_QUEUE_CAPACITY, type AgentSummary } from '../../agent/agent.js'
import { serialLines, streamLines, type LineSource } from '../../agent/line-source.js'
import { HttpTransport } from '../../agent/transport.js'
import { MAX_NAME_LENGTH, MAX_FRAMES_PER_REQUEST } from '../../schemas/rpi-servers.js'
import { parseOptions, UsageError } from './command-line.js'

const USAGE = `usage: doorsense agent --server URL --name NAME --id ID (--stdin | --serial PATH) [options]

Forwards CSI lines (raw ESP32-CSI-Tool CSI_DATA lines or raw Pi frames) to a
doorsense server; lines that are not frames are skipped and counted. Batches
of raw frames go as bytes (108 or 128 a frame); to a server older than that
(415), as JSON. Once the server's answers announce it (Accept-Encoding), they
go gzipped as well: 100 raw Pi frames are about 6 KB instead of 32 KB of JSON.

  --server URL          the server, e.g. http://192.168.1.10:20002
  --name NAME           this Pi's name (1..${MAX_NAME_LENGTH} characters)
  --id ID               this Pi's ID (0..32767)
  --stdin               read lines from standard input
  --serial PATH         read lines from a serial port, e.g. /dev/ttyUSB0 (needs the optional "serialport" package)
  --baud N              serial speed (default 921600)
  --infer               classify instead of store (POST /ml/post/batch); prints one JSON line per frame
  --token T             bearer token for device routes (default: the DEVICE_TOKEN env var)
  --batch N             most frames per request, 1..${MAX_FRAMES_PER_REQUEST} (default ${DEFAULT_BATCH_SIZE})
  --flush-ms MS         longest a frame waits for its batch to fill (default ${DEFAULT_FLUSH_MS})
  --queue N             frames held while the server is away; the oldest are dropped beyond (default ${DEFAULT_QUEUE_CAPACITY})
  --keep-alive-ms MS    keep-alive period (default ${DEFAULT_KEEP_ALIVE_MS})
  --timeout-ms MS       longest one request may take (default 10000)
  --drain-ms MS         at end of input, how long to keep trying to send what is queued (default 30000)

Prints one summary line on stderr at the end: read, sent, rejected, dropped, skipped.

Exit status:
  0  input ended (or a stop signal) and the server accepted every frame
  1  bad usage, or the input could not be opened or read
  2  the server rejected frames (a bad frame, a wrong --server path or token: see the log)
  3  frames were left unsent: the server was unreachable or refusing at the end,
     or the queue overflowed while it was away (wins over 2)
  4  lines were read but none was a frame, so nothing was sent (the summary says
     why they were skipped; a session CSV is imported with doorsense import)`

/** The agent's exit codes (see USAGE). */
export const EXIT = { ok: 0, usage: 1, rejected: 2, unsent: 3, noFrames: 4 } as const

/**
 * The exit code for a run: unsent frames first, then rejected ones, then
 * input with no frame in it (every line read was skipped); a failed input is
 * {@link EXIT.usage}. No input at all is not a failure.
 */
export function exitCodeOf (summary: Pick<AgentSummary, 'read' | 'skipped' | 'rejected' | 'dropped'>, inputFailed = false): number {
  if (inputFailed) return EXIT.usage
  if (summary.dropped > 0) return EXIT.unsent
  if (summary.rejected > 0) return EXIT.rejected
  if (summary.read > 0 && summary.skipped === summary.read) return EXIT.noFrames
  return EXIT.ok
}

/** How long a stop signal leaves for sending what is queued (systemd waits 90 s before SIGKILL). */
const SIGNAL_DRAIN_MS = 5_000

/** The validated command line. */
export interface AgentArgs {
  server: string
  name: string
  id: number
  source: { kind: 'stdin' } | { kind: 'serial', path: string, baudRate: number }
  infer: boolean
  token: string | undefined
  batchSize: number
  flushMs: number
  queueCapacity: number
  keepAliveMs: number
  timeoutMs: number
  drainMs: number
}

function integer (option: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${option} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`)
  }
  return parsed
}

/**
 * Parses and checks the agent's arguments.
 * @param env where DEVICE_TOKEN is read when --token is absent
 * @throws {UsageError} naming the wrong option
 */
export function parseAgentArgs (argv: string[], env: Record<string, string | undefined> = process.env): AgentArgs {
  const values = parseOptions(argv, {
    server: { type: 'string' },
    name: { type: 'string' },
    id: { type: 'string' },
    stdin: { type: 'boolean', default: false },
    serial: { type: 'string' },
    baud: { type: 'string' },
    infer: { type: 'boolean', default: false },
    token: { type: 'string' },
    batch: { type: 'string' },
    'flush-ms': { type: 'string' },
    queue: { type: 'string' },
    'keep-alive-ms': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'drain-ms': { type: 'string' }
  })
  if (values.server === undefined) throw new UsageError('--server URL is required')
  let url: URL
  try {
    url = new URL(values.server)
  } catch {
    throw new UsageError(`--server must be a URL such as http://192.168.1.10:20002, got ${JSON.stringify(values.server)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--server must be an http:// or https:// URL, got ${JSON.stringify(values.server)}`)
  }
  const name = values.name
  if (name === undefined) throw new UsageError('--name NAME is required')
  if (name.trim() === '' || name.length > MAX_NAME_LENGTH) throw new UsageError(`--name must be 1..${MAX_NAME_LENGTH} characters, got ${name.length}`)
  if (values.id === undefined) throw new UsageError('--id ID is required')
  const id = integer('id', values.id, 0, 0, 32767)
  if (values.stdin === (values.serial !== undefined)) throw new UsageError('give exactly one input: --stdin or --serial PATH')
  if (values.baud !== undefined && values.serial === undefined) throw new UsageError('--baud applies to --serial only')
  const source: AgentArgs['source'] = values.serial !== undefined
    ? { kind: 'serial', path: values.serial, baudRate: integer('baud', values.baud, 921600, 50, 4_000_000) }
    : { kind: 'stdin' }
  const token = values.token ?? (env.DEVICE_TOKEN || undefined)
  return {
    // without a trailing slash the client's paths join cleanly
    server: url.href.replace(/\/+$/, ''),
    name,
    id,
    source,
    infer: values.infer,
    token,
    batchSize: integer('batch', values.batch, DEFAULT_BATCH_SIZE, 1, MAX_FRAMES_PER_REQUEST),
    flushMs: integer('flush-ms', values['flush-ms'], DEFAULT_FLUSH_MS, 0, 3_600_000),
    queueCapacity: integer('queue', values.queue, DEFAULT_QUEUE_CAPACITY, 1, 10_000_000),
    keepAliveMs: integer('keep-alive-ms', values['keep-alive-ms'], DEFAULT_KEEP_ALIVE_MS, 100, 3_600_000),
    timeoutMs: integer('timeout-ms', values['timeout-ms'], 10_000, 1, 3_600_000),
    drainMs: integer('drain-ms', values['drain-ms'], 30_000, 0, 3_600_000)
  }
}

/** The one summary line: "agent: read 332, sent 330, rejected 0, dropped 0, skipped 2 (…)". */
export function formatSummary (summary: AgentSummary): string {
  let line = `agent: read ${summary.read}, sent ${summary.sent}, rejected ${summary.rejected}, dropped ${summary.dropped}, skipped ${summary.skipped}` +
    ` (retries ${summary.retries}, keep-alives ${summary.keepAlives} ok / ${summary.keepAliveFailures} failed)`
  if (summary.abandoned > 0) line += `; gave up on ${summary.abandoned} queued frames at the end`
  if (summary.skippedReasons.length > 0) {
    line += '; skipped: ' + summary.skippedReasons.map(({ reason, count }) => `${count}× ${reason}`).join('; ')
  }
  return line
}

/** Runs the agent until its input ends or a stop signal arrives; returns the exit code. */
export async function run (argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE)
    return 0
  }
  let args: AgentArgs
  try {
    args = parseAgentArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`doorsense agent: ${err.message}\n\n${USAGE}`)
    return EXIT.usage
  }
  const log = (message: string) => console.error(`agent: ${message}`)

  let source: LineSource
  try {
    source = args.source.kind === 'serial' ? await serialLines(args.source.path, args.source.baudRate) : streamLines(process.stdin)
  } catch (err) {
    console.error(`doorsense agent: ${(err as Error).message}`)
    return EXIT.usage
  }

  const agent = new Agent({
    transport: new HttpTransport({ server: args.server, name: args.name, id: args.id, token: args.token, infer: args.infer, timeoutMs: args.timeoutMs, log }),
    batchSize: args.batchSize,
    flushMs: args.flushMs,
    queueCapacity: args.queueCapacity,
    keepAliveMs: args.keepAliveMs,
    log,
    onResults: args.infer ? (results) => { for (const result of results) process.stdout.write(JSON.stringify(result) + '\n') } : undefined
  })

  let stopSignal: NodeJS.Signals | undefined
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopSignal) {
      // a second signal: the operator does not want to wait for the flush
      log(`${signal} again: exiting without sending the ${agent.queued} frames still queued`)
      process.exit(EXIT.unsent)
    }
    stopSignal = signal
    log(`${signal}: stopping; sending what is queued (up to ${SIGNAL_DRAIN_MS / 1000} s)`)
    source.close().catch(() => {})
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  log(`forwarding ${source.name} to ${args.server}${args.infer ? '/ml/post/batch' : '/server/post/frames'} as ${JSON.stringify(args.name)} (ID ${args.id})`)
  agent.start()
  let inputFailure: Error | undefined
  try {
    for await (const line of source.lines) {
      agent.push(line)
      const wait = agent.room()
      if (wait) await wait
    }
  } catch (err) {
    inputFailure = err as Error
  }
  inputFailure ??= source.failure
  await source.close()
  if (inputFailure) log(`input failed: ${inputFailure.message}`)

  const summary = await agent.finish(stopSignal ? SIGNAL_DRAIN_MS : args.drainMs)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  console.error(formatSummary(summary))
  const code = exitCodeOf(summary, inputFailure !== undefined)
  if (code === EXIT.rejected) log(`exit ${code}: the server rejected ${summary.rejected} frames`)
  if (code === EXIT.unsent) log(`exit ${code}: ${summary.dropped} frames were not delivered`)
  if (code === EXIT.noFrames) {
    log(`exit ${code}: none of the ${summary.read} lines read was a frame, so nothing was sent; ` +
      'the agent forwards the ESP32\'s CSI_DATA lines or raw Pi frames ' +
      '(a session CSV is imported with doorsense import --data FILE, or POST /training/post/import)')
  }
  return code
}

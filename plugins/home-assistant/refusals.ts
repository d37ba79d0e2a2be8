/**
 * Frames from MQTT that doorsense did not take in, counted and logged with a
 * bound that does not depend on what devices publish: a counter labelled by
 * reason only (a fixed set) and at most one log line per interval. Anyone
 * can publish on `<base>/frames/<id>` with 32,768 ids and any number of junk
 * topic names; neither may turn into as many log lines or metric series.
 */

/** Why frames from MQTT were not taken in: the counter's only label, a fixed set. */
export const REFUSAL_REASONS = ['topic', 'retained', 'too_large', 'too_many', 'undecodable', 'overloaded', 'failed'] as const

/**
 * - `topic`: `<base>/frames/<x>` where x is no device id 0..32767
 * - `retained`: a message the broker held (retain flag): taken in when it was published, not again on each subscribe
 * - `too_large`: larger than BODY_LIMIT, or than MQTT_MAX_PAYLOAD (then skipped unread)
 * - `too_many`: more frames than one batch may hold
 * - `undecodable`: no frame of the payload decodes
 * - `overloaded`: the inference queue is full
 * - `failed`: anything else that went wrong in the ingest
 */
export type RefusalReason = typeof REFUSAL_REASONS[number]

/** What a log line may say of one refusal. */
export interface RefusalDetail {
  device?: number
  topic?: string
  error?: string
}

/** Where refusals go: the bridge (topic, retained, too large to read) and the frame intake (payloads) report to one. Must not throw. */
export interface RefusalSink {
  refuse (reason: RefusalReason, detail: RefusalDetail): void
}

/** A pino-style warn (`fastify.log.child(…)` fits). */
export interface RefusalLogger {
  warn (obj: object, msg: string): void
}

export interface RefusalLogOptions {
  log: RefusalLogger
  /** Called once per refusal (for `doorsense_mqtt_frames_refused_total{reason}`). */
  onRefused?: (reason: RefusalReason) => void
  /** Least milliseconds between two log lines. Default 10000. */
  logEveryMs?: number
}

/** Longest topic a log line quotes: a junk topic may be up to 64 KiB. */
const TOPIC_CHARS = 200

/**
 * Counts every refusal and logs at most one line per `logEveryMs`: the first
 * refusal after a quiet interval at once, with its detail; the ones that
 * follow within the interval as one summary when it ends (counts by reason,
 * how many devices, the last one's detail).
 */
export class RefusalLog implements RefusalSink {
  private readonly options: RefusalLogOptions
  private readonly logEveryMs: number
  /** Set while an interval runs: its end logs what it counted. */
  private timer: NodeJS.Timeout | undefined
  private counts = new Map<RefusalReason, number>()
  /** Devices of this interval's refusals; at most 32,768 ids. */
  private devices = new Set<number>()
  private last: (RefusalDetail & { reason: RefusalReason }) | undefined
  private closed = false

  constructor (options: RefusalLogOptions) {
    this.options = options
    this.logEveryMs = options.logEveryMs ?? 10_000
  }

  refuse (reason: RefusalReason, detail: RefusalDetail): void {
    try {
      this.options.onRefused?.(reason)
    } catch {
      // a counter that throws must not turn a refusal into a crash
    }
    if (this.closed) return
    const shown = { reason, ...detail, ...(detail.topic === undefined ? {} : { topic: detail.topic.slice(0, TOPIC_CHARS) }) }
    if (this.timer === undefined) {
      this.timer = setTimeout(this.endInterval, this.logEveryMs).unref()
      this.options.log.warn(shown, 'home-assistant: frames from MQTT refused, nothing stored')
      return
    }
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1)
    if (detail.device !== undefined) this.devices.add(detail.device)
    this.last = shown
  }

  /** Logs what the running interval counted and stops its timer; later refusals are counted only. */
  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.flush()
  }

  private readonly endInterval = (): void => {
    this.timer = undefined
    // an interval that counted something starts another, so lines stay at least logEveryMs apart
    if (this.flush() && !this.closed) this.timer = setTimeout(this.endInterval, this.logEveryMs).unref()
  }

  /** Logs the summary of what was counted since the last line; false when nothing was. */
  private flush (): boolean {
    if (this.counts.size === 0) return false
    const refused = Object.fromEntries(this.counts)
    const total = [...this.counts.values()].reduce((sum, count) => sum + count, 0)
    this.options.log.warn({ refused, total, devices: this.devices.size, last: this.last, seconds: this.logEveryMs / 1000 },
      'home-assistant: frames from MQTT refused, nothing stored (summary)')
    this.counts = new Map()
    this.devices = new Set()
    this.last = undefined
    return true
  }
}

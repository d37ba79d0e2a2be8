/**
 * Retry delays for a client whose server is down (the Pi agent's doorsense
 * server, the Home Assistant bridge's MQTT broker): exponential, capped, with
 * jitter so that a room full of clients does not hammer a restarting server
 * in lock-step.
 */

/** How retry delays grow. */
export interface BackoffOptions {
  /** Nominal delay before the first retry, ms. */
  initialMs: number
  /** Ceiling of the nominal delay, ms. */
  maxMs: number
  /** Growth per attempt. */
  factor: number
  /**
   * Share of the nominal delay taken away at random, 0..1: the delay lies in
   * [nominal × (1 − jitter), nominal]. 0.5 ("equal jitter") spreads the clients out
   * while never retrying sooner than half the nominal delay.
   */
  jitter: number
}

/** The Pi agent's delays: 0.25 s, 0.5 s, 1 s, … up to 30 s, each reduced by up to half at random. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.5 })

/** The nominal (unjittered) delay before retry number `attempt` (0 = the first retry). */
export function nominalDelay (attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  // Math.min first: factor ** attempt overflows to Infinity after long outages, which min() still caps
  return Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt))
}

/** The range a jittered delay before retry `attempt` falls in, ms. */
export function delayBounds (attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): { min: number, max: number } {
  const nominal = nominalDelay(attempt, options)
  return { min: nominal * (1 - options.jitter), max: nominal }
}

/**
 * The delay before retry number `attempt` (0-based), ms.
 * @param random a source of uniform numbers in [0, 1) (tests pass their own)
 */
export function backoffDelay (attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const nominal = nominalDelay(attempt, options)
  return nominal * (1 - options.jitter * random())
}

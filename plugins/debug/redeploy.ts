/**
 * CONTRACT (placeholder until the operations issue): starts bin/redeploy
 * detached for POST /debug/post/redeploy.
 */
export interface RedeployLauncher {
  /** Whether a redeploy (started by anyone: route, cron, admin) holds the redeploy lock now. */
  isRunning (): boolean
  /**
   * Starts bin/redeploy detached (it outlives this server, which it will stop).
   * @returns its pid, or configured=false when redeploy is not wired here
   */
  start (): { configured: boolean, pid?: number }
}

export interface RedeployLauncherOptions {
  projectRoot: string
  dataDir: string
}

/** Placeholder: nothing is launched yet. */
export function createRedeployLauncher (_options: RedeployLauncherOptions): RedeployLauncher {
  return {
    isRunning: () => false,
    start: () => ({ configured: false })
  }
}

/**
 * A benchmark's load client: the benchmark's own file forked (with its role
 * variable set to 1), so the load never shares the server's event loop or
 * its RSS. serveJobs() is the forked side; ForkedClient the benchmark's.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** In the forked copy (`roleEnv` is 1): performs each job it is sent and answers the result, or the error. */
export function serveJobs<J, R> (roleEnv: string, perform: (job: J) => Promise<R>): void {
  if (process.env[roleEnv] !== '1' || !process.send) return
  process.on('message', (job: J) => {
    perform(job).then((result) => process.send!({ result }), (err: Error) => process.send!({ error: err.stack ?? err.message }))
  })
  process.on('disconnect', () => process.exit(0))
}

/** The benchmark's side: forks `moduleUrl` as its load client and sends it one job at a time. */
export class ForkedClient<J, R> {
  readonly #child: ChildProcess
  readonly #label: string

  constructor (moduleUrl: string, roleEnv: string, label: string) {
    this.#label = label
    this.#child = fork(fileURLToPath(moduleUrl), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [roleEnv]: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
  }

  run (job: J): Promise<R> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${this.#label} exited (${code}) during a run`))
      this.#child.once('exit', onExit)
      this.#child.once('message', (message: { result?: R, error?: string }) => {
        this.#child.off('exit', onExit)
        if (message.result) resolve(message.result)
        else reject(new Error(`${this.#label} failed: ${message.error}`))
      })
      this.#child.send(job as object)
    })
  }

  close (): void {
    if (this.#child.connected) this.#child.disconnect()
  }
}

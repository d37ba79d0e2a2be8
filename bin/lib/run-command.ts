import { execa, parseCommandString } from 'execa'

/**
 * Runs a command line given as one string (split like a shell would split
 * plain words; no pipes, globs or variables), with its output passed through
 * to ours so it lands in the same log. The project's node_modules/.bin comes
 * first on PATH, so `tsc` is the project's own. Throws execa's error on a
 * non-zero exit.
 */
export async function runCommand (commandLine: string, options: { cwd: string, env?: Record<string, string | undefined> }): Promise<void> {
  const [file, ...args] = parseCommandString(commandLine)
  if (file === undefined) throw new Error('empty command')
  await execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    preferLocal: true,
    localDir: options.cwd,
    stdin: 'ignore',
    stdout: 'inherit',
    stderr: 'inherit'
  })
}

/** Runs a read-only command and returns its stdout without the final newline. */
export async function readCommand (file: string, args: string[], cwd: string): Promise<string> {
  const result = await execa(file, args, { cwd, stdin: 'ignore' })
  return result.stdout.trimEnd()
}

/**
 * The command shape shared by `npm run openapi` and `npm run client`: render a
 * generated file, then either write it or (with --check) compare it with the
 * committed one. Exit codes: 0 written / up to date, 1 drift (with --check), 2 failure.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { relative } from 'node:path'
import { parseArgs } from 'node:util'

export interface GeneratedFile {
  /** Command name for messages (`openapi`, `client`). */
  name: string
  file: string
  render: () => Promise<string>
  /** What to run to fix drift, e.g. "npm run openapi". */
  fix: string
  /** What the file is generated from, for the drift message. */
  source: string
  /** The command's arguments (default: the process's). */
  args?: string[]
}

/** Runs the write-or-check command for one generated file with the process's argv; sets process.exitCode. */
export async function generatedFileCommand ({ name, file, render, fix, source, args = process.argv.slice(2) }: GeneratedFile): Promise<void> {
  const { values } = parseArgs({ args, options: { check: { type: 'boolean', default: false } } })
  const shown = relative(process.cwd(), file) || file
  try {
    const rendered = await render()
    if (!values.check) {
      writeFileSync(file, rendered)
      console.error(`wrote ${shown}`)
      return
    }
    let committed = ''
    try {
      committed = readFileSync(file, 'utf8')
    } catch {
      // a missing file is drift too
    }
    if (committed === rendered) {
      console.error(`${shown} is up to date`)
    } else {
      console.error(`${shown} differs from ${source}: run \`${fix}\` and commit the result`)
      process.exitCode = 1
    }
  } catch (err) {
    console.error(`${name}: ${(err as Error).message}`)
    process.exitCode = 2
  }
}

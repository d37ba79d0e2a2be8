#!/usr/bin/env -S node --import tsx
/**
 * bin/generate-docs (`npm run docs`): generates the typedoc site that the
 * server serves at /docs/, as typedoc.json says (entry points core/app.ts and
 * each plugin's index.ts, the README as the home page, docs/*.md as its
 * documents), into docs-site/ or `--out DIR`. The site is written beside the
 * old one and swapped in, so a running server never serves half a site.
 *
 * Exit codes: 0 generated · 1 typedoc reported errors or bad usage.
 */
import { existsSync, renameSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Application, TSConfigReader, TypeDocReader } from 'typedoc'
import { DOCS_SITE_DIR, PROJECT_ROOT } from '../core/project.js'

/** Where the site goes unless `--out` says otherwise (the docs plugin serves this folder). */
const DEFAULT_OUT = DOCS_SITE_DIR

async function main (argv: string[]): Promise<number> {
  let out: string
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
    if (values.help) {
      console.log('usage: npm run docs [-- --out DIR]   generates the typedoc site (default docs-site/)')
      return 0
    }
    out = resolve(values.out ?? DEFAULT_OUT)
  } catch (err) {
    console.error(`generate-docs: ${(err as Error).message}`)
    return 1
  }
  const started = performance.now()
  const staging = `${out}.new-${process.pid}`
  const app = await Application.bootstrapWithPlugins(
    { options: join(PROJECT_ROOT, 'typedoc.json'), out: staging },
    // typedoc.json, then tsconfig.json, as the typedoc CLI reads them; the options given here win
    [new TypeDocReader(), new TSConfigReader()]
  )
  try {
    const project = await app.convert()
    if (project === undefined || app.logger.hasErrors()) {
      console.error('generate-docs: typedoc could not convert the project (see the errors above)')
      return 1
    }
    await app.generateDocs(project, staging)
    if (app.logger.hasErrors()) {
      console.error('generate-docs: typedoc reported errors (see above)')
      return 1
    }
    const previous = `${out}.old-${process.pid}`
    if (existsSync(out)) renameSync(out, previous)
    renameSync(staging, out)
    rmSync(previous, { recursive: true, force: true })
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  console.log(`generate-docs: wrote ${out} in ${((performance.now() - started) / 1000).toFixed(2)} s`)
  return 0
}

process.exitCode = await main(process.argv.slice(2))

#!/usr/bin/env -S node --import tsx
/**
 * The doorsense CLI: `npm run -s doorsense -- <command> [options]`.
 * Each command lives in bin/commands/<command>.ts and exports
 * `run(argv): Promise<number>` (the exit code). Results go to stdout,
 * progress and diagnostics to stderr.
 */
const COMMANDS = ['import', 'train', 'eval', 'agent'] as const
type Command = typeof COMMANDS[number]

const USAGE = `usage: doorsense <command> [options]

commands:
  import --data FILE.csv                     store labelled samples from a session CSV in DATA_DIR
  train [--data FILE.csv] [--epochs N]       train on DATA_DIR's samples (after importing FILE) and activate
  eval --data FILE.csv [--holdout 0.2] [--json]
                                             train on the blocked train part of FILE, report on its tail
  agent --server URL --name NAME --id ID     forward CSI lines from --stdin or --serial to a server

import and train refuse (exit 3) while a live server owns DATA_DIR: stop it, or
add --server URL to have that server do the work.

Run "doorsense <command> --help" for a command's options.`

const [command, ...argv] = process.argv.slice(2)
if (command === undefined || command === '--help' || command === '-h') {
  console.log(USAGE)
  process.exit(command === undefined ? 1 : 0)
}
if (!(COMMANDS as readonly string[]).includes(command)) {
  console.error(`doorsense: unknown command ${JSON.stringify(command)}\n\n${USAGE}`)
  process.exit(1)
}
const module = await import(`./commands/${command as Command}.js`) as { run: (argv: string[]) => Promise<number> }
process.exitCode = await module.run(argv)

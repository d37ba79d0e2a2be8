/**
 * `npm run bench -- agent`: the Pi agent's throughput and memory, as the CLI
 * runs (`node --import tsx bin/doorsense.ts agent --stdin`), against a real
 * listening server in this process (buildApp + listen on 127.0.0.1:0, temp
 * DATA_DIR, request logging off):
 *   1. lines/s forwarded from stdin (N recorded lines: the 319 raw Pi frames
 *      and the 13 CSI_DATA lines, repeated), at batch sizes 100 (default) and
 *      500; the child's start-up (an empty input) is subtracted;
 *   2. the agent's peak RSS (VmHWM of the child, Linux) in those runs, on an
 *      empty input, and with a full queue (server unreachable, --queue 10000).
 * BENCH_AGENT_LINES (default 50000) sets N.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../core/app.js'
import { loadConfig } from '../core/config.js'
import { PROJECT_ROOT, RECORDINGS_DIR } from '../core/project.js'
import { rawPiLines } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const LINES = Number(process.env.BENCH_AGENT_LINES ?? 50_000)

interface AgentRun { seconds: number, peakRssMiB: number, exitCode: number | null, summary: string }

/** Peak resident memory of a process so far (Linux), MiB. */
function peakRss (pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) / 1024 : 0
  } catch {
    return 0
  }
}

/** Runs the agent CLI on `input`, polling its peak RSS until it exits. */
async function runAgent (args: string[], input: string): Promise<AgentRun> {
  const started = process.hrtime.bigint()
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/doorsense.ts', 'agent', ...args], {
    cwd: PROJECT_ROOT,
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, DEVICE_TOKEN: '' }
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  let peak = 0
  const poll = setInterval(() => { peak = Math.max(peak, peakRss(child.pid!)) }, 20)
  child.stdin.end(input)
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  clearInterval(poll)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return {
    seconds,
    peakRssMiB: Math.round(peak * 10) / 10,
    exitCode,
    summary: stderr.split('\n').find((line) => line.startsWith('agent: read')) ?? stderr.trim()
  }
}

export default async function bench (): Promise<BenchReport> {
  const recorded = [
    ...rawPiLines(),
    ...readFileSync(join(RECORDINGS_DIR, 'esp32-csi-tool-lines.csv'), 'utf8').split('\n')
  ].filter((line) => line.trim() !== '')
  const lines = Array.from({ length: LINES }, (_, i) => recorded[i % recorded.length])
  const input = lines.join('\n') + '\n'

  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-bench-agent-'))
  const app = await buildApp(loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    LOG_TO_FILE: 'false',
    ADMIN_TOKEN: 'bench-admin-token-0123456789',
    TF_BACKEND: 'cpu'
  }))
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const base = ['--server', url, '--name', 'bench-pi', '--stdin']

    const idle = await runAgent([...base, '--id', '1'], '')
    const table: BenchReport['table'] = [
      { run: 'empty input (start-up)', lines: 0, seconds: idle.seconds.toFixed(2), 'lines/s': '-', 'peak RSS MiB': idle.peakRssMiB }
    ]
    const results: Record<string, unknown> = { lines: LINES, startup: idle }
    for (const batch of [100, 500]) {
      const run = await runAgent([...base, '--id', String(batch), '--batch', String(batch)], input)
      const forwarding = run.seconds - idle.seconds
      const rate = Math.round(LINES / forwarding)
      table.push({ run: `--batch ${batch}`, lines: LINES, seconds: run.seconds.toFixed(2), 'lines/s': rate, 'peak RSS MiB': run.peakRssMiB })
      results[`batch${batch}`] = { ...run, forwardingSeconds: forwarding, linesPerSecond: rate }
      if (run.exitCode !== 0 || !run.summary.includes(`sent ${LINES},`)) throw new Error(`agent run failed (${run.exitCode}): ${run.summary}`)
    }
    // the queue's own cost: 10,000 frames held while the server is unreachable
    const held = lines.slice(0, 10_000).join('\n') + '\n'
    const full = await runAgent(
      ['--server', 'http://127.0.0.1:1', '--name', 'bench-pi', '--id', '9', '--stdin', '--queue', '10000', '--drain-ms', '1000'],
      held
    )
    table.push({ run: 'server down, 10,000 frames queued', lines: 10_000, seconds: full.seconds.toFixed(2), 'lines/s': '-', 'peak RSS MiB': full.peakRssMiB })
    results.fullQueue = full
    return {
      name: 'agent',
      table,
      results: { ...results, loadAverage: loadavg() },
      notes: [
        `agent → local server, ${LINES} recorded lines per run; lines/s excludes the ${idle.seconds.toFixed(1)} s start-up; ` +
          `load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`
      ]
    }
  } finally {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

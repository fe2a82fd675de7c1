/**
 * status-cli: `peercache status <url>` run as a child process (src/cli.ts
 * through tsx: the same file the `bin` builds to dist/cli.js) against a real
 * cluster's statusHandler(): the tables it prints, no key in them, and its
 * exit codes for bad usage and an unreachable URL.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serverUrl } from '../src/index.js'
import { closeServer, listenLocal } from './helpers/cluster.js'
import { KEYS, startStatusCluster, type StatusCluster } from './helpers/status-cluster.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** runCli runs the command line in a child process, bounded to 20 s. */
function runCli(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, timeout: 20_000, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

let running: StatusCluster
let run: Run

beforeAll(async () => {
  running = await startStatusCluster()
  run = await runCli(['status', running.statusUrl])
}, 60_000)

afterAll(async () => {
  await running?.close()
})

describe('npx peercache status <url>', () => {
  it('is the package\u2019s bin, a built file with a shebang', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> }
    expect(pkg.bin).toEqual({ peercache: './dist/cli.js' })
    expect(readFileSync(CLI, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node')
  })

  it('prints the cluster as tables: every peer with its state, each group, the minutes', () => {
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const { urls } = running.cluster
    expect(run.stdout).toContain(`peercache cluster, gathered by ${urls[0]} at 2026-01-01 12:03:00 UTC, ring: balanced`)
    const lines = run.stdout.split('\n')
    const peerLine = (url: string): string => lines.find((line) => line.startsWith(url))!
    expect(peerLine(urls[0]!)).toMatch(/^\S+\s+up\s+self\s/)
    expect(peerLine(urls[1]!)).toMatch(/^\S+\s+up\s+up\s/)
    expect(peerLine(urls[running.down]!)).toMatch(/^\S+\s+down \(unreachable\)\s/)
    expect(run.stdout).toMatch(/^peer\s+group\s+gets\s+hit ratio\s+main hits\s+hot hits\s+hot share\s+loads\s+peer fetches\s+bytes\s+items\s+evictions$/m)
    const groupLines = lines.filter((line) => /^\S+\s+kv\s+\d+\s+[\d.]+%/.test(line))
    expect(groupLines).toHaveLength(2)
    expect(run.stdout).toMatch(/kv\s+12:00 .*, 12:01 .*, 12:02 100\.0% of 15, 12:03/)
  })

  it('prints no key', () => {
    for (const key of KEYS) expect(run.stdout).not.toContain(key)
  })

  it('exits 2 with the usage on bad arguments', async () => {
    const bad = await runCli(['stats'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('usage: peercache status <url>')
    expect((await runCli(['status', 'ftp://x'])).code).toBe(2)
  })

  it('exits 1 naming the problem when nothing answers at the URL', async () => {
    const server = await listenLocal()
    const url = serverUrl(server)
    await closeServer(server)
    const failed = await runCli(['status', url, '--timeout', '2000'])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/^peercache status: /)
  })
})

/**
 * debian: the programs the benchmarks run that are not Node packages
 * (redis-server, wrk): found on PATH, or installed from Debian's package
 * with apt-get when this process is root and apt-get is there, so a fresh
 * machine runs the whole bench. Where neither works the caller says what is
 * missing and skips what needs it.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** apt-get may download: bounded, but generously. */
const APT_TIMEOUT_MS = 600_000

/** findExecutable returns the path of `name` on PATH, or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // not in this directory
    }
  }
  return undefined
}

/**
 * ensureExecutable returns the path of `name`, installing Debian package
 * `pkg` first when it is missing and this process is root with apt-get;
 * undefined when it is missing and cannot be installed.
 */
export function ensureExecutable(name: string, pkg: string): string | undefined {
  const found = findExecutable(name)
  if (found !== undefined || process.getuid?.() !== 0 || findExecutable('apt-get') === undefined) return found
  process.stderr.write(`${name} is missing: installing Debian package ${pkg} with apt-get…\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const args of [['update'], ['install', '-y', pkg]]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env, timeout: APT_TIMEOUT_MS })
    if (result.status !== 0) return undefined
  }
  return findExecutable(name)
}

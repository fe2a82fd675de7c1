/**
 * proc-cpu: the CPU time of a process that is not Node (redis-server), read
 * from Linux's /proc/<pid>/stat: utime + stime, in clock ticks.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** clockTicksPerSecond is `getconf CLK_TCK` (normally 100), the unit of /proc/<pid>/stat's times. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim())
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100
  } catch {
    return 100
  }
}

/**
 * processCpuMicros returns the CPU time (user + system) `pid` has used so far,
 * in µs, or NaN where /proc is not there. The command name in field 2 may
 * hold spaces and parentheses, so fields are counted after its last `)`:
 * utime and stime are fields 14 and 15 of the line.
 */
export function processCpuMicros(pid: number, ticksPerSecond: number): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return Number.NaN
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1e6) / ticksPerSecond
}

/**
 * measure-child: the process `isolated()` starts. It imports a cases module,
 * runs the one case named on its command line, and prints `RESULT <json>`.
 */
import type { BenchResult } from './harness.js'

type Cases = Record<string, () => BenchResult | Promise<BenchResult>>

const [casesUrl, name] = process.argv.slice(2)
const { cases } = (await import(casesUrl as string)) as { cases: Cases }
const run = cases[name as string]
if (run === undefined) throw new Error(`no benchmark case ${name}`)
process.stdout.write(`RESULT ${JSON.stringify(await run())}\n`)

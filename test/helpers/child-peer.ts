/**
 * child-peer: one cluster member in its own process, for
 * test/integration/child-processes.test.ts (as golang/groupcache's
 * http_test.go runs its peers).
 *
 *   PEERCACHE_SELF=http://127.0.0.1:PORT PEERCACHE_PEERS=... TAG=child-0 \
 *     node --import tsx test/helpers/child-peer.ts
 *
 * Reads its peer list from the environment (the real config path), creates
 * group `kv` whose loader answers `${TAG}:${key}`, listens on 127.0.0.1 at the
 * port of its self URL, and prints `READY` on stdout. SIGTERM closes it.
 * A key starting `hang-` loads for a minute and prints `LOADING key` when its
 * load starts (a request known to be in flight at this owner).
 *
 * With CLOCK_T0 (epoch ms) it runs on an injected clock that stands still at
 * CLOCK_T0 until the parent moves it, and adds group `swr` (ttl 1 s,
 * staleWhileRevalidate 60 s) whose loader answers `${TAG}:${key}#${n}`, n
 * counting its loads of that key. Commands, one per stdin line, each
 * answered by one stdout line: `advance MS` → `ADVANCED`, `stats GROUP` →
 * `STATS {json}`. Always: `remote N` gets N keys (k0, k1, …) this process
 * does not own from their owners → `REMOTE n` (n got; LOGGER=false sets
 * `logger: false`, else the default logger writes to stderr).
 */
import { createInterface } from 'node:readline'
import { Peercache } from '../../src/index.js'
import { closeOnSigterm } from './sigterm.js'

const tag = process.env.TAG ?? 'child'
const t0 = process.env.CLOCK_T0 === undefined ? undefined : Number(process.env.CLOCK_T0)
let now = t0 ?? 0
const cache = new Peercache({ ...(t0 === undefined ? {} : { clock: () => now }), ...(process.env.LOGGER === 'false' ? { logger: false as const } : {}) })
if (cache.self === undefined) throw new Error('child-peer needs PEERCACHE_SELF')
const kv = cache.group({ name: 'kv', cacheBytes: 1 << 20, load: (key) => (key.startsWith('hang-') ? hang(key) : `${tag}:${key}`) })

/** hang is the load of a `hang-` key: it says it started (LOADING key) and answers only after a minute (the test kills the process first). */
function hang(key: string): Promise<string> {
  process.stdout.write(`LOADING ${key}\n`)
  return new Promise((resolve) => setTimeout(() => resolve(`${tag}:${key}`), 60_000).unref())
}

/** getRemote gets up to n keys another peer owns (at most 1000 tried), and returns how many it got. */
async function getRemote(n: number): Promise<number> {
  let got = 0
  for (let i = 0; got < n && i < 1000; i++) {
    if (cache.ownerOf(`k${i}`) === cache.self) continue
    await kv.get(`k${i}`)
    got++
  }
  return got
}

if (t0 !== undefined) {
  const loads = new Map<string, number>()
  cache.group({
    name: 'swr',
    cacheBytes: 1 << 20,
    ttl: 1_000,
    staleWhileRevalidate: 60_000,
    load: (key) => {
      const n = (loads.get(key) ?? 0) + 1
      loads.set(key, n)
      return `${tag}:${key}#${n}`
    },
  })
}
createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, argument] = line.split(' ')
  if (command === 'advance') {
    now += Number(argument)
    process.stdout.write('ADVANCED\n')
  } else if (command === 'stats') process.stdout.write(`STATS ${JSON.stringify(cache.getGroup(argument ?? '')?.stats() ?? null)}\n`)
  else if (command === 'remote') void getRemote(Number(argument)).then((got) => process.stdout.write(`REMOTE ${got}\n`))
})

const port = Number(new URL(cache.self).port)
await cache.listen(port, '127.0.0.1')

closeOnSigterm(cache)

process.stdout.write('READY\n')

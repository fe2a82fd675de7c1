/**
 * Keyv's own compliance suite (@keyv/test-suite, the version that matches
 * the keyv we test with) against PeercacheStore over a real cluster: two
 * Peercache instances listening on two 127.0.0.1 ports, one group without a
 * loader on each. The suite's store factory hands out stores of both
 * members in turn, so one test's Keyv instances write through one process
 * and read through the other. Checked at the end: the keys the suite wrote
 * fell on both owners, and requests crossed processes.
 *
 * Run as shipped, through `keyvTestSuite`, except these, which cannot hold
 * for this store and run as `it.fails` (they must fail, and say so if they
 * ever stop failing), each with its reason (docs/integrations.md lists them):
 * - "namespaced clear only clears current namespace": `clear()` drops the
 *   whole group, every namespace in it. The peer protocol clears a group,
 *   and no peer can list the keys another owns; one group per namespace
 *   gives each its own clear.
 * - keyvIteratorTests (not part of keyvTestSuite): Keyv wires `iterator()`
 *   only for a Map or its own SQL/Redis/Mongo/etcd adapters, and the peer
 *   protocol has no way to list the keys the owners hold.
 */
import KeyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite'
import Keyv from 'keyv'
import * as vitest from 'vitest'
import { PeercacheStore } from '../src/integrations/keyv.js'
import { startCluster, type Cluster } from './helpers/cluster.js'

/** DOES_NOT_HOLD names the suite's tests that cannot hold for a distributed store, with the reason. */
const DOES_NOT_HOLD = new Map<string, string>([
  ['namespaced clear only clears current namespace', 'clear() drops the whole group (every namespace): one group per namespace'],
  ['.iterator() returns an asyncIterator', 'no iterator: the owners cannot list their keys, and Keyv wires iterators only for its own adapters'],
  ['iterator() iterates over all values', 'no iterator (see above)'],
  ["iterator() doesn't yield values from other namespaces", 'no iterator (see above)'],
  ["iterator() doesn't yield expired values, and deletes them", 'no iterator (see above)'],
])

/** suiteApi is vitest as the suite sees it: its tests run as they are, those in DOES_NOT_HOLD as `it.fails`. */
function suiteApi(): typeof vitest {
  const it = (name: string, fn: vitest.TestFunction, timeout?: number): void => {
    const reason = DOES_NOT_HOLD.get(name)
    if (reason === undefined) vitest.it(name, fn, timeout)
    else vitest.it.fails(`${name} — does not hold here: ${reason}`, fn, timeout)
  }
  return { ...vitest, it: it as unknown as typeof vitest.it, test: it as unknown as typeof vitest.test }
}

let cluster: Cluster | undefined
let handedOut = 0
/** written collects every key the suite's stores were asked to set (Keyv's `namespace:` prefix included). */
const written = new Set<string>()

/** RecordingStore is a PeercacheStore that notes the keys it is asked to set, so the check below can see where they fell. */
class RecordingStore extends PeercacheStore {
  override async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    written.add(key)
    return super.set(key, value, ttl)
  }
}

vitest.beforeAll(async () => {
  cluster = await startCluster(2, ({ cache }) => {
    cache.group({ name: 'keyv', cacheBytes: 8 << 20 })
  })
})

vitest.afterAll(async () => {
  await cluster?.close()
})

/** store hands out a new store per Keyv instance (Keyv sets its namespace on the store), over member 0, then 1, then 0, … */
function store(): PeercacheStore {
  const c = cluster!
  const member = handedOut++ % c.caches.length
  return new RecordingStore(c.caches[member]!, { group: c.group(member, 'keyv') })
}

vitest.describe('@keyv/test-suite over a two-peer cluster', () => {
  KeyvTestSuite(suiteApi(), Keyv, store)
  keyvIteratorTests(suiteApi(), Keyv, store)

  vitest.it('the suite’s keys fell on both owners, and requests crossed processes', () => {
    const c = cluster!
    // Who owns a key depends on the ring over the cluster's random ports, so "each member served the other" was
    // chance: one member's reads of the other's keys came to 5 keys in one run, one-sided in ~3% of runs (seen in CI).
    // What this checks instead cannot turn on a few keys: the ~40 keys the suite wrote do not all fall on one owner
    // (odds 2^-39), and some get crossed processes (each member reads a dozen keys, keyv:foo among them, missing ones
    // included: they go to the owner).
    const owners = new Set([...written].map((key) => c.ownerOf(key)))
    vitest.expect(written.size).toBeGreaterThan(20)
    vitest.expect([...owners].sort()).toEqual([0, 1])
    const served = [0, 1].map((member) => c.group(member, 'keyv').stats().serverRequests)
    vitest.expect(served[0]! + served[1]!).toBeGreaterThan(0)
    vitest.expect(handedOut).toBeGreaterThan(100)
  })
})

/**
 * served: a group's owner side (what the peer endpoint calls: serve, peek,
 * setLocal, …), reached the way peercache's own adapters reach it — through
 * internalsOf (peercache.ts), never through the Group a user holds.
 */
import type { Peercache } from '../../src/index.js'
import type { ServedGroup } from '../../src/group/owner.js'
import { internalsOf } from '../../src/peercache.js'

/** servedGroup returns the owner side of cache's group `name`; throws if there is none. */
export function servedGroup(cache: Peercache, name: string): ServedGroup {
  const served = internalsOf(cache).endpoint.group(name)
  if (served === undefined) throw new Error(`no group ${name}`)
  return served
}

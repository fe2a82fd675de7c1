/**
 * create: puts a group's parts together. Peercache keeps the two faces it
 * gets back apart: the public Group it hands the user, and the GroupInternals
 * that only peercache's own code (the endpoint, metrics, shutdown) uses.
 */
import type { GroupStats, GroupObservations } from '../stats.js'
import { Fill } from './fill.js'
import { Group } from './group.js'
import type { GroupOptions, TypedGroupOptions } from './options.js'
import { OwnerSide, type ServedGroup } from './owner.js'
import { GroupState, type GroupContext } from './state.js'
import { GroupWrites } from './writes.js'

/** GroupInternals is what peercache's own code holds of a group, beside the public Group. */
export interface GroupInternals {
  readonly name: string
  /** The owner's side, for the peer endpoint. */
  readonly served: ServedGroup
  /** Load durations by source and peer errors by peer, for metrics. */
  readonly observations: Readonly<GroupObservations>
  stats(): GroupStats
  /** generation is the group's clear generation here: sent with every request about the group (writes.ts). */
  generation(): number
  /** close stops new gets, waits up to `timeoutMs` for flights in progress, then aborts the rest. */
  close(timeoutMs: number): Promise<void>
}

/** CreatedGroup is a new group's two faces. */
export interface CreatedGroup<T> {
  group: Group<T>
  internals: GroupInternals
}

/** createGroup validates options (InvalidArgumentError) and builds a group on ctx. */
export function createGroup<T>(options: GroupOptions | TypedGroupOptions<T>, ctx: GroupContext): CreatedGroup<T> {
  const state = new GroupState<T>(options, ctx)
  const fill = new Fill<T>(state)
  const served = new OwnerSide<T>(state, fill)
  const group = new Group<T>({ state, fill, writes: new GroupWrites(served, ctx.picker, ctx.clock) })
  const internals: GroupInternals = {
    name: state.name,
    served,
    observations: state.observations,
    stats: () => state.stats(),
    generation: () => state.generation,
    close: (timeoutMs) => state.close(timeoutMs),
  }
  return { group, internals }
}

/**
 * addresses: the A and AAAA addresses of a name, asked per family (two
 * queries), each family's answer used on its own: a resolver that answers A
 * but never AAAA (or late) still gives the A addresses once the lookup's
 * patience is over (gather.ts). One family missing (ENODATA) is normal; no
 * family answering is a failed lookup.
 */
import type { Resolver } from 'node:dns/promises'
import { answersOf, firstError, gather } from './gather.js'

/**
 * resolveAddresses returns the A then AAAA addresses of name: both families
 * when they answer in time, else the ones that did. Rejects with the first
 * family's error when neither gave an address.
 */
export async function resolveAddresses(resolver: Resolver, name: string, patience: Promise<void>): Promise<string[]> {
  const outcomes = await gather([resolver.resolve4(name), resolver.resolve6(name)], patience)
  const addresses = answersOf(outcomes)
  if (addresses.length > 0) return addresses
  if (outcomes.some((outcome) => outcome !== undefined && 'answer' in outcome)) return []
  throw firstError(outcomes, `A/AAAA ${name}`)
}

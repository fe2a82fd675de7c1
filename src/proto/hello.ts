/**
 * hello: the handshake's message. A peercache peer answers
 * `GET /_peercache/hello` (HELLO_PATH, signed like every request when a
 * secret is set) with what every process of a cluster must share — ring
 * kind, peer list (as a hash and a count), base path, whether it checks
 * signatures — so a process can tell a misconfigured peer from a dead one
 * and say what to change (peers/handshake.ts). Go peers have no such path
 * and answer a bare 404: they are not asked to agree.
 */
import { createHash } from 'node:crypto'
import type { RingKind } from '../placement.js'
import { RING_KINDS } from '../placement.js'

/** HELLO_VERSION is the version of the hello message's format. */
export const HELLO_VERSION = 1

/** Hello is what a peer says about its configuration. */
export interface Hello {
  ring: RingKind
  /** peersHash of its peer list. */
  peersHash: string
  peerCount: number
  basePath: string
  /** Whether it checks request signatures (it has a secret). */
  signed: boolean
  version: number
}

/** LocalIdentity is this process's side of the comparison: what it would answer. */
export interface LocalIdentity {
  ring: RingKind
  peers: readonly string[]
  basePath: string
  signed: boolean
}

/**
 * peersHash names a peer list in a few characters: the first 12 hex digits
 * of the SHA-256 of the sorted list, one URL a line. Sorted, because the
 * ring does not depend on the order the list was written in; as written
 * otherwise, because the ring hashes the URLs as written.
 */
export function peersHash(peers: readonly string[]): string {
  return createHash('sha256').update([...peers].sort().join('\n')).digest('hex').slice(0, 12)
}

/** helloOf is the hello message of a local identity. */
export function helloOf(identity: LocalIdentity): Hello {
  const { ring, peers, basePath, signed } = identity
  return { ring, peersHash: peersHash(peers), peerCount: peers.length, basePath, signed, version: HELLO_VERSION }
}

/** parseHello reads a hello answer's body, or returns undefined for anything that is not one (a field missing or of the wrong type). */
export function parseHello(body: Uint8Array): Hello | undefined {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
  } catch {
    return undefined
  }
  if (value === null || typeof value !== 'object') return undefined
  const hello = value as Record<string, unknown>
  if (!RING_KINDS.includes(hello.ring as RingKind)) return undefined
  if (typeof hello.peersHash !== 'string' || typeof hello.basePath !== 'string' || typeof hello.signed !== 'boolean') return undefined
  if (!Number.isSafeInteger(hello.peerCount) || !Number.isSafeInteger(hello.version)) return undefined
  return hello as unknown as Hello
}

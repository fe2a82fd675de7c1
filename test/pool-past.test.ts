/**
 * PeerPool.pastOwners and PeerPool.peekable: the peers a write must reach
 * beyond the current list, because the past peer lists kept for peeking
 * (deploy.peekWindowMs) still name them. A real pool with real clients (no
 * request is sent: listing them is all this checks) and an injected clock.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { HashRing } from '../src/index.js'
import { PeerPool } from '../src/peers/pool.js'

const A = 'http://127.0.0.1:1'
const B = 'http://127.0.0.1:2'
const C = 'http://127.0.0.1:3'
const D = 'http://127.0.0.1:4'

let pool: PeerPool | undefined
let now = 0

afterEach(async () => {
  await pool?.close()
  pool = undefined
  now = 0
})

function makePool(peekWindowMs: number): PeerPool {
  pool = new PeerPool({
    self: A,
    peers: [A, B, C],
    ring: {},
    client: { basePath: '/_groupcache/', timeout: 1000, maxResponseBytes: 1 << 20 },
    listener: { down: () => {}, up: () => {} },
    random: () => 0.5,
    peekWindowMs,
    now: () => now,
  })
  return pool
}

const urls = (peers: ReadonlyArray<{ url: string }>): string[] => peers.map((peer) => peer.url).sort()
function keysOf(peers: readonly string[], owner: string): string[] {
  const ring = new HashRing(peers)
  return Array.from({ length: 400 }, (_, i) => `k${i}`).filter((key) => ring.pick(key) === owner)
}

describe('the peers past lists still name', () => {
  it('after C left: C is a past owner of its keys and still peekable, until the window ends', () => {
    const p = makePool(1000)
    expect(p.peekable()).toEqual([])
    const cKeys = keysOf([A, B, C], C)
    expect(cKeys.length).toBeGreaterThan(0)
    expect(cKeys.every((key) => p.pastOwners(key).length === 0)).toBe(true)

    p.setPeers([A, B])
    expect(urls(p.others())).toEqual([B])
    expect(urls(p.peekable())).toEqual([C])
    for (const key of cKeys) expect(urls(p.pastOwners(key))).toEqual([C])
    // A key B owned before stays B's: its past owner is B (a current peer), A's own keys have none.
    const bKeys = keysOf([A, B, C], B)
    for (const key of bKeys) expect(urls(p.pastOwners(key))).toEqual([B])
    for (const key of keysOf([A, B, C], A)) expect(p.pastOwners(key)).toEqual([])

    now = 1000 // the window has ended
    expect(p.peekable()).toEqual([])
    expect(cKeys.every((key) => p.pastOwners(key).length === 0)).toBe(true)
  })

  it('two changes in a row: every past owner of a key, newest list first, each once', () => {
    const p = makePool(1000)
    p.setPeers([A, B, D])
    p.setPeers([A, B])
    expect(urls(p.peekable())).toEqual([C, D])
    const middle = new HashRing([A, B, D])
    const moved = keysOf([A, B, C], C).filter((key) => middle.pick(key) === D)
    expect(moved.length).toBeGreaterThan(0)
    for (const key of moved) expect(p.pastOwners(key).map((peer) => peer.url)).toEqual([D, C])
  })

  it('peekWindowMs: 0 keeps nothing', () => {
    const p = makePool(0)
    p.setPeers([A, B])
    expect(p.peekable()).toEqual([])
    expect(keysOf([A, B, C], C).every((key) => p.pastOwners(key).length === 0)).toBe(true)
  })
})

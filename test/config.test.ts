/**
 * Peer configuration: where self/peers come from (options, env, JSON file),
 * in which order, how URLs are normalised, which mistakes are refused
 * (ConfigError naming the bad entry), and setPeers rebuilding the ring.
 * No request is sent: the peer URLs only need to be well formed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, HashRing, InvalidArgumentError, Peercache, type PeercacheOptions } from '../src/index.js'
import { thrownMessage } from './helpers/core-helpers.js'

const A = 'http://127.0.0.1:7001'
const B = 'http://127.0.0.1:7002'
const C = 'http://127.0.0.1:7003'
const D = 'http://127.0.0.1:7004'

let made: Peercache[] = []
let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'peercache-config-'))
})

afterEach(async () => {
  await Promise.all(made.map((cache) => cache.close()))
  made = []
  rmSync(dir, { recursive: true, force: true })
})

/** make builds a Peercache that afterEach closes; env defaults to {} so the runner's variables never leak in. */
function make(options: PeercacheOptions): Peercache {
  const cache = new Peercache({ env: {}, ...options })
  made.push(cache)
  return cache
}

/** configFile writes a JSON (or any text) config file in the temp dir and returns its path. */
function configFile(content: unknown, name = 'peers.json'): string {
  const file = join(dir, name)
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
  return file
}

/** configError runs fn, expects a ConfigError, and returns its message. */
function configError(fn: () => unknown): string {
  return thrownMessage(fn, ConfigError, 'ERR_PEERCACHE_CONFIG')
}

/** ownerOf is the owner a Peercache chooses for key (its own URL when it owns the key). */
function ownerOf(cache: Peercache, key: string): string | undefined {
  return cache.ownerOf(key)
}

const KEYS = Array.from({ length: 300 }, (_, i) => `key-${i}`)

describe('peer list from options', () => {
  it('takes self and peers as given, sorted, self included', () => {
    const cache = make({ self: B, peers: [C, A, B] })
    expect(cache.self).toBe(B)
    expect(cache.peers).toEqual([A, B, C])
  })

  it('runs alone (owns every key) without self or peers', () => {
    const cache = make({})
    expect(cache.self).toBeUndefined()
    expect(cache.peers).toEqual([])
    expect(cache.ownerOf('anything')).toBeUndefined()
  })

  it('treats self alone as a one-peer cluster that owns every key', () => {
    const cache = make({ self: A })
    expect(cache.self).toBe(A)
    expect(cache.peers).toEqual([A])
    for (const key of KEYS.slice(0, 20)) expect(cache.ownerOf(key)).toBe(A)
  })

  it('strips trailing slashes from self and peers', () => {
    const cache = make({ self: `${A}/`, peers: [`${A}/`, `${B}//`, C] })
    expect(cache.self).toBe(A)
    expect(cache.peers).toEqual([A, B, C])
    // The ring hashes the normalised strings: owners match a ring over the clean URLs.
    const ring = new HashRing([A, B, C])
    for (const key of KEYS) expect(ownerOf(cache, key)).toBe(ring.pick(key))
  })

  it('picks owners exactly as a HashRing over the peer list does', () => {
    const cache = make({ self: A, peers: [A, B, C] })
    const ring = new HashRing([A, B, C])
    const owners = new Set<string | undefined>()
    for (const key of KEYS) {
      const owner = ring.pick(key)
      owners.add(owner)
      expect(ownerOf(cache, key)).toBe(owner)
      // A key this process owns is never sent to a peer.
      if (owner === A) expect(cache.ownerOf(key)).toBe(cache.self)
    }
    expect(owners).toEqual(new Set([A, B, C]))
  })
})

describe('peer list from the environment', () => {
  it('reads PEERCACHE_SELF and the comma-separated PEERCACHE_PEERS', () => {
    const cache = make({ env: { PEERCACHE_SELF: A, PEERCACHE_PEERS: ` ${A} ,${B}/, ${C},` } })
    expect(cache.self).toBe(A)
    expect(cache.peers).toEqual([A, B, C])
  })

  it('refuses PEERCACHE_PEERS without PEERCACHE_SELF', () => {
    const message = configError(() => make({ env: { PEERCACHE_PEERS: `${A},${B}` } }))
    expect(message).toMatch(/self/)
    expect(message).toMatch(/environment/)
  })

  it('refuses a PEERCACHE_SELF that is not in PEERCACHE_PEERS, naming it', () => {
    const message = configError(() => make({ env: { PEERCACHE_SELF: D, PEERCACHE_PEERS: `${A},${B}` } }))
    expect(message).toContain(D)
  })
})

describe('peer list from the PEERCACHE_CONFIG file', () => {
  it('reads self and peers from the JSON file', () => {
    const file = configFile({ self: C, peers: [A, B, `${C}/`] })
    const cache = make({ env: { PEERCACHE_CONFIG: file } })
    expect(cache.self).toBe(C)
    expect(cache.peers).toEqual([A, B, C])
  })

  it('refuses an unreadable file, naming it', () => {
    const missing = join(dir, 'missing.json')
    expect(configError(() => make({ env: { PEERCACHE_CONFIG: missing } }))).toContain(missing)
    // A directory cannot be read as a file either.
    expect(configError(() => make({ env: { PEERCACHE_CONFIG: dir } }))).toContain(dir)
  })

  it('refuses a file that is not JSON, naming it', () => {
    const file = configFile('{ "self": "http://127.0.0.1:7001", peers: [', 'broken.json')
    const message = configError(() => make({ env: { PEERCACHE_CONFIG: file } }))
    expect(message).toContain(file)
    expect(message).toMatch(/JSON/)
  })

  it('refuses JSON that is not an object, naming the file', () => {
    const file = configFile([A, B], 'array.json')
    expect(configError(() => make({ env: { PEERCACHE_CONFIG: file } }))).toContain(file)
  })

  it('refuses a bad entry in the file, naming the entry and the file', () => {
    const file = configFile({ self: A, peers: [A, 'ftp://127.0.0.1:7002'] })
    const message = configError(() => make({ env: { PEERCACHE_CONFIG: file } }))
    expect(message).toContain('ftp://127.0.0.1:7002')
    expect(message).toContain(file)
  })
})

describe('precedence: options > environment > file', () => {
  it('options win over the environment and the file', () => {
    const file = configFile({ self: C, peers: [C, D] })
    const cache = make({ self: A, peers: [A, B], env: { PEERCACHE_SELF: B, PEERCACHE_PEERS: `${B},${C}`, PEERCACHE_CONFIG: file } })
    expect(cache.self).toBe(A)
    expect(cache.peers).toEqual([A, B])
  })

  it('the environment wins over the file', () => {
    const file = configFile({ self: C, peers: [C, D] })
    const cache = make({ env: { PEERCACHE_SELF: B, PEERCACHE_PEERS: `${A},${B}`, PEERCACHE_CONFIG: file } })
    expect(cache.self).toBe(B)
    expect(cache.peers).toEqual([A, B])
  })

  it('a bad file is not read when a higher source is set', () => {
    const file = configFile('not json at all', 'ignored.json')
    expect(make({ self: A, peers: [A, B], env: { PEERCACHE_CONFIG: file } }).self).toBe(A)
    expect(make({ env: { PEERCACHE_SELF: B, PEERCACHE_PEERS: `${A},${B}`, PEERCACHE_CONFIG: file } }).self).toBe(B)
  })

  it('an empty environment variable falls through to the file', () => {
    const file = configFile({ self: D, peers: [C, D] })
    const cache = make({ env: { PEERCACHE_SELF: '', PEERCACHE_PEERS: ' ', PEERCACHE_CONFIG: file } })
    expect(cache.self).toBe(D)
    expect(cache.peers).toEqual([C, D])
  })
})

describe('ConfigError names the bad entry', () => {
  const cases: Array<{ name: string; options: PeercacheOptions; names: string }> = [
    { name: 'an invalid URL', options: { self: A, peers: [A, 'not a url'] }, names: 'not a url' },
    { name: 'an ftp:// URL', options: { self: A, peers: [A, 'ftp://127.0.0.1:7002'] }, names: 'ftp://127.0.0.1:7002' },
    { name: 'a URL with a query', options: { self: A, peers: [A, 'http://127.0.0.1:7002/?x=1'] }, names: 'http://127.0.0.1:7002/?x=1' },
    { name: 'a URL with an empty query', options: { self: A, peers: [A, 'http://127.0.0.1:7002?'] }, names: 'http://127.0.0.1:7002?' },
    { name: 'a URL with a fragment', options: { self: A, peers: [A, 'http://127.0.0.1:7002#f'] }, names: 'http://127.0.0.1:7002#f' },
    { name: 'a URL with credentials (masked)', options: { self: A, peers: [A, 'http://u:p@127.0.0.1:7002'] }, names: 'http://***@127.0.0.1:7002' },
    { name: 'a duplicate peer', options: { self: A, peers: [A, B, C, B] }, names: B },
    { name: 'a duplicate peer once normalised', options: { self: A, peers: [A, B, `${B}/`] }, names: B },
    { name: 'self missing from peers', options: { self: D, peers: [A, B] }, names: D },
    { name: 'an invalid self', options: { self: 'ftp://127.0.0.1:7001', peers: [A] }, names: 'ftp://127.0.0.1:7001' },
  ]
  for (const c of cases) {
    it(`for ${c.name}`, () => {
      expect(configError(() => make(c.options))).toContain(c.names)
    })
  }

  it('never echoes credentials', () => {
    expect(configError(() => make({ self: A, peers: [A, 'http://user:hunter2@127.0.0.1:7002'] }))).not.toMatch(/hunter2|user:/)
  })

  it('for peers without self', () => {
    expect(configError(() => make({ peers: [A, B] }))).toMatch(/self is required/)
  })

  it('for an empty-string peer', () => {
    expect(configError(() => make({ self: A, peers: [A, ''] }))).toContain('""')
  })
})

describe('setPeers', () => {
  it('rebuilds the ring: owners move as a HashRing over the new list predicts', () => {
    const cache = make({ self: A, peers: [A, B, C] })
    const before = new HashRing([A, B, C])
    for (const key of KEYS) expect(ownerOf(cache, key)).toBe(before.pick(key))

    cache.setPeers([A, B, C, `${D}/`])
    expect(cache.peers).toEqual([A, B, C, D])
    const after = new HashRing([A, B, C, D])
    let moved = 0
    for (const key of KEYS) {
      const owner = ownerOf(cache, key)
      expect(owner).toBe(after.pick(key))
      if (owner !== before.pick(key)) {
        moved++
        // Consistent hashing: a key only ever moves to the new peer.
        expect(owner).toBe(D)
      }
    }
    expect(moved).toBeGreaterThan(0)

    cache.setPeers([A, C])
    const shrunk = new HashRing([A, C])
    for (const key of KEYS) expect(ownerOf(cache, key)).toBe(shrunk.pick(key))
    expect(KEYS.some((key) => ownerOf(cache, key) === B)).toBe(false)
  })

  it('rejects a list without self and keeps the ring it had', () => {
    const cache = make({ self: A, peers: [A, B] })
    expect(configError(() => cache.setPeers([B, C]))).toContain(A)
    expect(cache.peers).toEqual([A, B])
    const ring = new HashRing([A, B])
    for (const key of KEYS) expect(ownerOf(cache, key)).toBe(ring.pick(key))
  })

  it('rejects a bad URL and a duplicate, naming them', () => {
    const cache = make({ self: A, peers: [A, B] })
    expect(configError(() => cache.setPeers([A, 'ftp://127.0.0.1:7009']))).toContain('ftp://127.0.0.1:7009')
    expect(configError(() => cache.setPeers([A, C, C]))).toContain(C)
    expect(cache.peers).toEqual([A, B])
  })

  it('needs self: a Peercache created without peers cannot take a peer list', () => {
    const cache = make({})
    expect(configError(() => cache.setPeers([A, B]))).toMatch(/self/)
  })
})

describe('ring kind: option, PEERCACHE_RING, file', () => {
  const GO = { ring: 'groupcache' } as const

  /** ringOf names the ring kind a Peercache routes by: the one whose owners it reproduces on every key. */
  function ringOf(cache: Peercache): string {
    const kinds = (['balanced', 'groupcache'] as const).filter((ring) => {
      const reference = new HashRing(cache.peers, { ring })
      return KEYS.every((key) => ownerOf(cache, key) === reference.pick(key))
    })
    expect(kinds).toHaveLength(1)
    return kinds[0]!
  }

  it('the two rings tell apart on these keys (so ringOf can name one)', () => {
    const balanced = new HashRing([A, B, C])
    const go = new HashRing([A, B, C], GO)
    expect(KEYS.some((key) => balanced.pick(key) !== go.pick(key))).toBe(true)
  })

  it("defaults to 'balanced'", () => {
    expect(ringOf(make({ self: A, peers: [A, B, C] }))).toBe('balanced')
    expect(ringOf(make({ env: { PEERCACHE_SELF: A, PEERCACHE_PEERS: `${A},${B},${C}` } }))).toBe('balanced')
  })

  it("takes ring: 'groupcache' from the options", () => {
    expect(ringOf(make({ self: A, peers: [A, B, C], ring: 'groupcache' }))).toBe('groupcache')
  })

  it('takes PEERCACHE_RING, whichever source gives the peers', () => {
    expect(ringOf(make({ self: A, peers: [A, B, C], env: { PEERCACHE_RING: 'groupcache' } }))).toBe('groupcache')
    expect(ringOf(make({ env: { PEERCACHE_SELF: B, PEERCACHE_PEERS: `${A},${B},${C}`, PEERCACHE_RING: ' groupcache ' } }))).toBe('groupcache')
    const file = configFile({ self: C, peers: [A, B, C] })
    expect(ringOf(make({ env: { PEERCACHE_CONFIG: file, PEERCACHE_RING: 'groupcache' } }))).toBe('groupcache')
  })

  it('takes "ring" from the PEERCACHE_CONFIG file that gives the peers', () => {
    const file = configFile({ self: C, peers: [A, B, C], ring: 'groupcache' })
    expect(ringOf(make({ env: { PEERCACHE_CONFIG: file } }))).toBe('groupcache')
  })

  it('precedence: option > PEERCACHE_RING > file', () => {
    const file = configFile({ self: C, peers: [A, B, C], ring: 'groupcache' })
    expect(ringOf(make({ ring: 'balanced', self: A, peers: [A, B, C], env: { PEERCACHE_RING: 'groupcache' } }))).toBe('balanced')
    expect(ringOf(make({ env: { PEERCACHE_CONFIG: file, PEERCACHE_RING: 'balanced' } }))).toBe('balanced')
  })

  it('setPeers keeps the ring kind', () => {
    const cache = make({ self: A, peers: [A, B], ring: 'groupcache' })
    cache.setPeers([A, B, C])
    expect(ringOf(cache)).toBe('groupcache')
  })

  it.each([
    ['the options', { self: A, ring: 'maglev' as 'balanced' }, 'options'],
    ['PEERCACHE_RING', { self: A, env: { PEERCACHE_RING: 'Groupcache' } }, 'PEERCACHE_RING'],
  ])('refuses an unknown ring kind from %s, naming the source', (_source, options, names) => {
    const message = configError(() => make(options))
    expect(message).toContain(names)
    expect(message).toMatch(/'balanced' or 'groupcache'/)
  })

  it('refuses an unknown ring kind from the file, naming the file', () => {
    const file = configFile({ self: A, peers: [A, B], ring: 42 })
    expect(configError(() => make({ env: { PEERCACHE_CONFIG: file } }))).toContain(file)
  })

  it("refuses a hash with the balanced ring at construction, with or without peers; takes it with 'groupcache'", () => {
    const hash = (data: string): number => data.length
    expect(() => make({ hash })).toThrow(InvalidArgumentError)
    expect(() => make({ self: A, peers: [A, B], hash })).toThrow(/groupcache/)
    expect(() => make({ ring: 'balanced', replicas: 0 })).toThrow(InvalidArgumentError)
    const go = make({ self: A, peers: [A, B], ring: 'groupcache', hash, replicas: 1 })
    expect(go.peers).toEqual([A, B])
  })
})

/**
 * Negative caching stays within its cap (`cacheBytes / 8`): the memory counts
 * what it keeps — key, message (truncated, copied) and a measured per-entry
 * overhead — so many distinct missing keys with long NotFoundError messages
 * cannot hold more. Checked twice: the memory's own count (NotFoundMemory),
 * and the real heap of a child process (--expose-gc) after 60,000 misses in
 * an 8 MiB group.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { NotFoundError } from '../../src/index.js'
import { MAX_MESSAGE_CHARS, NotFoundMemory } from '../../src/group/not-found.js'

const SCRIPT = fileURLToPath(new URL('../helpers/not-found-heap.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CACHE_BYTES = 8 << 20
const CAP = CACHE_BYTES / 8

function longMessage(key: string, bytes: number): string {
  return Buffer.from(`no row ${key} `.padEnd(bytes, '.'), 'latin1').toString('latin1')
}

describe('the not-found memory’s cap', () => {
  it('its counted bytes never exceed cacheBytes / 8, however long the messages; a message is kept truncated', () => {
    const memory = new NotFoundMemory(600_000, CAP)
    for (let i = 0; i < 60_000; i++) {
      const key = `missing-key-${i}`
      memory.remember(key, new NotFoundError(longMessage(key, 1024)), 0)
      if (i % 1000 === 0) expect(memory.bytes).toBeLessThanOrEqual(CAP)
    }
    expect(memory.bytes).toBeLessThanOrEqual(CAP)
    expect(memory.bytes).toBeGreaterThan(CAP * 0.9) // full, not empty
    const recalled = memory.recall('missing-key-59999', 1)
    expect(recalled).toBeInstanceOf(NotFoundError)
    expect(recalled!.message).toBe(longMessage('missing-key-59999', 1024).slice(0, MAX_MESSAGE_CHARS))
    // A two-byte message (UTF-16 in V8) counts two bytes a character.
    const wide = new NotFoundMemory(600_000, CAP)
    wide.remember('k', new NotFoundError('ğ'.repeat(100)), 0)
    const narrow = new NotFoundMemory(600_000, CAP)
    narrow.remember('k', new NotFoundError('u'.repeat(100)), 0)
    expect(wide.bytes - narrow.bytes).toBe(100)
  })

  for (const messageBytes of [30, 1024]) {
    it(`60,000 distinct missing keys (${messageBytes}-byte messages) in an 8 MiB group grow the heap by at most the cap + 25%`, { timeout: 60_000 }, async () => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', SCRIPT], {
        cwd: ROOT,
        env: { ...process.env, KEYS: '60000', MESSAGE_BYTES: String(messageBytes), CACHE_BYTES: String(CACHE_BYTES) },
        timeout: 50_000,
      })
      const { before, after, notFoundHits } = JSON.parse(stdout.trim()) as { before: number; after: number; notFoundHits: number }
      expect(notFoundHits).toBe(1) // the memory works: the last key is answered from it
      expect(after - before).toBeLessThanOrEqual(CAP * 1.25)
    })
  }
})

/**
 * RestartBackoff (src/cluster/backoff.ts): the delay forkPeerWorkers waits
 * before refilling a slot. Early exits in a row double it up to the cap; a
 * worker that ran stableMs ends the streak and is replaced at once. The
 * integration test (node-cluster-backoff) runs it with a real taken port.
 */
import { describe, expect, it } from 'vitest'
import { RestartBackoff } from '../src/cluster/backoff.js'

describe('RestartBackoff', () => {
  it('doubles with each early exit in a row, up to maxMs; a stable run resets it', () => {
    const backoff = new RestartBackoff({ minMs: 100, maxMs: 1000, stableMs: 5000 })
    expect([1, 2, 3, 4, 5, 6].map(() => backoff.exited(10))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect(backoff.streak).toBe(6)
    expect(backoff.exited(5000)).toBe(0)
    expect(backoff.streak).toBe(0)
    expect(backoff.exited(4999)).toBe(100)
  })

  it('stays finite over a very long streak, and its defaults are 1 s, 30 s, 10 s', () => {
    const backoff = new RestartBackoff()
    let last = 0
    for (let i = 0; i < 2000; i++) last = backoff.exited(0)
    expect(last).toBe(30_000)
    expect(new RestartBackoff().exited(9_999)).toBe(1000)
    expect(new RestartBackoff().exited(10_000)).toBe(0)
  })
})

/**
 * PeerHealth: when a peer is marked down and how its probes back off. The
 * random source is fixed at 1 so a delay is its ceiling, computable by hand.
 */
import { describe, expect, it } from 'vitest'
import { PeerHealth } from '../src/peers/health.js'

const ceilingOf = (health: PeerHealth): number => health.nextProbeDelay()

describe('PeerHealth', () => {
  it('a probe that marks the peer up keeps the backoff: a peer that answers probes but fails requests is probed ever more slowly', () => {
    const health = new PeerHealth({ failureThreshold: 1, probeMinMs: 100, probeMaxMs: 100_000 }, () => 1)
    const delays: number[] = []
    for (let round = 0; round < 4; round++) {
      expect(health.failed(false)).toBe(true) // down
      delays.push(ceilingOf(health))
      expect(health.succeeded()).toBe(true) // the probe's answer: up
    }
    expect(delays).toEqual([100, 200, 400, 800])
  })

  it('a request served while up restarts the backoff', () => {
    const health = new PeerHealth({ failureThreshold: 1, probeMinMs: 100, probeMaxMs: 100_000 }, () => 1)
    health.failed(false)
    expect(ceilingOf(health)).toBe(100)
    expect(ceilingOf(health)).toBe(200)
    health.succeeded() // probe: up
    health.succeeded() // a request served
    health.failed(false)
    expect(ceilingOf(health)).toBe(100)
  })
})

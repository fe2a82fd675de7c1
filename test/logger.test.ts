/**
 * logger: the default logger writes warnings and errors to stderr, once per
 * streak; `logger: false` silences it; a custom logger replaces it. The
 * streak rules are checked on an injected stream; the default itself on the
 * stderr of real child processes (child-peer.ts) whose peer list names a
 * port nobody listens on.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidArgumentError, Peercache } from '../src/index.js'
import { formatLine, stderrLogger } from '../src/logger.js'
import { command, reservePorts, startChild, stopChild, type ChildPeer } from './helpers/child-procs.js'

/** lines collects what a default logger writes to an injected stream. */
function capture(maxSubjects?: number): { lines: string[]; logger: ReturnType<typeof stderrLogger> } {
  const lines: string[] = []
  const logger = stderrLogger({ stream: { write: (line: string) => lines.push(line) }, ...(maxSubjects === undefined ? {} : { maxSubjects }) })
  return { lines, logger }
}

describe('stderrLogger', () => {
  it('writes warn and error lines with their fields; debug and info are silent', () => {
    const { lines, logger } = capture()
    logger.debug({ peer: 'http://a' }, 'a detail')
    logger.info({ peer: 'http://a' }, 'peer marked up')
    logger.warn({ peer: 'http://a', err: new Error('ECONNREFUSED') }, 'peer marked down')
    logger.error({ err: new TypeError('boom') }, 'peer handler failed')
    expect(lines).toEqual(['peercache warn: peer marked down peer=http://a err=Error: ECONNREFUSED\n', 'peercache error: peer handler failed err=TypeError: boom\n'])
  })

  it('writes each message about one subject once, until an info about that subject ends the streak', () => {
    const { lines, logger } = capture()
    for (let i = 0; i < 10; i++) {
      logger.warn({ group: 'kv', peer: 'http://a', key: `k${i}` }, 'peer request failed, loading locally')
      if (i === 3) logger.warn({ peer: 'http://a' }, 'peer marked down')
    }
    logger.warn({ peer: 'http://b' }, 'peer request failed, loading locally')
    expect(lines.length).toBe(3)
    // Success (an info about the peer) ends the streak: the next failure is news again.
    logger.info({ peer: 'http://a' }, 'peer marked up')
    logger.warn({ peer: 'http://a' }, 'peer marked down')
    // A debug line does not end a streak.
    logger.debug({ peer: 'http://a' }, 'handshake done')
    logger.warn({ peer: 'http://a' }, 'peer marked down')
    expect(lines.map((line) => line.split(/ \w+=/)[0])).toEqual([
      'peercache warn: peer request failed, loading locally',
      'peercache warn: peer marked down',
      'peercache warn: peer request failed, loading locally',
      'peercache warn: peer marked down',
    ])
  })

  it('remembers streaks for a bounded number of subjects, forgetting the oldest', () => {
    const { lines, logger } = capture(2)
    for (const peer of ['http://a', 'http://b', 'http://c']) logger.warn({ peer }, 'down')
    logger.warn({ peer: 'http://c' }, 'down')
    logger.warn({ peer: 'http://a' }, 'down')
    expect(lines.length).toBe(4)
  })

  it('keeps a line to one bounded line', () => {
    const line = formatLine('warn', { body: 'x'.repeat(5000), text: 'two\nlines' }, 'long')
    expect(line.endsWith('\n')).toBe(true)
    expect(line.slice(0, -1)).not.toContain('\n')
    expect(line.length).toBeLessThan(2100)
  })
})

describe('the logger option', () => {
  it('refuses what is not false or a pino-shaped logger, naming what it lacks', () => {
    expect(() => new Peercache({ env: {}, logger: { warn: () => {} } as never })).toThrow(/logger must be false or a pino-shaped object.*lacks debug, info, error/)
    expect(() => new Peercache({ env: {}, logger: true as never })).toThrow(InvalidArgumentError)
  })

  it('takes a custom logger as it is, and false as none', async () => {
    const custom = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }
    const a = new Peercache({ env: {}, logger: custom })
    const b = new Peercache({ env: {}, logger: false })
    expect(a.logger).toBe(custom)
    expect(b.logger).not.toBe(custom)
    await Promise.all([a.close(), b.close()])
  })
})

describe('the default logger in a real process', () => {
  const children: ChildPeer[] = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => stopChild(child)))
  })

  /** runAgainstDeadPeer starts a child whose other peer is down, has it get remote keys, and returns its stderr. */
  async function runAgainstDeadPeer(env: Record<string, string>): Promise<{ stderr: string; got: number }> {
    const [self, dead] = await reservePorts(2)
    const child = await startChild('lonely', self!, [self!, dead!], env)
    children.push(child)
    let stderr = ''
    child.process.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const ended = new Promise((resolve) => child.process.stderr.once('end', resolve))
    const got = Number((await command(child, 'remote 10', 'REMOTE')).split(' ')[1])
    // Everything the child wrote is read once its stderr ends (it ends when the child exits): no sleep on the pipe.
    await stopChild(child)
    await ended
    return { stderr, got }
  }

  it('writes a dead peer to stderr once per streak', async () => {
    const { stderr, got } = await runAgainstDeadPeer({})
    const lines = stderr.split('\n').filter((line) => line.startsWith('peercache '))
    // Three failed gets (the failure threshold) mark the peer down; the first one is written, then the marking down.
    expect(got).toBeGreaterThanOrEqual(3)
    expect(lines.filter((line) => line.startsWith('peercache warn: peer request failed, loading locally')).length).toBe(1)
    expect(lines.filter((line) => line.startsWith('peercache warn: peer marked down')).length).toBe(1)
    expect(lines[0]).toMatch(/ECONNREFUSED/)
  }, 30_000)

  it('writes nothing with logger: false', async () => {
    const { stderr, got } = await runAgainstDeadPeer({ LOGGER: 'false' })
    expect(got).toBeGreaterThanOrEqual(3)
    expect(stderr).not.toMatch(/^peercache /m)
  }, 30_000)
})

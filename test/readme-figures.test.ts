/**
 * The README's performance figures are quotes of BENCHMARKS.md (what
 * `npm run bench` wrote), never numbers of their own: every decimal figure
 * of a bullet of its Performance section appears in the BENCHMARKS.md rows
 * of the suite that bullet speaks of, and the run's date is named. When the
 * benchmarks are run again, this test asks for the README to follow.
 */
import { describe, expect, it } from 'vitest'
import { readDoc, section } from './helpers/docs.js'

/** The BENCHMARKS.md rows each bullet quotes (a suite's results, and its targets' rows), by the bullet's bold label. */
const ROWS: Record<string, RegExp> = {
  'A get from a remote owner': /^\| (remote|serving) \|/,
  'Batches:': /^\| batch \|/,
  'Local hits:': /^\| (local hit \||group\.(peek|get) \()/,
  'Hot cache:': /^\| hot cache \|/,
  'Memory under churn:': /^\| memory \|/,
  'Ring:': /^\| balanced \|/,
}

/** figures lists a text's decimal numbers, less the benchmark's parameters (Zipf 0.99, a coin of 0.1). */
function figures(text: string): string[] {
  return [...text.matchAll(/(?<![\d.])(?<!Zipf |coin of )\d+\.\d+(?![\d.])/g)].map((m) => m[0])
}

describe("the README's Performance section", () => {
  const performance = section('README.md', 'Performance')
  const benchmarks = readDoc('BENCHMARKS.md').split('\n')
  const bullets = performance.split('\n- ').slice(1).map((bullet) => bullet.split('\n\n')[0]!)

  it('has a bullet for each suite it quotes, and no other', () => {
    const labels = bullets.map((bullet) => /^\*\*(.+?)\*\*/.exec(bullet)?.[1])
    expect(labels).toEqual(Object.keys(ROWS))
  })

  it('quotes every decimal figure of a bullet from the rows of its suite in BENCHMARKS.md', () => {
    let count = 0
    for (const bullet of bullets) {
      const label = /^\*\*(.+?)\*\*/.exec(bullet)![1]!
      const rows = benchmarks.filter((line) => ROWS[label]!.test(line)).join('\n')
      expect(rows, label).not.toBe('')
      const quoted = (figure: string): boolean => new RegExp(`(?<![\\d.])${figure.replace('.', '\\.')}(?![\\d.])`).test(rows)
      const found = figures(bullet)
      count += found.length
      expect(found.filter((figure) => !quoted(figure)), label).toEqual([])
    }
    expect(count).toBeGreaterThan(10)
  })

  it("names the run's date", () => {
    const date = /on (\d{4}-\d{2}-\d{2})/.exec(benchmarks.join('\n'))?.[1]
    expect(date).toBeDefined()
    expect(performance).toContain(date)
  })
})

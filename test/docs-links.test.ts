/**
 * The documentation's links: every relative link in README.md and docs/*.md
 * leads to a file of this repository, and a link to a heading leads to a
 * heading that page has (GitHub's anchors). A moved section or a renamed
 * heading breaks this test, not a reader's click.
 */
import { describe, expect, it } from 'vitest'
import { anchors, brokenLinks, docPages, readDoc, relativeLinks } from './helpers/docs.js'

describe('links in README.md and docs/', () => {
  it('covers the README and every docs page, and the README links to every page', () => {
    const pages = docPages()
    expect(pages).toEqual(expect.arrayContaining(['README.md', 'docs/api.md', 'docs/configuration.md', 'docs/semantics.md']))
    const linked = new Set(relativeLinks(readDoc('README.md')).map((link) => link.split('#')[0]))
    expect(pages.filter((page) => page !== 'README.md' && !linked.has(page))).toEqual([])
  })

  for (const page of docPages()) {
    it(`every relative link of ${page} leads to a file and heading that exist`, () => {
      expect(brokenLinks(page, readDoc(page))).toEqual([])
    })
  }

  it('the checker finds a missing file, a missing heading, and a link out of the repository', () => {
    const page = 'docs/example.md'
    const text = [
      '# Title',
      '## Same `code`, here',
      'ok: [a](#title) [b](#same-code-here) [c](api.md#errors) [d](../README.md) [e](https://example.com/x)',
      'broken: [f](nope.md) [g](#nowhere) [h](api.md#no-such-heading) [i](../../etc/passwd)',
      '`[not a link](nope.md)`',
      '```',
      '[in code](nope.md)',
      '```',
    ].join('\n')
    expect(brokenLinks(page, text)).toEqual(['nope.md', '#nowhere', 'api.md#no-such-heading', '../../etc/passwd'])
  })

  it('gives headings the anchors GitHub gives them', () => {
    expect([...anchors('# Serve stale, refresh once\n## `tls` and `serverTls`\n## A\n## A\n```\n# not a heading\n```\n')]).toEqual([
      'serve-stale-refresh-once',
      'tls-and-servertls',
      'a',
      'a-1',
    ])
  })
})

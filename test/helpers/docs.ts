/**
 * docs: reads the documentation the way the docs tests check it — a page's
 * `## heading` section, the anchors GitHub gives a page's headings, and the
 * relative links of a page that lead nowhere.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** ROOT is the repository's root folder, with a trailing slash. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** docPages lists README.md and every page of docs/, relative to ROOT. */
export function docPages(): string[] {
  return ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((file) => file.endsWith('.md')).map((file) => `docs/${file}`)]
}

/** readDoc reads a page relative to ROOT. */
export function readDoc(page: string): string {
  return readFileSync(join(ROOT, page), 'utf8')
}

/** section is the text of a page's `## heading` section, up to the next `## ` heading; throws if there is none. */
export function section(page: string, heading: string): string {
  const text = readDoc(page)
  const start = text.indexOf(`\n## ${heading}\n`)
  if (start < 0) throw new Error(`${page} has no "## ${heading}" section`)
  const end = text.indexOf('\n## ', start + 1)
  return text.slice(start, end < 0 ? undefined : end)
}

/** proseLines is the text's lines outside fenced code blocks, with inline code spans blanked. */
function proseLines(text: string): string[] {
  let fenced = false
  return text.split('\n').flatMap((line) => {
    if (line.startsWith('```')) {
      fenced = !fenced
      return []
    }
    return fenced ? [] : [line.replace(/`[^`]*`/g, (code) => ' '.repeat(code.length))]
  })
}

/** slug is the anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
}

/** anchors lists the anchors of a page's headings (a repeated heading gets -1, -2, … as on GitHub). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>()
  const found = new Set<string>()
  let fenced = false
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line)
    if (!heading) continue
    const base = slug(heading[1]!)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    found.add(count === 0 ? base : `${base}-${count}`)
  }
  return found
}

/** links lists the targets of a page's markdown links outside code, less those to other sites. */
export function relativeLinks(text: string): string[] {
  return proseLines(text)
    .flatMap((line) => [...line.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!))
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
}

/**
 * brokenLinks lists the relative links of `text` (the page at `page`,
 * relative to ROOT) that lead to no file, or to a heading its page lacks.
 * `read` reads a page by its path relative to ROOT.
 */
export function brokenLinks(page: string, text: string, read: (path: string) => string = readDoc): string[] {
  return relativeLinks(text).filter((target) => {
    const [path = '', anchor] = target.split('#')
    const file = path === '' ? page : relative(ROOT, join(ROOT, dirname(page), path))
    if (path !== '' && (file.startsWith('..') || !existsSync(join(ROOT, file)))) return true
    if (anchor === undefined) return false
    return !file.endsWith('.md') || !anchors(file === page ? text : read(file)).has(anchor)
  })
}

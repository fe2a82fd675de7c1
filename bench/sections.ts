/**
 * sections: parts of BENCHMARKS.md written by a suite that runs only when
 * named (the cluster benchmark takes minutes), between marker comments. A
 * full `npm run bench` regenerates the rest of the file and keeps them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

const FILE = new URL('../BENCHMARKS.md', import.meta.url)
const SECTION = /<!-- section:([a-z-]+) -->\n[\s\S]*?<!-- \/section:\1 -->\n/g

function begin(name: string): string {
  return `<!-- section:${name} -->\n`
}

function end(name: string): string {
  return `<!-- /section:${name} -->\n`
}

function current(): string {
  return existsSync(FILE) ? readFileSync(FILE, 'utf8') : ''
}

/** writeSection puts `body` into BENCHMARKS.md as section `name`, replacing the old one or appending it. */
export function writeSection(name: string, body: string): void {
  const text = current()
  const section = `${begin(name)}${body.trimEnd()}\n${end(name)}`
  const start = text.indexOf(begin(name))
  const stop = text.indexOf(end(name))
  const next = start >= 0 && stop > start ? text.slice(0, start) + section + text.slice(stop + end(name).length) : `${text.trimEnd()}\n\n${section}`
  writeFileSync(FILE, next)
}

/** keepSections appends to a regenerated `document` the sections the current BENCHMARKS.md holds. */
export function keepSections(document: string): string {
  const sections = current().match(SECTION) ?? []
  return sections.length === 0 ? document : `${document.trimEnd()}\n\n${sections.join('\n')}`
}

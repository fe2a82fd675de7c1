/**
 * yaml: a parser for the small part of YAML the example manifests use
 * (examples/), so a test can read them without a dependency: block mappings
 * and sequences by indentation, `---` documents, plain / quoted scalars,
 * flow sequences of double-quoted strings, `#` comments. Anything else
 * (anchors, block scalars, flow mappings) throws rather than misread.
 */

/** YamlValue is what a document parses to. */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue }

interface Line {
  indent: number
  text: string
  number: number
}

/** parseYaml parses every document of text. */
export function parseYaml(text: string): YamlValue[] {
  return text.split(/^---\s*$/m).map((doc) => {
    const lines = toLines(doc)
    if (lines.length === 0) return null
    const [value, next] = parseBlock(lines, 0, lines[0]!.indent)
    if (next !== lines.length) throw new Error(`yaml: unexpected indentation at line ${lines[next]!.number}`)
    return value
  }).filter((doc) => doc !== null)
}

function toLines(doc: string): Line[] {
  return doc.split('\n').flatMap((raw, i) => {
    const text = stripComment(raw).trimEnd()
    if (text.trim() === '') return []
    return [{ indent: text.length - text.trimStart().length, text: text.trimStart(), number: i + 1 }]
  })
}

function stripComment(line: string): string {
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === '#' && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i)
  }
  return line
}

/** parseBlock parses the block starting at lines[i] with the given indent; returns the value and the next line index. */
function parseBlock(lines: Line[], i: number, indent: number): [YamlValue, number] {
  return lines[i]!.text.startsWith('- ') || lines[i]!.text === '-' ? parseSequence(lines, i, indent) : parseMapping(lines, i, indent)
}

function parseSequence(lines: Line[], i: number, indent: number): [YamlValue[], number] {
  const items: YamlValue[] = []
  while (i < lines.length && lines[i]!.indent === indent && lines[i]!.text.startsWith('-')) {
    const rest = lines[i]!.text.slice(1).trimStart()
    if (rest === '') {
      const [value, next] = parseBlock(lines, i + 1, lines[i + 1]!.indent)
      items.push(value)
      i = next
    } else if (isMappingEntry(rest)) {
      // "- key: value" opens a mapping whose entries sit at the indent of "key".
      const inner = indent + lines[i]!.text.length - rest.length
      const copy = [...lines]
      copy[i] = { indent: inner, text: rest, number: lines[i]!.number }
      const [value, next] = parseMapping(copy, i, inner)
      items.push(value)
      i = next
    } else {
      items.push(scalar(rest, lines[i]!.number))
      i++
    }
  }
  return [items, i]
}

function parseMapping(lines: Line[], i: number, indent: number): [{ [key: string]: YamlValue }, number] {
  const map: { [key: string]: YamlValue } = {}
  while (i < lines.length && lines[i]!.indent === indent) {
    const line = lines[i]!
    if (!isMappingEntry(line.text)) throw new Error(`yaml: expected "key: value" at line ${line.number}`)
    const colon = line.text.indexOf(':')
    const key = unquote(line.text.slice(0, colon).trim())
    const rest = line.text.slice(colon + 1).trim()
    if (rest !== '') {
      map[key] = scalar(rest, line.number)
      i++
    } else if (i + 1 < lines.length && lines[i + 1]!.indent > indent) {
      const [value, next] = parseBlock(lines, i + 1, lines[i + 1]!.indent)
      map[key] = value
      i = next
    } else {
      map[key] = null
      i++
    }
  }
  return [map, i]
}

function isMappingEntry(text: string): boolean {
  return /^("[^"]*"|'[^']*'|[^\s"'[{][^:]*):(\s|$)/.test(text)
}

function scalar(text: string, number: number): YamlValue {
  if (text.startsWith('[')) return JSON.parse(text) as YamlValue[]
  if (/^[&*!|>{]/.test(text)) throw new Error(`yaml: unsupported syntax at line ${number}: ${text}`)
  if (text.startsWith('"') || text.startsWith("'")) return unquote(text)
  if (text === 'true' || text === 'false') return text === 'true'
  if (text === 'null' || text === '~') return null
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text)
  return text
}

function unquote(text: string): string {
  if (text.startsWith('"')) return JSON.parse(text) as string
  if (text.startsWith("'")) return text.slice(1, -1).replaceAll("''", "'")
  return text
}

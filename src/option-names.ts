/**
 * option-names: an options object may hold only the names its schema
 * knows. A misspelt option (`timout`, `maxAge`) would otherwise be ignored
 * without a word and the default used instead; here it is an
 * InvalidArgumentError naming the closest valid option, or, for a name an
 * earlier version used, the name it has now.
 */
import { InvalidArgumentError } from './errors.js'

/**
 * OptionSchema lists the names an options object may hold; a nested object
 * option names its own schema. `renamed` maps names an earlier version
 * accepted to their place now, and `aliases` names other libraries use (for the error's hint).
 */
export interface OptionSchema {
  readonly names: readonly string[]
  readonly nested?: Readonly<Record<string, OptionSchema>>
  readonly renamed?: Readonly<Record<string, string>>
  /** Names other caches use for an option peercache has under another name (lru-cache's `maxAge` is our `ttl`). */
  readonly aliases?: Readonly<Record<string, string>>
}

/** checkOptionNames throws InvalidArgumentError for the first name in options that schema does not know. */
export function checkOptionNames(options: object, schema: OptionSchema, where: string): void {
  for (const name of Object.keys(options)) {
    const value = (options as Record<string, unknown>)[name]
    if (!schema.names.includes(name)) throw unknownOption(name, schema, where)
    const nested = schema.nested?.[name]
    if (nested !== undefined && value !== undefined && value !== null && typeof value === 'object') {
      checkOptionNames(value, nested, `${where}.${name}`)
    }
  }
}

function unknownOption(name: string, schema: OptionSchema, where: string): InvalidArgumentError {
  const renamed = schema.renamed?.[name]
  const alias = schema.aliases?.[name]
  const hint = renamed !== undefined ? `it is now ${renamed}` : alias !== undefined ? `peercache calls it ${where}.${alias}` : closestHint(name, schema, where)
  return new InvalidArgumentError(`unknown option ${where}.${name}: ${hint}`)
}

/** closestHint names the valid option (at this level or one down) closest to name by edit distance. */
function closestHint(name: string, schema: OptionSchema, where: string): string {
  let best = { path: '', distance: Infinity }
  const consider = (candidate: string, path: string): void => {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < best.distance) best = { path, distance }
  }
  for (const candidate of schema.names) consider(candidate, `${where}.${candidate}`)
  for (const [parent, nested] of Object.entries(schema.nested ?? {})) {
    for (const candidate of nested.names) consider(candidate, `${where}.${parent}.${candidate}`)
  }
  const close = best.distance <= Math.max(2, Math.floor(name.length / 2))
  return close ? `did you mean ${best.path}?` : `valid options are ${schema.names.join(', ')}`
}

/** editDistance is the Levenshtein distance of a and b (option names: short, so the O(n·m) table is fine). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution)
    }
    previous = current
  }
  return previous[b.length] as number
}

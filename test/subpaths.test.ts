/**
 * The integration subpaths (issue 11): `peercache/fastify`,
 * `peercache/prom-client`, `peercache/keyv` and `peercache/opentelemetry` are
 * exported with the same conditions as the root, their libraries (fastify,
 * prom-client, keyv, @opentelemetry/api and /instrumentation) are optional
 * peer dependencies (never runtime dependencies), and nothing the root entry
 * point loads imports them, so a user who does not use an integration does
 * not need its library.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

interface PackageJson {
  exports: Record<string, Record<string, string> | string>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson

/** Each subpath, its module under src/ (without .ts), and the libraries it needs. */
const SUBPATHS: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['./fastify', 'fastify', ['fastify']],
  ['./prom-client', 'prom-client', ['prom-client']],
  ['./keyv', 'integrations/keyv', ['keyv']],
  ['./opentelemetry', 'integrations/opentelemetry', ['@opentelemetry/api', '@opentelemetry/instrumentation']],
]
const LIBRARIES = SUBPATHS.flatMap(([, , libraries]) => libraries)

/** importsOf lists the module specifiers a source file imports or re-exports (type-only imports included). */
function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8')
  return [...source.matchAll(/^(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1] as string)
}

/** reachable walks the relative imports from entry (src/*.ts) and returns every file and bare specifier met. */
function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>()
  const packages = new Set<string>()
  const visit = (file: string): void => {
    if (files.has(file)) return
    files.add(file)
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) visit(normalize(join(dirname(file), spec.replace(/\.js$/, '.ts'))))
      else packages.add(spec)
    }
  }
  visit(join(root, entry))
  return { files, packages }
}

describe('integration subpaths', () => {
  it.each(SUBPATHS)('%s is exported with the root’s conditions, each pointing at the built module of src', (subpath, module) => {
    const rootConditions = pkg.exports['.'] as Record<string, string>
    const conditions = pkg.exports[subpath] as Record<string, string>
    expect(Object.keys(conditions)).toEqual(Object.keys(rootConditions))
    expect(conditions.types).toBe(`./dist/${module}.d.ts`)
    for (const condition of Object.keys(conditions).filter((c) => c !== 'types')) expect(conditions[condition]).toBe(`./dist/${module}.js`)
    expect(existsSync(join(root, 'src', `${module}.ts`))).toBe(true)
  })

  it.each(SUBPATHS)('%s: its libraries are optional peer dependencies, not dependencies', (_subpath, name, libraries) => {
    for (const library of libraries) {
      expect(pkg.dependencies?.[library]).toBeUndefined()
      expect(pkg.peerDependencies?.[library]).toBeDefined()
      expect(pkg.peerDependenciesMeta?.[library]?.optional).toBe(true)
      expect(reachable(`src/${name}.ts`).packages).toContain(library)
    }
  })

  it('the root entry point never loads an integration or its library', () => {
    const { files, packages } = reachable('src/index.ts')
    expect(files.size).toBeGreaterThan(10)
    for (const library of LIBRARIES) expect([...packages]).not.toContain(library)
    const modules = SUBPATHS.map(([, name]) => normalize(join(root, 'src', `${name}.ts`)))
    expect([...files].filter((file) => modules.includes(file) || file.includes('/integrations/'))).toEqual([])
  })
})

/**
 * The reference in docs/ is what users code against, so it must follow the
 * code. Read from the published declarations (built with stripInternal, the
 * way a user's editor sees them; emitted into a folder of the test's own, so
 * dist/ is not raced):
 * - docs/api.md names every public member of the classes a user holds
 *   (Peercache, Group) and nothing they cannot call, every exported error
 *   class, every other exported value, and every event;
 * - docs/configuration.md names every key of PeercacheOptions (and, as
 *   `option.key`, of the option objects it takes: discovery, tls, …) and
 *   every key of GroupOptions and TypedGroupOptions.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, readDoc, section } from './helpers/docs.js'

/** Declarations is the emitted index.d.ts, read with a type checker. */
class Declarations {
  readonly checker: ts.TypeChecker
  readonly #exports: ts.Symbol[]

  constructor(readonly out: string) {
    const program = ts.createProgram([join(out, 'index.d.ts')], { strict: true, skipLibCheck: true, types: ['node'] })
    this.checker = program.getTypeChecker()
    const index = program.getSourceFile(join(out, 'index.d.ts'))
    const module = index && this.checker.getSymbolAtLocation(index)
    if (!module) throw new Error('index.d.ts was not emitted')
    this.#exports = this.checker.getExportsOfModule(module)
  }

  /** exportNames lists the package root's exports: values (classes, functions, constants) or types only. */
  exportNames(kind: 'value' | 'type'): string[] {
    return this.#exports
      .filter((s) => Boolean(this.checker.getAliasedSymbol(s).flags & ts.SymbolFlags.Value) === (kind === 'value'))
      .map((s) => s.name)
  }

  /** declaredType is the type an exported class or interface declares. */
  declaredType(name: string): ts.Type {
    const symbol = this.#exports.find((s) => s.name === name)
    if (!symbol) throw new Error(`${name} is not exported`)
    return this.checker.getDeclaredTypeOfSymbol(this.checker.getAliasedSymbol(symbol))
  }

  /** publicMembers lists the names a user can reach on an instance of the exported class `name`. */
  publicMembers(name: string): string[] {
    return this.checker
      .getPropertiesOfType(this.declaredType(name))
      .filter((member) => !member.name.startsWith('#') && !member.name.startsWith('__'))
      .filter((member) => !(ts.getCombinedModifierFlags(member.valueDeclaration ?? member.declarations![0]!) & ts.ModifierFlags.Private))
      .map((member) => member.name)
  }

  /** keys lists the property names of an exported interface or type. */
  keys(name: string): string[] {
    return this.checker.getPropertiesOfType(this.declaredType(name)).map((p) => p.name)
  }

  /**
   * nestedKeys lists `option.key` for every option of `name` that takes an
   * object this package declares (discovery's forms, tls, serverTimeouts, …):
   * not functions, not Node's or a library's types, not interfaces made of
   * methods only (a logger is something to implement, not to configure).
   */
  nestedKeys(name: string): string[] {
    return this.checker.getPropertiesOfType(this.declaredType(name)).flatMap((option) => {
      const type = this.checker.getNonNullableType(this.checker.getTypeOfSymbol(option))
      const forms = type.isUnion() ? type.types : [type]
      const keys = forms.filter((form) => this.#isOwnObject(form)).flatMap((form) => this.checker.getPropertiesOfType(form))
      const configurable = keys.some((key) => !this.#isFunction(key))
      return configurable ? [...new Set(keys.map((key) => `${option.name}.${key.name}`))] : []
    })
  }

  #isOwnObject(type: ts.Type): boolean {
    const declaration = type.getSymbol()?.declarations?.[0]
    return Boolean(type.flags & ts.TypeFlags.Object) && type.getCallSignatures().length === 0 && declaration !== undefined && declaration.getSourceFile().fileName.startsWith(this.out)
  }

  #isFunction(symbol: ts.Symbol): boolean {
    return this.checker.getNonNullableType(this.checker.getTypeOfSymbol(symbol)).getCallSignatures().length > 0
  }

  /** extendsClass tells whether the exported class `name` is `base` or derives from it. */
  extendsClass(name: string, base: string): boolean {
    const chain = (type: ts.Type): string[] => [type.getSymbol()?.name ?? '', ...(type.isClass() ? this.checker.getBaseTypes(type).flatMap(chain) : [])]
    return chain(this.declaredType(name)).includes(base)
  }
}

/** backticked lists the names that `text` does not mention as `` `name` `` (or with the given prefix, `` `prefix.name ``). */
function unmentioned(text: string, names: readonly string[], prefix = ''): string[] {
  return names.filter((name) => (prefix === '' ? !text.includes(`\`${name}\``) : !text.includes(`\`${prefix}${name}`)))
}

describe('the reference in docs/ against the published declarations', () => {
  let d: Declarations
  const out = mkdtempSync(join(tmpdir(), 'peercache-api-'))

  beforeAll(() => {
    const tsc = fileURLToPath(import.meta.resolve('typescript/bin/tsc'))
    const args = [tsc, '-p', 'tsconfig.build.json', '--emitDeclarationOnly', '--declarationMap', 'false', '--outDir', out]
    execFileSync(process.execPath, args, { cwd: ROOT, stdio: 'pipe' })
    d = new Declarations(out)
  }, 120_000)

  afterAll(() => rmSync(out, { recursive: true, force: true }))

  for (const [className, instance] of [
    ['Peercache', 'cache'],
    ['Group', 'group'],
  ] as const) {
    it(`docs/api.md lists every public member of ${className} as \`${instance}.member\``, () => {
      const members = d.publicMembers(className)
      expect(members.length).toBeGreaterThan(3)
      expect(unmentioned(section('docs/api.md', className), members, `${instance}.`)).toEqual([])
    })
  }

  it('keeps internal members of Group out of the published types', () => {
    const members = d.publicMembers('Group')
    for (const internal of ['serve', 'serveCached', 'serveLoad', 'setLocal', 'removeLocal', 'create', 'close']) {
      expect(members).not.toContain(internal)
    }
  })

  it("docs/api.md's Errors table names every exported error class", () => {
    const errors = d.exportNames('value').filter((name) => d.extendsClass(name, 'PeercacheError'))
    expect(errors.length).toBeGreaterThan(10)
    expect(unmentioned(section('docs/api.md', 'Errors'), errors)).toEqual([])
  })

  it('docs/api.md names every other exported value and every event', () => {
    const values = d.exportNames('value').filter((name) => !d.extendsClass(name, 'PeercacheError'))
    expect(values).toEqual(expect.arrayContaining(['Peercache', 'Group', 'codecs']))
    const text = readDoc('docs/api.md')
    expect(values.filter((name) => !text.includes(`\`${name}\``) && !text.includes(`\`${name}(`) && !text.includes(`\`new ${name}(`))).toEqual([])
    const events = d.keys('PeercacheEvents')
    expect(events.length).toBeGreaterThan(5)
    expect(unmentioned(text, events)).toEqual([])
  })

  it("docs/configuration.md's Peercache options name every key of PeercacheOptions, and of the objects it takes", () => {
    const options = section('docs/configuration.md', 'Peercache options')
    const keys = d.keys('PeercacheOptions')
    expect(keys).toEqual(expect.arrayContaining(['self', 'peers', 'transport', 'health', 'server', 'auth', 'deploy']))
    expect(unmentioned(options, keys)).toEqual([])
    const nested = d.nestedKeys('PeercacheOptions')
    expect(nested).toEqual(expect.arrayContaining(['discovery.dns', 'transport.timeoutMs', 'server.headersTimeoutMs', 'deploy.drainMs']))
    expect(nested.filter((key) => key.startsWith('logger.'))).toEqual([])
    expect(unmentioned(options, nested)).toEqual([])
  })

  it("docs/configuration.md's Group options name every key of GroupOptions and TypedGroupOptions", () => {
    const options = section('docs/configuration.md', 'Group options')
    const keys = [...new Set([...d.keys('GroupOptions'), ...d.keys('TypedGroupOptions')])]
    expect(keys).toEqual(expect.arrayContaining(['name', 'cacheBytes', 'load', 'codec', 'notFoundTtl', 'staleWhileRevalidate', 'staleIfError']))
    expect(unmentioned(options, keys)).toEqual([])
  })
})

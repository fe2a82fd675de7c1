/**
 * The README's API section is the reference users code against, so it must
 * name every public member of the classes a user holds (Peercache, Group)
 * and nothing they cannot call. The members are read from the published
 * declarations (dist/, built with stripInternal), the way a user's editor
 * sees them (emitted into a folder of the test's own, so dist/ is not raced).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

/** publicMembers lists the names a user can reach on an instance of the exported class `name`. */
function publicMembers(program: ts.Program, name: string): string[] {
  const checker = program.getTypeChecker()
  const index = program.getSourceFiles().find((file) => file.fileName.endsWith('/index.d.ts') && !file.fileName.includes('node_modules'))
  if (!index) throw new Error('index.d.ts was not emitted')
  const module = checker.getSymbolAtLocation(index)
  const symbol = module && checker.getExportsOfModule(module).find((s) => s.name === name)
  if (!symbol) throw new Error(`${name} is not exported`)
  const type = checker.getDeclaredTypeOfSymbol(checker.getAliasedSymbol(symbol))
  return checker
    .getPropertiesOfType(type)
    .filter((member) => !member.name.startsWith('#') && !member.name.startsWith('__'))
    .filter((member) => !(ts.getCombinedModifierFlags(member.valueDeclaration ?? member.declarations![0]!) & ts.ModifierFlags.Private))
    .map((member) => member.name)
}

/** apiSection is the README's `## API` section. */
function apiSection(): string {
  const readme = readFileSync(`${root}README.md`, 'utf8')
  const start = readme.indexOf('\n## API')
  if (start < 0) throw new Error('README has no ## API section')
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}

describe("README's API section", () => {
  let program: ts.Program
  const out = mkdtempSync(join(tmpdir(), 'peercache-api-'))

  beforeAll(() => {
    const tsc = fileURLToPath(import.meta.resolve('typescript/bin/tsc'))
    const args = [tsc, '-p', 'tsconfig.build.json', '--emitDeclarationOnly', '--declarationMap', 'false', '--outDir', out]
    execFileSync(process.execPath, args, { cwd: root, stdio: 'pipe' })
    program = ts.createProgram([join(out, 'index.d.ts')], { strict: true, skipLibCheck: true, types: ['node'] })
  }, 120_000)

  afterAll(() => rmSync(out, { recursive: true, force: true }))

  for (const [className, instance] of [
    ['Peercache', 'cache'],
    ['Group', 'group'],
  ] as const) {
    it(`lists every public member of ${className} as \`${instance}.member\``, () => {
      const members = publicMembers(program, className)
      expect(members.length).toBeGreaterThan(3)
      const section = apiSection()
      const missing = members.filter((member) => !section.includes(`\`${instance}.${member}`))
      expect(missing).toEqual([])
    })
  }

  it('keeps internal members of Group out of the published types', () => {
    const members = publicMembers(program, 'Group')
    for (const internal of ['serve', 'serveCached', 'serveLoad', 'setLocal', 'removeLocal', 'create', 'close']) {
      expect(members).not.toContain(internal)
    }
  })
})

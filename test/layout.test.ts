/**
 * layout: the rules src/ keeps so a newcomer knows what they may touch
 * (issue #19). Checked from the source, so a change that breaks one fails
 * here: every file under 400 lines; no exported class with `@internal`
 * members; imports between the rooms go one way (endpoint → group →
 * peers); the objects a user holds expose the user's API only.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Group, Peercache } from '../src/index.js'

const src = fileURLToPath(new URL('../src/', import.meta.url))

/** sourceFiles lists every .ts file under src/, relative to it. */
function sourceFiles(dir = src): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [relative(src, path)] : []
  })
}

/** importsOf lists the src-relative files a file imports (relative imports only). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(src, file), 'utf8')
  return [...text.matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)].map((m) => relative(src, join(src, file, '..', m[1]!.replace(/\.js$/, '.ts'))))
}

describe('src/ layout', () => {
  it('keeps every file under 400 lines', () => {
    const long = sourceFiles().filter((file) => readFileSync(join(src, file), 'utf8').split('\n').length > 400)
    expect(long).toEqual([])
  })

  it('does no asynchronous file I/O (a closed Peercache leaves no file request behind; dns-misbehaving relies on it)', () => {
    const asyncFs = sourceFiles().flatMap((file) => {
      const text = readFileSync(join(src, file), 'utf8')
      const names = [...text.matchAll(/import \{([^}]*)\} from 'node:fs'/g)].flatMap((m) => m[1]!.split(',').map((name) => name.trim()))
      const unsynced = names.filter((name) => name && !name.endsWith('Sync') && !name.startsWith('type '))
      return /from 'node:fs\/promises'|import \* as \w+ from 'node:fs'/.test(text) || unsynced.length > 0 ? [file] : []
    })
    expect(asyncFs).toEqual([])
  })

  it('has no @internal members (internals live behind internal interfaces, not on public classes)', () => {
    const tagged = sourceFiles().filter((file) => readFileSync(join(src, file), 'utf8').includes('@internal'))
    expect(tagged).toEqual([])
  })

  it.each([
    ['peers/', ['group/', 'endpoint/', 'peercache.ts']],
    ['group/', ['endpoint/', 'peercache.ts', 'server.ts']],
    ['endpoint/', ['peers/', 'peercache.ts']],
  ])('files in %s import none of %j (imports go one way: endpoint → group → peers)', (room, forbidden) => {
    const upward = sourceFiles()
      .filter((file) => file.startsWith(room))
      .flatMap((file) => importsOf(file).filter((target) => forbidden.some((f) => target.startsWith(f))).map((target) => `${file} → ${target}`))
    expect(upward).toEqual([])
  })

  it('writes every option default in options.ts (no default timer or size literal elsewhere)', () => {
    const literal = /\?\? (?:\d[\d_]*|'\/_groupcache\/')\b/
    const elsewhere = sourceFiles()
      .filter((file) => file !== 'options.ts')
      .flatMap((file) => readFileSync(join(src, file), 'utf8').split('\n').map((line, i) => [file, i + 1, line] as const))
      .filter(([, , line]) => literal.test(line) && !line.includes('?? 0'))
      .map(([file, line, text]) => `${file}:${line}: ${text.trim()}`)
    expect(elsewhere).toEqual([])
  })
})

describe('the objects a user holds', () => {
  it('a Group has the user API only', () => {
    const members = Object.getOwnPropertyNames(Group.prototype).filter((name) => name !== 'constructor').sort()
    expect(members).toEqual(['clear', 'delete', 'get', 'getJSON', 'getMany', 'getManySettled', 'getString', 'name', 'peek', 'remove', 'set', 'stats'])
    const cache = new Peercache({ env: {} })
    const group = cache.group({ name: 'g', cacheBytes: 1024, load: () => 'v' })
    expect(Object.keys(group)).toEqual([])
  })

  it('a Peercache has no public picker or live peer clients; ownerOf answers instead', () => {
    const members = Object.getOwnPropertyNames(Peercache.prototype).filter((name) => name !== 'constructor').sort()
    expect(members).toEqual(['close', 'getGroup', 'group', 'handler', 'listen', 'metrics', 'ownerOf', 'peers', 'self', 'setPeers', 'stats', 'status', 'statusHandler'])
    const cache = new Peercache({ env: {}, self: 'http://127.0.0.1:1', peers: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] })
    expect(Object.keys(cache).sort()).toEqual(['basePath', 'events', 'logger'])
    // Not even a symbol-keyed door: the adapters read a private field (internals.ts).
    expect(Object.getOwnPropertySymbols(Peercache.prototype)).toEqual([])
    expect(Object.getOwnPropertySymbols(cache)).toEqual([])
    expect(['http://127.0.0.1:1', 'http://127.0.0.1:2']).toContain(cache.ownerOf('some key'))
    return cache.close()
  })
})

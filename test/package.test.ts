import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, it, expect } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)

interface PackageJson {
  type?: string
  main?: string
  types?: string
  exports: { '.': { types: string; import: string } }
}

/** run executes a command, failing the test with its output when it exits non-zero. */
function run(file: string, args: readonly string[], cwd: string, timeout: number): string {
  try {
    return execFileSync(file, args, {
      cwd,
      timeout,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: withoutPeercacheEnv(process.env),
    })
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string; message: string }
    throw new Error(`${file} ${args.join(' ')} failed (exit ${String(e.status)}):\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`)
  }
}

function withoutPeercacheEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('PEERCACHE_')))
}

describe('package', () => {
  it('builds, imports from dist in a fresh node process, and type-checks a strict NodeNext consumer', () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    run(npm, ['run', 'build'], root, 120_000)

    // exports map: ESM only, with types, both pointing at built files.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson
    expect(pkg.type).toBe('module')
    const typesPath = resolve(root, pkg.exports['.'].types)
    const importPath = resolve(root, pkg.exports['.'].import)
    expect(existsSync(typesPath)).toBe(true)
    expect(existsSync(importPath)).toBe(true)
    expect(readFileSync(typesPath, 'utf8')).toContain('Peercache')

    // (a) The built module works in a plain node process (no vitest, no tsx).
    const script = `
      const { Peercache, LoadError } = await import(${JSON.stringify(pathToFileURL(importPath).href)})
      const cache = new Peercache({ env: {} })
      const group = cache.group({ name: 'pkg', cacheBytes: 1024, load: (key) => 'hello ' + key })
      const value = await group.getString('world')
      const bytes = await group.get('world')
      await cache.close()
      console.log(JSON.stringify({ value, bytes: bytes.byteLength, loadError: new LoadError('x').code, stats: group.stats().localLoads }))
    `
    const out = run(process.execPath, ['--input-type=module', '-e', script], root, 60_000)
    expect(JSON.parse(out.trim())).toEqual({ value: 'hello world', bytes: 11, loadError: 'ERR_PEERCACHE_LOAD_FAILED', stats: 1 })

    // (b) A strict NodeNext consumer compiles against the emitted declarations.
    const dir = mkdtempSync(join(tmpdir(), 'peercache-consumer-'))
    try {
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
      const consumer = join(dir, 'consumer.mts')
      writeFileSync(
        consumer,
        `import { Peercache, NotFoundError, PeercacheError, type GroupOptions, type GroupStats, type Loader } from ${JSON.stringify(importPath)}

const load: Loader = async (key, { signal }) => {
  if (signal.aborted) throw new NotFoundError(key)
  return { value: new TextEncoder().encode(key), ttl: 1000 }
}
const options: GroupOptions = { name: 'consumer', cacheBytes: 1 << 20, load, ttl: 60_000 }
const cache = new Peercache({ env: {}, closeTimeout: 100 })
const group = cache.group(options)
const bytes: Uint8Array = await group.get('k', { signal: AbortSignal.timeout(500) })
const text: string = await group.getString('k')
const json: { a: number } = await group.getJSON<{ a: number }>('k')
const stats: GroupStats = group.stats()
const hits: number = stats.cacheHits + stats.main.hits
cache.events.on('load', (event) => {
  const ms: number = event.durationMs
  const source: 'local' | 'peer' = event.source
  void ms
  void source
})
const err: unknown = new NotFoundError('k')
if (err instanceof PeercacheError) {
  const code: string = err.code
  void code
}
// @ts-expect-error cacheBytes must be a number: the declarations are real types, not any
cache.group({ name: 'bad', cacheBytes: 'lots', load })
// @ts-expect-error get takes a string key
await group.get(42)
await cache.close()
void bytes
void text
void json
void hits
`,
      )
      const tsc = require.resolve('typescript/bin/tsc')
      run(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--skipLibCheck',
          '--types',
          'node',
          '--typeRoots',
          join(root, 'node_modules', '@types'),
          consumer,
        ],
        dir,
        120_000,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)
})

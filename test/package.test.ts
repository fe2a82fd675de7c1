/**
 * The published package, as a user gets it: `npm pack` the real tarball (its
 * `prepack` builds dist/), install it into a temporary project that cannot see
 * this repository's sources, and use it there from ESM, from CommonJS
 * (`require(esm)`), and from strict TypeScript under every module resolution
 * users pick. Nothing but the tarball's own files (and its declared
 * dependencies, from the registry or npm's cache) may be needed. The README's
 * 3-process recipe runs there as written: its app.js, three processes.
 */
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { reservePorts, stopChild } from './helpers/child-procs.js'
import { section } from './helpers/docs.js'
import { startListening, type ExampleProcess } from './helpers/example-app.js'
import { Peercache, serverUrl } from '../src/index.js'
import { closeServer, listenLocal } from './helpers/cluster.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx'
/** versionOf reads an installed package's version from its package.json file (keyv and @opentelemetry/api do not export it). */
const versionOf = (name: string): string => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
/** The optional peers the subpath exports need, and the SDK the OpenTelemetry example runs with, at the versions this repo tests with (npm's cache has them). */
const companions = [
  '@types/node',
  'fastify',
  'prom-client',
  'keyv',
  '@opentelemetry/api',
  '@opentelemetry/instrumentation',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/context-async-hooks',
].map((name) => `${name}@${versionOf(name)}`)

/** run executes a command, failing the test with its output when it exits non-zero. */
function run(file: string, args: readonly string[], cwd: string, timeout = 120_000): string {
  try {
    return execFileSync(file, args, { cwd, timeout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() })
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string; message: string }
    throw new Error(`${file} ${args.join(' ')} failed (exit ${String(e.status)}):\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`)
  }
}

/** cleanEnv drops our own env (it would configure the cache) and npm's per-run variables (they point at this repo). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('PEERCACHE_') && !name.startsWith('npm_')),
  )
}

const USE = `
  const cache = new Peercache({ env: {} })
  const group = cache.group({ name: 'pkg', cacheBytes: 1024, load: (key) => 'hello ' + key })
  const value = await group.getString('world')
  const bytes = await group.get('world')
  await cache.close()
  console.log(JSON.stringify({ value, bytes: bytes.byteLength, code: new LoadError('x').code, loads: group.stats().localLoads }))
`
const EXPECTED = { value: 'hello world', bytes: 11, code: 'ERR_PEERCACHE_LOAD_FAILED', loads: 1 }

const CONSUMER_TS = `import { Peercache, NotFoundError, PeercacheError, Group, type GroupOptions, type GroupStats, type Loader } from 'peercache'
import { PeercacheStore } from 'peercache/keyv'
import Keyv from 'keyv'
import { PeercacheInstrumentation, type PeercacheInstrumentationConfig } from 'peercache/opentelemetry'

const load: Loader = async (key, { signal }) => {
  if (signal.aborted) throw new NotFoundError(key)
  return { value: new TextEncoder().encode(key), ttl: 1000 }
}
const options: GroupOptions = { name: 'consumer', cacheBytes: 1 << 20, load, ttl: 60_000 }
const cache = new Peercache({ env: {}, deploy: { closeTimeoutMs: 100 } })
const group: Group = cache.group(options)
export async function use(): Promise<number> {
  const bytes: Uint8Array = await group.get('k', { signal: AbortSignal.timeout(500) })
  const text: string = await group.getString('k')
  const json: { a: number } = await group.getJSON<{ a: number }>('k')
  const stats: GroupStats = group.stats()
  cache.events.on('load', (event) => {
    const ms: number = event.durationMs
    const source: 'local' | 'peer' = event.source
    void ms, source
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
  // @ts-expect-error serving peers is internal, not part of the published types
  void group.serve
  // @ts-expect-error internal
  void group.serveCached
  // @ts-expect-error internal
  void group.serveLoad
  // @ts-expect-error internal
  void group.setLocal
  // @ts-expect-error internal
  void group.removeLocal
  // @ts-expect-error a Group is made by cache.group(), never constructed
  void new Group(options, {})
  const keyv = new Keyv<{ id: number }>({ store: new PeercacheStore(cache, { name: 'sessions', cacheBytes: 1 << 20 }) })
  const session: { id: number } | undefined = await keyv.get('s')
  void session
  // @ts-expect-error the store's group has no loader: load is not an option
  void new PeercacheStore(cache, { name: 'loaded', cacheBytes: 1024, load })
  const config: PeercacheInstrumentationConfig = { recordKeys: true, enabled: false }
  const instrumentation = new PeercacheInstrumentation(config)
  const unobserve: () => void = instrumentation.observe(cache)
  unobserve()
  // @ts-expect-error observe takes a Peercache
  instrumentation.observe(group)
  await cache.close()
  return bytes.byteLength + text.length + json.a + stats.cacheHits
}
`

/** fencedBlocks lists the bodies of the ```lang blocks of a markdown text, in order. */
function fencedBlocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]!)
}

/** recipe is the README's 3-process recipe: its setup commands, app.js, and the commands that start the cluster. */
function recipe(): { setup: string; app: string; run: string } {
  const text = section('README.md', 'A cluster of three processes')
  const [setup, run] = fencedBlocks(text, 'sh')
  const [app] = fencedBlocks(text, 'js')
  if (setup === undefined || run === undefined || app === undefined) throw new Error('the README recipe lost a code block')
  return { setup, app, run }
}

/** The module settings a strict consumer may use, each checked against the installed package. */
const TS_SETUPS = [
  { name: 'node16', module: 'node16', moduleResolution: 'node16' },
  { name: 'nodenext', module: 'nodenext', moduleResolution: 'nodenext' },
  { name: 'bundler', module: 'esnext', moduleResolution: 'bundler' },
] as const

describe('the packed tarball', () => {
  let dir = ''
  let tarball = ''

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'peercache-package-'))
    const packed = join(dir, 'packed')
    mkdirSync(packed)
    const out = run(npm, ['pack', '--json', '--pack-destination', packed], root, 180_000)
    const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>
    const first = info[0]
    if (!first) throw new Error(`npm pack reported nothing: ${out}`)
    tarball = join(packed, first.filename)
    files = first.files.map((file) => file.path)
    const project = join(dir, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
    run(
      npm,
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, ...companions],
      project,
      300_000,
    )
  }, 480_000)

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  let files: string[] = []
  const project = (): string => join(dir, 'project')

  it('ships the built dist/, the license and the docs, and no tests', () => {
    expect(files).toContain('dist/index.js')
    expect(files).toContain('dist/index.d.ts')
    expect(files).toContain('LICENSE')
    expect(files).toContain('README.md')
    // The README links the reference in docs/: it ships with it.
    expect(files).toContain('docs/api.md')
    expect(files.filter((file) => file.startsWith('test/'))).toEqual([])
    expect(readdirSync(join(project(), 'node_modules', 'peercache', 'dist'))).toContain('index.js')
  })

  it('imports from ESM', () => {
    const script = `import { Peercache, LoadError } from 'peercache'\n${USE}`
    writeFileSync(join(project(), 'esm.mjs'), script)
    expect(JSON.parse(run(process.execPath, ['esm.mjs'], project()).trim())).toEqual(EXPECTED)
  }, 120_000)

  it('requires from CommonJS (require(esm))', () => {
    const script = `const { Peercache, LoadError } = require('peercache')\n;(async () => {${USE}})()`
    writeFileSync(join(project(), 'cjs.cjs'), script)
    const out = run(process.execPath, ['--no-warnings', 'cjs.cjs'], project())
    expect(JSON.parse(out.trim())).toEqual(EXPECTED)
  }, 120_000)

  it('installs the peercache command: npx peercache status <url> prints a status as tables', async () => {
    // A statusHandler() served from this process; the installed command asks it over HTTP (so it runs async).
    const cache = new Peercache({ env: {} })
    cache.group({ name: 'kv', cacheBytes: 1024, load: (key) => key })
    const server = await listenLocal()
    server.on('request', cache.statusHandler())
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const args = ['--no-install', 'peercache', 'status', `${serverUrl(server)}/status`]
        execFile(npx, args, { cwd: project(), timeout: 60_000, env: cleanEnv() }, (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(`${err.message}\n${stderr}`))))
      })
      expect(out).toMatch(/^peercache cluster, gathered by \(this process, without peers\)/)
      expect(out).toMatch(/^\(this process, without peers\)\s+kv\s+0\s/m)
    } finally {
      await closeServer(server)
      await cache.close()
    }
  }, 120_000)

  it('serves its integrations as subpath exports, from ESM and CommonJS', () => {
    const esm = `
      import { peercachePlugin } from 'peercache/fastify'
      import { registerPeercacheMetrics } from 'peercache/prom-client'
      import { PeercacheStore } from 'peercache/keyv'
      import { Registry } from 'prom-client'
      import Fastify from 'fastify'
      import Keyv from 'keyv'
      import { Peercache } from 'peercache'
      const cache = new Peercache({ env: {} })
      cache.group({ name: 'kv', cacheBytes: 1024, load: (key) => 'v' + key })
      await cache.getGroup('kv').get('a')
      const registry = new Registry()
      registerPeercacheMetrics(cache, { registry })
      const app = Fastify()
      await app.register(peercachePlugin, { cache })
      await app.ready()
      const gets = (await registry.getSingleMetricAsString('peercache_gets_total')).includes('peercache_gets_total{group="kv"} 1')
      const keyv = new Keyv({ store: new PeercacheStore(cache, { name: 'sessions', cacheBytes: 1024 }) })
      await keyv.set('user', { id: 7 }, 60_000)
      const stored = await keyv.get('user')
      await app.close()
      console.log(JSON.stringify({ gets, stored }))
    `
    writeFileSync(join(project(), 'subpaths.mjs'), esm)
    expect(JSON.parse(run(process.execPath, ['subpaths.mjs'], project()).trim())).toEqual({ gets: true, stored: { id: 7 } })
    const cjs = `console.log(JSON.stringify([typeof require('peercache/fastify').peercachePlugin, typeof require('peercache/prom-client').registerPeercacheMetrics, typeof require('peercache/opentelemetry').PeercacheInstrumentation, typeof require('peercache/keyv').PeercacheStore]))`
    writeFileSync(join(project(), 'subpaths.cjs'), cjs)
    expect(JSON.parse(run(process.execPath, ['--no-warnings', 'subpaths.cjs'], project()).trim())).toEqual(['function', 'function', 'function', 'function'])
  }, 120_000)

  it('runs the OpenTelemetry example of docs/integrations.md as written: spans of the get and its load, the metrics', () => {
    const [example] = fencedBlocks(section('docs/integrations.md', 'OpenTelemetry'), 'js')
    if (example === undefined) throw new Error('docs/integrations.md lost the OpenTelemetry example')
    writeFileSync(join(project(), 'otel-example.mjs'), example)
    const out = run(process.execPath, ['otel-example.mjs'], project())
    expect(out).toContain('{"id":"42"}')
    // The console exporters print each span and each metric as an object.
    expect(out).toMatch(/name: 'peercache\.get'/)
    expect(out).toMatch(/name: 'peercache\.load'/)
    expect(out).toMatch(/name: 'peercache\.gets'/)
    expect(out).toMatch(/'peercache\.source': 'local'/)
  }, 120_000)

  for (const setup of TS_SETUPS) {
    it(`type-checks a strict consumer under moduleResolution ${setup.name}`, () => {
      const folder = join(project(), `ts-${setup.name}`)
      mkdirSync(folder, { recursive: true })
      writeFileSync(join(folder, 'consumer.ts'), CONSUMER_TS)
      const tsconfig = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          lib: ['ES2023'],
          module: setup.module,
          moduleResolution: setup.moduleResolution,
          types: ['node'],
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
        },
        files: ['consumer.ts'],
      }
      writeFileSync(join(folder, 'tsconfig.json'), JSON.stringify(tsconfig))
      run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', folder], project())
    }, 180_000)
  }

  it("runs the README's 3-process recipe as written: each process answers, the key's owner alone loads it", async () => {
    const { setup, app, run: commands } = recipe()
    // The recipe's project is an ES module package with the tarball installed, as this one is.
    expect(setup).toContain('npm pkg set type=module')
    expect(setup).toContain(`npm install ../peercache/${tarball.split(/[\\/]/).pop()}`)
    expect(JSON.parse(readFileSync(join(project(), 'package.json'), 'utf8'))).toMatchObject({ type: 'module' })
    const starts = [...commands.matchAll(/^PORT=(\d+) PEERCACHE_SELF=(\S+) node app\.js &$/gm)]
    expect(starts.map((m) => m[2])).toEqual(commands.match(/PEERCACHE_PEERS=(\S+)/)![1]!.split(','))
    mkdirSync(join(project(), 'recipe'), { recursive: true })
    writeFileSync(join(project(), 'recipe', 'app.js'), app)
    // The same commands on ports free here: PEERCACHE_PEERS, then PORT and PEERCACHE_SELF per process.
    const urls = await reservePorts(starts.length)
    const apps: ExampleProcess[] = []
    try {
      for (const url of urls) {
        const env = { PEERCACHE_PEERS: urls.join(','), PORT: new URL(url).port, PEERCACHE_SELF: url }
        apps.push(await startListening(['app.js'], { cwd: join(project(), 'recipe'), tag: url, env }))
      }
      for (const { url } of apps) {
        const response = await fetch(`${url}/square/12`, { signal: AbortSignal.timeout(10_000) })
        expect(await response.text()).toBe('144\n')
      }
      const missing = await fetch(`${apps[0]!.url}/square/twelve`, { signal: AbortSignal.timeout(10_000) })
      expect(missing.status).toBe(404)
      await missing.text()
      const computed = (): string[] => apps.flatMap((a) => a.output().split('\n')).filter((line) => / computes 12²$/.test(line))
      // Log lines travel through pipes, independently of the HTTP answers.
      await vi.waitFor(() => expect(computed().length).toBeGreaterThan(0), { timeout: 5_000 })
      expect(computed()).toHaveLength(1)
    } finally {
      await Promise.all(apps.map((a) => stopChild(a)))
    }
  }, 120_000)
})

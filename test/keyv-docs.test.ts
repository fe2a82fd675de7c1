/**
 * The Keyv and cache-manager examples of docs/integrations.md run as
 * written: each ```js block is saved as a script and run by node as a real
 * child process ('peercache' and 'peercache/keyv' resolved to this
 * repository's src/, keyv and cache-manager from its node_modules), on a
 * free 127.0.0.1 port, without PEERCACHE_* variables (a lone peer); it must
 * print what its comments say, then it is stopped by its PID.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { reservePorts, stopChild, type ChildPeer } from './helpers/child-procs.js'
import { ROOT, section } from './helpers/docs.js'

const HOOK = fileURLToPath(new URL('./helpers/peercache-from-src.mjs', import.meta.url))
const running: ChildPeer[] = []
const folders: string[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((child) => stopChild(child)))
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true })
})

/** jsBlocks lists the ```js blocks of a markdown text, in order. */
function jsBlocks(text: string): string[] {
  return [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)
}

/** runExample saves code as an ES module in the repository (so its imports resolve there) and runs it; resolves its output so far. */
async function runExample(code: string): Promise<() => string> {
  mkdirSync(join(ROOT, '.scratch'), { recursive: true })
  const folder = mkdtempSync(join(ROOT, '.scratch', 'keyv-docs-'))
  folders.push(folder)
  writeFileSync(join(folder, 'example.mjs'), code)
  const [url] = await reservePorts(1)
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PEERCACHE_')))
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', HOOK, join(folder, 'example.mjs')], {
    cwd: ROOT,
    env: { ...inherited, PORT: new URL(url!).port },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  running.push({ tag: 'example', url: url!, process: child })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  return () => output
}

describe('docs/integrations.md, Keyv, cache-manager and NestJS', () => {
  const text = section('docs/integrations.md', 'Keyv, cache-manager and NestJS')
  const [keyvExample, cacheManagerExample] = jsBlocks(text)

  it('has the Keyv and the cache-manager examples', () => {
    expect(keyvExample).toContain("from 'peercache/keyv'")
    expect(cacheManagerExample).toContain("from 'cache-manager'")
  })

  it('the Keyv example stores and reads a session', async () => {
    const output = await runExample(keyvExample!)
    await vi.waitFor(() => expect(output()).toContain('{ user: 7 }'), { timeout: 20_000, interval: 100 })
    expect(output()).not.toContain('cache write incomplete')
  })

  it('the cache-manager example wraps a lookup', async () => {
    const output = await runExample(cacheManagerExample!)
    await vi.waitFor(() => expect(output()).toContain("{ id: 7, name: 'user 7' }"), { timeout: 20_000, interval: 100 })
  })
})

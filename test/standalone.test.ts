/**
 * The repository stands alone: a clone with nothing beside it must install,
 * test, benchmark and run the demo. So no tracked file may refer to the team's
 * notes beside the repo (the shared folder) or to an absolute path of some machine
 * (a home or work folder): both exist on a developer's machine and nowhere else.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Patterns are assembled from parts so that this file does not match itself. */
const forbidden: readonly RegExp[] = [
  new RegExp(['\\.\\.', 'shared'].join('/')),
  new RegExp(`(^|[\\s'"\`(=:])/(${['work', 'home', 'root', 'Users', 'mnt'].join('|')})/`),
  new RegExp(`/tmp/${'shared'}`),
  /[A-Z]:\\(Users|work)\\/,
]

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  return out.split('\0').filter((file) => file !== '' && file !== 'package-lock.json')
}

function offendingLines(file: string): string[] {
  const text = readFileSync(new URL(file, `file://${root}`), 'utf8')
  return text
    .split('\n')
    .map((line, index) => ({ line, number: index + 1 }))
    .filter(({ line }) => forbidden.some((pattern) => pattern.test(line)))
    .map(({ line, number }) => `${file}:${number}: ${line.trim().slice(0, 160)}`)
}

describe('the repository stands alone', () => {
  it('lists its tracked files through git', () => {
    expect(trackedFiles()).toContain('package.json')
  })

  it('no tracked file refers to the shared notes folder or to an absolute machine path', () => {
    const offending = trackedFiles().flatMap(offendingLines)
    expect(offending).toEqual([])
  })

  it('the patterns catch what they are for', () => {
    const samples = [`read ..${'/'}shared/vectors/x.json`, `open('/${'work'}/x')`, `cd /${'home'}/me/peercache`, `C:${'\\'}Users${'\\'}me`]
    for (const sample of samples) expect(forbidden.some((pattern) => pattern.test(sample))).toBe(true)
    expect(forbidden.some((pattern) => pattern.test('/proc/123/stat and dist/index.js'))).toBe(false)
  })
})

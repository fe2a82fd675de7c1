// peercache-resolve: the module hook peercache-from-src.mjs registers; the
// bare specifiers 'peercache' and 'peercache/keyv' resolve to their sources
// in src/ (tsx then loads them).
const SOURCES = new Map([
  ['peercache', new URL('../../src/index.ts', import.meta.url).href],
  ['peercache/keyv', new URL('../../src/integrations/keyv.ts', import.meta.url).href],
])

/** resolve sends peercache's own specifiers to src/ and everything else on unchanged. */
export async function resolve(specifier, context, next) {
  return next(SOURCES.get(specifier) ?? specifier, context)
}

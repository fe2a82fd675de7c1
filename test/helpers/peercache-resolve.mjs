// peercache-resolve: the module hook peercache-from-src.mjs registers; the
// bare specifier 'peercache' resolves to src/index.ts (tsx then loads it).
const SOURCE = new URL('../../src/index.ts', import.meta.url).href

/** resolve sends 'peercache' to src/index.ts and everything else on unchanged. */
export async function resolve(specifier, context, next) {
  return next(specifier === 'peercache' ? SOURCE : specifier, context)
}

/**
 * slab is memcached's slab allocator for a group's cached values: values
 * live in chunks of a few large pages (ArrayBuffers allocated up to the
 * budget and kept), not in an ArrayBuffer each.
 *
 * Why: a value in an ArrayBuffer of its own is a malloc'd backing store that
 * V8 frees only when a major GC collects its wrapper, and V8 lets tens of MB
 * of such external memory pile up before it runs one; the allocator then
 * keeps the peak resident. Under churn a cache of N bytes cost its process
 * about 2N (BENCHMARKS.md, memory). In a slab arena a chunk freed by an
 * eviction is reused by the next value of its size at once, and the pages
 * are never freed: RSS stays at the budget.
 *
 * As in memcached (slabs.c): chunk sizes grow by a factor of 1.25 (classes),
 * a page is carved into chunks of one class, pages are allocated on demand
 * up to the budget's worth, and a class that needs a chunk when no page is
 * left takes one from another class (the page holding the fewest live bytes),
 * evicting the values still in it — memcached's slab reassignment, which
 * lets the arena follow a changing size mix.
 */

/** SLAB_MIN_CHUNK is the smallest chunk; smaller values stay on V8's heap (see cache.ts). */
export const SLAB_MIN_CHUNK = 80
/** SLAB_GROWTH is the factor between the chunk sizes of consecutive classes (memcached's -f). */
export const SLAB_GROWTH = 1.25
/** SLAB_MAX_PAGE is the largest page, memcached's 1 MiB. */
export const SLAB_MAX_PAGE = 1 << 20
/** SLAB_MIN_PAGE is the smallest page: small budgets get small pages, so a few classes do not take the whole budget. */
export const SLAB_MIN_PAGE = 64 << 10
/** A budget of B gets pages of about B / PAGES_PER_BUDGET: the unfilled page of each class in use stays a small share of it. */
const PAGES_PER_BUDGET = 256

/** CHUNK_SIZES are the classes' chunk sizes: SLAB_MIN_CHUNK × 1.25^i rounded up to 8, up to SLAB_MAX_PAGE. */
const CHUNK_SIZES: readonly number[] = chunkSizes()

function chunkSizes(): number[] {
  const sizes: number[] = []
  for (let size = SLAB_MIN_CHUNK; size < SLAB_MAX_PAGE; size = Math.ceil((size * SLAB_GROWTH) / 8) * 8) sizes.push(size)
  sizes.push(SLAB_MAX_PAGE)
  return sizes
}

/** classOf is the index of the smallest class whose chunk holds `bytes` (bytes ≤ SLAB_MAX_PAGE). */
function classOf(bytes: number): number {
  let lo = 0
  let hi = CHUNK_SIZES.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((CHUNK_SIZES[mid] as number) >= bytes) hi = mid
    else lo = mid + 1
  }
  return lo
}

/**
 * chunkBytes is the chunk a value of `bytes` takes in an arena whose pages
 * are as large as they get (what the budget counts for it), undefined for a
 * value too large for any chunk.
 */
export function chunkBytes(bytes: number): number | undefined {
  return bytes > SLAB_MAX_PAGE ? undefined : CHUNK_SIZES[classOf(bytes)]
}

/** SlabOwner is what holds a chunk: told (`evictOwner`) when its page goes to another class. */
export interface SlabOwner {
  /** The chunk's page, undefined while the owner holds no chunk. */
  page: SlabPage | undefined
  /** The chunk's index in its page. */
  chunk: number
}

/** SlabPage is one page: chunks of one class, carved in order, each free or held by an owner. */
export interface SlabPage {
  readonly buffer: ArrayBuffer
  /** Index of the class whose chunks the page holds (changes when the page is reassigned). */
  cls: number
  /** How many chunks have been carved from the start of the page. */
  carved: number
  /** How many carved chunks are held. */
  live: number
  /** owners[i] holds chunk i, undefined when it is free. */
  owners: Array<SlabOwner | undefined>
}

/** A class: its chunk size, its free chunks (page and index) and the page being carved. */
interface SlabClass {
  readonly index: number
  readonly size: number
  readonly free: Array<{ page: SlabPage; chunk: number }>
  carving: SlabPage | undefined
}

/** SlabArena is one group's arena (main and hot share it, as they share the budget). */
export class SlabArena {
  /** pageBytes is this arena's page size (from the budget); larger values are not stored here. */
  readonly pageBytes: number
  readonly #maxPages: number
  readonly #pages: SlabPage[] = []
  readonly #classes: SlabClass[]
  readonly #evictOwner: (owner: SlabOwner) => void

  /**
   * budgetBytes bounds the pages; evictOwner must drop the owner's entry
   * (its chunk is then given back through `free`) — called when a page is
   * taken from one class for another.
   */
  constructor(budgetBytes: number, evictOwner: (owner: SlabOwner) => void) {
    this.pageBytes = pageSize(budgetBytes)
    this.#maxPages = Math.floor(budgetBytes / this.pageBytes)
    // The classes of CHUNK_SIZES below the page, then one of a whole page: their indices are CHUNK_SIZES' (see #classOf).
    const sizes = [...CHUNK_SIZES.filter((size) => size < this.pageBytes), this.pageBytes]
    this.#classes = sizes.map((size, index) => ({ index, size, free: [], carving: undefined }))
    this.#evictOwner = evictOwner
  }

  /** pages is how many pages are allocated (each pageBytes, kept for the arena's life). */
  get pages(): number {
    return this.#pages.length
  }

  /** holds tells whether a value of `bytes` fits a chunk of this arena (cache.ts keeps values up to 64 bytes on V8's heap). */
  holds(bytes: number): boolean {
    return bytes <= this.pageBytes && this.#maxPages > 0
  }

  /**
   * store copies bytes (`holds(bytes.byteLength)` must be true) into a chunk
   * given to owner, and returns the view of it. It may evict other owners
   * (a page taken from another class), never owner.
   */
  store(bytes: Uint8Array, owner: SlabOwner): Uint8Array {
    const cls = this.#classes[Math.min(classOf(bytes.byteLength), this.#classes.length - 1)] as SlabClass
    const slot = cls.free.pop() ?? this.#carve(cls)
    const view = new Uint8Array(slot.page.buffer, slot.chunk * cls.size, bytes.byteLength)
    view.set(bytes)
    slot.page.owners[slot.chunk] = owner
    slot.page.live++
    owner.page = slot.page
    owner.chunk = slot.chunk
    return view
  }

  /** free gives owner's chunk back to its class, for the next value of that size; a no-op when it holds none. */
  free(owner: SlabOwner): void {
    const page = owner.page
    if (page === undefined) return
    owner.page = undefined
    if (page.owners[owner.chunk] !== owner) return
    page.owners[owner.chunk] = undefined
    page.live--
    ;(this.#classes[page.cls] as SlabClass).free.push({ page, chunk: owner.chunk })
  }

  /** A new chunk of cls: from the page being carved, a new page, or a page taken from another class. */
  #carve(cls: SlabClass): { page: SlabPage; chunk: number } {
    let page = cls.carving
    if (page === undefined || (page.carved + 1) * cls.size > this.pageBytes) {
      page = this.#pages.length < this.#maxPages ? this.#newPage() : this.#reassign()
      this.#assign(page, cls)
    }
    return { page, chunk: page.carved++ }
  }

  #newPage(): SlabPage {
    const page: SlabPage = { buffer: new ArrayBuffer(this.pageBytes), cls: 0, carved: 0, live: 0, owners: [] }
    this.#pages.push(page)
    return page
  }

  /**
   * Empties the page holding the fewest live bytes (evicting their owners)
   * and takes it from its class. Every page is carved to the end but the one
   * each class is carving, so the budget's bytes are held or free in some class.
   */
  #reassign(): SlabPage {
    let victim = this.#pages[0] as SlabPage
    let fewest = Infinity
    for (const page of this.#pages) {
      const liveBytes = page.live * (this.#classes[page.cls] as SlabClass).size
      if (liveBytes < fewest) {
        fewest = liveBytes
        victim = page
      }
    }
    for (const owner of victim.owners) if (owner !== undefined) this.#evictOwner(owner)
    // Owners are dropped even if evictOwner did not free them: the page is reused.
    for (const owner of victim.owners) if (owner !== undefined && owner.page === victim) owner.page = undefined
    const from = this.#classes[victim.cls] as SlabClass
    const kept = from.free.filter((slot) => slot.page !== victim)
    from.free.length = 0
    from.free.push(...kept)
    if (from.carving === victim) from.carving = undefined
    return victim
  }

  /** Gives page (new or emptied) to cls, to be carved from its start. */
  #assign(page: SlabPage, cls: SlabClass): void {
    page.cls = cls.index
    page.carved = 0
    page.live = 0
    page.owners = []
    cls.carving = page
  }
}

/** pageSize is the page of an arena for budgetBytes: about budget / 256, a power of two within [64 KiB, 1 MiB]. */
function pageSize(budgetBytes: number): number {
  let size = SLAB_MIN_PAGE
  while (size < SLAB_MAX_PAGE && size * 2 * PAGES_PER_BUDGET <= budgetBytes) size *= 2
  return size
}

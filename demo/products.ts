/**
 * products: the demo's origin, an embedded SQLite database of products read
 * through better-sqlite3. cluster.ts seeds it once; every app process opens
 * the same file read-only and stands in for a service that queries a remote
 * database.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'

/** DEFAULT_PRODUCTS is how many products the demo database holds at least. */
export const DEFAULT_PRODUCTS = 10_000

const CATEGORIES = ['books', 'garden', 'kitchen', 'music', 'outdoor', 'tools', 'toys', 'video'] as const
const ADJECTIVES = ['Compact', 'Deluxe', 'Handmade', 'Solid', 'Smart', 'Classic', 'Foldable', 'Vintage'] as const
const NOUNS = ['Lamp', 'Kettle', 'Backpack', 'Chair', 'Drill', 'Puzzle', 'Speaker', 'Notebook', 'Tent'] as const

/**
 * ensureProducts makes sure `path` holds a database with products 1..count,
 * creating it (in one transaction, then an atomic rename, so concurrent demos
 * never see half a file) when it is missing, short or unreadable.
 */
export function ensureProducts(path: string, count: number): void {
  if (hasProducts(path, count)) return
  mkdirSync(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  rmSync(tmp, { force: true })
  const db = new Database(tmp)
  try {
    db.exec(`CREATE TABLE products (
      id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
      price_cents INTEGER NOT NULL, stock INTEGER NOT NULL, description TEXT NOT NULL)`)
    const insert = db.prepare('INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)')
    db.transaction(() => {
      for (let id = 1; id <= count; id++) insert.run(...productRow(id))
    })()
  } finally {
    db.close()
  }
  renameSync(tmp, path)
}

/** hasProducts tells whether the database at path already holds products 1..count. */
function hasProducts(path: string, count: number): boolean {
  if (!existsSync(path)) return false
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true })
    try {
      const row = db.prepare('SELECT count(*) AS n, max(id) AS top FROM products').get() as { n: number; top: number | null }
      return row.n >= count && row.top === row.n
    } finally {
      db.close()
    }
  } catch {
    return false
  }
}

/** productRow derives product `id`'s columns deterministically from its id. */
function productRow(id: number): [number, string, string, number, number, string] {
  const pick = <T>(list: readonly T[], salt: number): T => list[(id * 2654435761 + salt) % list.length] as T
  const name = `${pick(ADJECTIVES, 1)} ${pick(NOUNS, 7)} ${id}`
  const category = pick(CATEGORIES, 3)
  const description = `${name}, from our ${category} range: well reviewed, ships in two days.`
  return [id, name, category, 199 + ((id * 7919) % 20_000), (id * 31) % 500, description]
}

/** ProductStore answers the one query the demo's loader runs. */
export interface ProductStore {
  /** productJson returns product `id` as a JSON string, or undefined when there is none. */
  productJson(id: number): string | undefined
  close(): void
}

/** openProducts opens the seeded database read-only. */
export function openProducts(path: string): ProductStore {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  // SQLite builds the JSON itself: one statement, one string out.
  const byId = db
    .prepare(
      `SELECT json_object('id', id, 'name', name, 'category', category,
         'priceCents', price_cents, 'stock', stock, 'description', description)
       FROM products WHERE id = ?`,
    )
    .pluck()
  return {
    productJson: (id) => byId.get(id) as string | undefined,
    close: () => db.close(),
  }
}

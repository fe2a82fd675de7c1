/**
 * The libraries Node users cache with, on PeercacheStore over a real
 * two-peer cluster (127.0.0.1): cache-manager v7 (`createCache({ stores:
 * [new Keyv({ store })] })`) and @nestjs/cache-manager (`CacheModule.register`,
 * a controller with `CACHE_MANAGER` and the `CacheInterceptor`), two NestJS
 * apps listening on 127.0.0.1 and asked over real HTTP: what one app caches,
 * the other serves.
 *
 * Vitest's transform emits no decorator metadata (and the project's tsconfig
 * turns on no legacy decorators), so the NestJS classes are decorated the way
 * TypeScript's own output does it, with `Reflect.decorate`, and inject by
 * explicit token (`Inject(CACHE_MANAGER)`), relying on no metadata.
 */
import 'reflect-metadata'
import { CACHE_MANAGER, CacheInterceptor, CacheModule } from '@nestjs/cache-manager'
import { Body, Controller, Get, Inject, Module, Param, Put, UseInterceptors, type INestApplication } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { createCache, type Cache } from 'cache-manager'
import Keyv from 'keyv'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { PeercacheStore } from '../src/integrations/keyv.js'
import { startCluster, type Cluster } from './helpers/cluster.js'

let cluster: Cluster | undefined
const apps: INestApplication[] = []

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()))
  await cluster?.close()
  cluster = undefined
})

async function start(): Promise<Cluster> {
  cluster = await startCluster(2, ({ cache }) => {
    cache.group({ name: 'cache', cacheBytes: 4 << 20 })
  })
  return cluster
}

/** keyvOf is a Keyv over member's group, as cache-manager and Nest take it. */
function keyvOf(c: Cluster, member: number): Keyv {
  return new Keyv({ store: new PeercacheStore(c.caches[member]!, { group: c.group(member, 'cache') }) })
}

/** keysOwnedBy lists n cache-manager keys whose Keyv form ('keyv:' + key) the ring gives to member. */
function keysOwnedBy(c: Cluster, member: number, n: number, prefix: string): string[] {
  const keys: string[] = []
  for (let i = 0; keys.length < n && i < 10_000; i++) if (c.ownerOf(`keyv:${prefix}${i}`) === member) keys.push(`${prefix}${i}`)
  return keys
}

describe('cache-manager v7 on PeercacheStore', () => {
  it('set, get, mget, del, wrap and clear work across the two peers', async () => {
    const c = await start()
    const [first, second] = [createCache({ stores: [keyvOf(c, 0)] }), createCache({ stores: [keyvOf(c, 1)] })]
    const keys = [...keysOwnedBy(c, 0, 2, 'user:'), ...keysOwnedBy(c, 1, 2, 'user:')]
    for (const key of keys) expect(await first.set(key, { key }, 60_000)).toEqual({ key })
    for (const key of keys) expect(await second.get(key)).toEqual({ key })
    expect(await second.mget([...keys, 'user:absent'])).toEqual([...keys.map((key) => ({ key })), undefined])
    expect(await second.del(keys[0]!)).toBe(true)
    expect(await first.get(keys[0]!)).toBeUndefined()

    // wrap runs the function once in the cluster: the other peer gets the stored result.
    let runs = 0
    const compute = async (): Promise<string> => `computed ${++runs}`
    const [wrapped] = keysOwnedBy(c, 1, 1, 'report:')
    expect(await first.wrap(wrapped!, compute, 60_000)).toBe('computed 1')
    expect(await second.wrap(wrapped!, compute, 60_000)).toBe('computed 1')
    expect(runs).toBe(1)

    await second.clear()
    expect(await first.mget(keys)).toEqual(keys.map(() => undefined))
  })
})

/** ItemsController: GET /items/:id is cached by the CacheInterceptor; /notes use CACHE_MANAGER directly. */
class ItemsController {
  computed = 0
  constructor(readonly cache: Cache) {}

  item(id: string): { id: string; computedBy: number } {
    this.computed++
    return { id, computedBy: this.computed }
  }

  async putNote(id: string, text: string): Promise<{ stored: string }> {
    await this.cache.set(`note:${id}`, text, 60_000)
    return { stored: id }
  }

  async note(id: string): Promise<{ text: string | null }> {
    return { text: (await this.cache.get<string>(`note:${id}`)) ?? null }
  }
}

decorateMethod(ItemsController, 'item', Get('items/:id'), UseInterceptors(CacheInterceptor), param(0, Param('id')))
decorateMethod(ItemsController, 'putNote', Put('notes/:id'), param(0, Param('id')), param(1, Body('text')))
decorateMethod(ItemsController, 'note', Get('notes/:id'), param(0, Param('id')))
Reflect.decorate([Controller(), param(0, Inject(CACHE_MANAGER))] as ClassDecorator[], ItemsController)

/** decorateMethod applies decorators to a method as TypeScript's emitted `__decorate` does. */
function decorateMethod(target: { prototype: object }, name: string, ...decorators: MethodDecorator[]): void {
  const descriptor = Object.getOwnPropertyDescriptor(target.prototype, name)
  const decorated = Reflect.decorate(decorators, target.prototype, name, descriptor) as PropertyDescriptor | undefined
  if (decorated !== undefined) Object.defineProperty(target.prototype, name, decorated)
}

/** param turns a parameter decorator into the method/class decorator of parameter `index` (TypeScript's `__param`). */
function param(index: number, decorator: ParameterDecorator): MethodDecorator & ClassDecorator {
  return ((target: object, key?: string | symbol) => decorator(target, key, index)) as MethodDecorator & ClassDecorator
}

/** startApp runs a NestJS app whose CacheModule stores in member's group, listening on 127.0.0.1. */
async function startApp(c: Cluster, member: number): Promise<{ url: string; controller: ItemsController }> {
  class AppModule {}
  Reflect.decorate([Module({ imports: [CacheModule.register({ stores: [keyvOf(c, member)], ttl: 60_000 })], controllers: [ItemsController] })], AppModule)
  const app = await NestFactory.create(AppModule, { logger: false })
  apps.push(app)
  await app.listen(0, '127.0.0.1')
  const { port } = app.getHttpServer().address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, controller: app.get(ItemsController) }
}

async function request(url: string, init: RequestInit = {}): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
  expect(response.ok).toBe(true)
  return response.json()
}

describe('@nestjs/cache-manager on PeercacheStore', () => {
  it('the CacheInterceptor caches a GET once for both apps; CACHE_MANAGER reads what the other app stored', async () => {
    const c = await start()
    const [a, b] = [await startApp(c, 0), await startApp(c, 1)]
    const ids = [keysOwnedBy(c, 0, 1, '/items/')[0]!, keysOwnedBy(c, 1, 1, '/items/')[0]!].map((key) => key.slice('/items/'.length))
    const shared = keyvOf(c, 0)
    for (const id of ids) {
      const fromA = await request(`${a.url}/items/${id}`)
      expect(fromA).toEqual({ id, computedBy: a.controller.computed })
      // The interceptor stores the answer after sending it: wait until the cluster holds it.
      await vi.waitFor(async () => expect(await shared.has(`/items/${id}`)).toBe(true), { timeout: 5_000 })
      // The other app answers from the shared cache: its handler does not run.
      expect(await request(`${b.url}/items/${id}`)).toEqual(fromA)
    }
    expect([a.controller.computed, b.controller.computed]).toEqual([ids.length, 0])

    const json = { 'content-type': 'application/json' }
    expect(await request(`${b.url}/notes/7`, { method: 'PUT', headers: json, body: JSON.stringify({ text: 'from b' }) })).toEqual({ stored: '7' })
    expect(await request(`${a.url}/notes/7`)).toEqual({ text: 'from b' })
    expect(await request(`${a.url}/notes/8`)).toEqual({ text: null })
  })
})

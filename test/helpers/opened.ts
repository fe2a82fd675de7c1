/**
 * opened: Opened keeps what a test opened — undici clients, apps, Peercaches,
 * node:http servers — and closes it all after the test, in the order that
 * lets each close finish: clients (their connections), then other closables
 * (a fastify app), then caches, then servers (their last connections cut).
 */
import { Server } from 'node:http'
import { Client } from 'undici'
import { Peercache } from '../../src/index.js'
import { closeServer } from './cluster.js'

/** Closable is anything else a test opens that closes, possibly asynchronously (a fastify app). */
interface Closable {
  close(): unknown
}

/** Opened is one test file's list of things to close after each test. */
export class Opened {
  #clients: Client[] = []
  #others: Closable[] = []
  #caches: Peercache[] = []
  #servers: Server[] = []

  /** track makes thing closed by the next closeAll, and returns it. */
  track<T extends Client | Peercache | Server | Closable>(thing: T): T {
    if (thing instanceof Client) this.#clients.push(thing)
    else if (thing instanceof Peercache) this.#caches.push(thing)
    else if (thing instanceof Server) this.#servers.push(thing)
    else this.#others.push(thing)
    return thing
  }

  /** closeAll closes everything tracked (see the file comment for the order) and forgets it. */
  async closeAll(): Promise<void> {
    const [clients, others, caches, servers] = [this.#clients, this.#others, this.#caches, this.#servers]
    this.#clients = []
    this.#others = []
    this.#caches = []
    this.#servers = []
    await Promise.all(clients.map((client) => client.close()))
    await Promise.all(others.map((thing) => thing.close()))
    await Promise.all(caches.map((cache) => cache.close()))
    await Promise.all(servers.map((server) => closeServer(server)))
  }
}

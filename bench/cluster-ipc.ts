/**
 * cluster-ipc: how the cluster benchmark's parent talks to its Node children
 * (the app processes and the load generator) over Node's IPC channel. A child
 * says `ready` once, then answers numbered requests; `stop` (or the channel
 * closing, when the parent is gone) makes it clean up and exit, so no child
 * outlives the parent. The parent side bounds every wait and ends a child by
 * its PID.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** How long a child may take to say `ready`, and to answer a request. */
const READY_WITHIN_MS = 60_000
const ANSWER_WITHIN_MS = 10_000
/** How long a child gets to exit after `stop` (a CPU profile is written then) before SIGKILL. */
const STOP_GRACE_MS = 15_000

/** Message is what travels over the channel: a type and its fields. */
export interface Message {
  type: string
  [field: string]: unknown
}

interface Pending {
  resolve(value: unknown): void
  reject(error: Error): void
  timer: NodeJS.Timeout
}

/** BenchChild is one running child of the cluster benchmark, started from a bench/*.ts script. */
export class BenchChild {
  readonly name: string
  readonly pid: number
  /** exited resolves once the child has exited and been reaped. */
  readonly exited: Promise<void>
  readonly #child: ChildProcess
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #stopping = false
  #readyMessage: Promise<Message> | undefined

  /**
   * fork starts `script` (a .ts file next to this one) under tsx; await
   * `ready()` before asking it anything. `onCrash` hears of an exit nobody
   * asked for.
   */
  static fork(name: string, script: string, args: string[], onCrash: (why: string) => void): BenchChild {
    const path = fileURLToPath(new URL(script, import.meta.url))
    const child = fork(path, args, { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    return new BenchChild(name, child, onCrash)
  }

  private constructor(name: string, child: ChildProcess, onCrash: (why: string) => void) {
    this.name = name
    this.#child = child
    this.pid = child.pid ?? -1
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#failPending(new Error(`${name} exited`))
        if (!this.#stopping) onCrash(`${name} (pid ${this.pid}) exited unexpectedly with ${signal ?? `code ${code}`}`)
        resolve()
      })
    })
    child.on('message', (message: Message) => this.#onMessage(message))
    void this.ready().catch(() => {}) // listen for `ready` from the start; callers await ready() for the outcome
  }

  /** ask sends a request and resolves to the child's answer (bounded). */
  ask<T>(type: string, fields: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.name} did not answer ${type} within ${ANSWER_WITHIN_MS} ms`))
      }, ANSWER_WITHIN_MS)
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer })
      this.#child.send({ ...fields, type, id })
    })
  }

  /** stop asks the child to clean up and exit, SIGKILLs it after a grace period, and resolves once it is reaped. */
  async stop(): Promise<void> {
    this.#stopping = true
    if (this.#alive()) {
      if (this.#child.connected) this.#child.send({ type: 'stop' })
      const timer = setTimeout(() => this.killNow(), STOP_GRACE_MS)
      await this.exited
      clearTimeout(timer)
    }
    await this.exited
  }

  /** killNow SIGKILLs the child synchronously (the last resort from an 'exit' handler). */
  killNow(): void {
    this.#stopping = true
    if (this.#alive()) this.#child.kill('SIGKILL')
  }

  #alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** ready resolves to the child's `ready` message (bounded; a child that is not ready in time is killed). */
  ready(): Promise<Message> {
    this.#readyMessage ??= new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.killNow()
        reject(new Error(`${this.name} was not ready within ${READY_WITHIN_MS} ms`))
      }, READY_WITHIN_MS)
      this.#pending.set(0, { resolve: resolve as (value: unknown) => void, reject, timer })
    })
    return this.#readyMessage
  }

  #onMessage(message: Message): void {
    const id = message.type === 'ready' ? 0 : Number(message.id)
    const pending = this.#pending.get(id)
    if (pending === undefined) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    pending.resolve(message.type === 'ready' ? message : message.result)
  }

  #failPending(error: Error): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer)
      pending.reject(error)
    }
    this.#pending.clear()
  }
}

/** Handlers answer the parent's requests by type, in the child. */
export type Handlers = Record<string, (message: Message) => unknown>

/**
 * serveParent is the child's side: it says `ready` with `info`, answers each
 * request with its handler's result, and on `stop` or a closed channel runs
 * `stop` once and exits 0.
 */
export function serveParent(info: Record<string, unknown>, handlers: Handlers, stop: () => Promise<void>): void {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('this script is started by bench/cluster.ts, not by hand')
  let stopping = false
  const exit = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    await stop().catch((err: unknown) => console.error(err))
    process.exit(0)
  }
  process.on('message', async (message: Message) => {
    if (message.type === 'stop') return void exit()
    const handler = handlers[message.type]
    if (handler === undefined) throw new Error(`no handler for ${message.type}`)
    send({ type: 'answer', id: message.id, result: await handler(message) })
  })
  process.on('disconnect', () => void exit())
  send({ ...info, type: 'ready' })
}

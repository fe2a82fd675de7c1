/**
 * config: where the static peer list comes from. In order of precedence:
 * the `self`/`peers` options, then the `PEERCACHE_SELF`/`PEERCACHE_PEERS`
 * environment variables (comma-separated), then the JSON file named by
 * `PEERCACHE_CONFIG` (`{ "self": "...", "peers": ["..."], "ring": "..." }`).
 *
 * A peer is named by its base URL exactly as written, less trailing slashes:
 * the ring hashes that string (as Go groupcache does), so every process must
 * list the peers the same way. No peers at all means a process that owns
 * every key.
 *
 * The ring kind comes from the `ring` option, else `PEERCACHE_RING`, else the
 * file's `"ring"` when the file gives the peers, else `balanced`.
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from './errors.js'
import { RING_KINDS, type RingKind } from './placement.js'
import { HashRing, type HashFn, type RingOptions } from './ring.js'

/** PeerList is a resolved peer list: who this process is, and everyone (self included). */
export interface PeerList {
  self: string | undefined
  peers: string[]
}

/** PeerConfig is a resolved peer list and the ring kind every process of the cluster must share. */
export interface PeerConfig extends PeerList {
  ring: RingKind
}

/** PeerConfigInput is the part of the options config reads. */
export interface PeerConfigInput {
  self?: string | undefined
  peers?: readonly string[] | undefined
  ring?: RingKind | undefined
  /** Where the PEERCACHE_* variables are read. @default process.env */
  env?: Record<string, string | undefined>
}

const MAX_CONFIG_FILE_BYTES = 1024 * 1024

/** resolvePeerConfig reads the peer list and ring kind from options, env or file, and validates them. */
export function resolvePeerConfig(input: PeerConfigInput): PeerConfig {
  const env = input.env ?? process.env
  const withRing = (list: PeerList, fileRing?: unknown, file?: string): PeerConfig => ({ ...list, ring: resolveRingKind(input.ring, env, fileRing, file) })
  if (input.self !== undefined || input.peers !== undefined) return withRing(validatePeerConfig(input.self, input.peers, 'options'))
  if (nonEmpty(env.PEERCACHE_SELF) || nonEmpty(env.PEERCACHE_PEERS)) {
    return withRing(validatePeerConfig(env.PEERCACHE_SELF, splitList(env.PEERCACHE_PEERS), 'environment'))
  }
  const file = env.PEERCACHE_CONFIG
  if (nonEmpty(file)) {
    const parsed = readConfigFile(file)
    return withRing(validatePeerConfig(parsed.self, parsed.peers, `file ${file}`), parsed.ring, file)
  }
  return withRing({ self: undefined, peers: [] })
}

/**
 * resolveRingKind picks the ring kind: the option, else PEERCACHE_RING, else
 * the config file's "ring" (read only when the file is the peer source),
 * else `balanced`. Every process of a cluster must resolve the same kind, or
 * they disagree on owners.
 */
function resolveRingKind(option: unknown, env: Record<string, string | undefined>, fileRing: unknown, file: string | undefined): RingKind {
  if (option !== undefined) return checkRingKind(option, 'options')
  if (nonEmpty(env.PEERCACHE_RING)) return checkRingKind(env.PEERCACHE_RING.trim(), 'environment PEERCACHE_RING')
  if (fileRing !== undefined) return checkRingKind(fileRing, `file ${file}`)
  return 'balanced'
}

/** checkRingKind refuses a ring kind that is not one of RING_KINDS, naming where it came from. */
function checkRingKind(kind: unknown, source: string): RingKind {
  if (RING_KINDS.includes(kind as RingKind)) return kind as RingKind
  throw new ConfigError(`ring from ${source} must be ${RING_KINDS.map((k) => `'${k}'`).join(' or ')}, got ${JSON.stringify(kind)}`)
}

/**
 * validatePeerConfig normalises every URL and checks the list: valid URLs,
 * no duplicates, and `self` among the peers (a process that is not in its
 * own ring would forward every key).
 */
export function validatePeerConfig(self: unknown, peers: unknown, source: string): PeerList {
  const list = peers === undefined ? [] : peers
  if (!Array.isArray(list)) throw new ConfigError(`peers from ${source} must be an array of URLs`)
  const normalised = list.map((peer: unknown) => normalizePeerUrl(peer, source))
  const seen = new Set<string>()
  for (const peer of normalised) {
    if (seen.has(peer)) throw new ConfigError(`duplicate peer ${peer} in ${source}`)
    seen.add(peer)
  }
  if (self === undefined || self === '') {
    if (normalised.length > 0) throw new ConfigError(`self is required when peers are set (${source})`)
    return { self: undefined, peers: [] }
  }
  const me = normalizePeerUrl(self, source)
  if (normalised.length === 0) return { self: me, peers: [me] }
  if (!seen.has(me)) throw new ConfigError(notInList(me, normalised, source))
  checkSchemes(me, normalised, source)
  return { self: me, peers: normalised }
}

/**
 * notInList says why self is missing: peers are compared as written (the
 * ring hashes the string), so `localhost` is not `127.0.0.1`. It suggests
 * the entry with self's port, the likely same process written another way.
 */
function notInList(self: string, peers: readonly string[], source: string): string {
  const shown = peers.length > 5 ? `${peers.slice(0, 5).join(', ')}, … (${peers.length} peers)` : peers.join(', ')
  let message = `self ${self} is not in the peer list from ${source} [${shown}]: peers are compared as written; write self exactly as in the list`
  const port = portOf(self)
  const likely = peers.find((peer) => portOf(peer) === port)
  if (likely !== undefined) message += ` (did you mean ${likely}?)`
  return message
}

function portOf(url: string): string {
  const parsed = new URL(url)
  return parsed.port === '' ? (parsed.protocol === 'https:' ? '443' : '80') : parsed.port
}

/**
 * checkSchemes refuses a cluster that mixes http:// and https://: this
 * process speaks self's scheme's protocol to every peer, so an https client
 * would speak TLS to a plain port (ERR_SSL_WRONG_VERSION_NUMBER at run time,
 * the peer marked down) and a plain client would talk HTTP to a TLS port.
 */
export function checkSchemes(self: string, peers: readonly string[], source: string): void {
  const scheme = new URL(self).protocol
  const other = peers.find((peer) => new URL(peer).protocol !== scheme)
  if (other === undefined) return
  const want = scheme === 'https:' ? 'https://' : 'http://'
  throw new ConfigError(
    `peer ${other} in ${source} is ${new URL(other).protocol}// but self ${self} is ${want}: a mixed cluster cannot talk ` +
      `(one side would speak TLS to a plain port); write every peer with ${want}, or change self's scheme (and server.tls) to match theirs`,
  )
}

/**
 * normalizePeerUrl checks that raw is an http(s) base URL with no query,
 * fragment or credentials, and returns it as written less trailing slashes.
 */
export function normalizePeerUrl(raw: unknown, source = 'options'): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new ConfigError(`peer URL ${JSON.stringify(raw)} in ${source} is not a non-empty string`)
  const trimmed = raw.trim().replace(/\/+$/, '')
  let url: URL
  try {
    url = new URL(trimmed)
  } catch (err) {
    throw new ConfigError(`peer URL ${JSON.stringify(raw)} in ${source} is not a valid URL`, { cause: err })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`peer URL ${JSON.stringify(raw)} in ${source} must be http:// or https://`)
  }
  if (url.username !== '' || url.password !== '') {
    // Never echo credentials into a message that ends up in logs.
    throw new ConfigError(`peer URL ${url.protocol}//***@${url.host} in ${source} must not carry credentials`)
  }
  if (url.search !== '' || url.hash !== '' || trimmed.endsWith('?') || trimmed.endsWith('#')) {
    throw new ConfigError(`peer URL ${JSON.stringify(raw)} in ${source} must not have a query or fragment`)
  }
  return trimmed
}

function readConfigFile(file: string): { self?: unknown; peers?: unknown; ring?: unknown } {
  let text: string
  try {
    const bytes = readFileSync(file)
    if (bytes.byteLength > MAX_CONFIG_FILE_BYTES) throw new ConfigError(`config file ${file} exceeds 1 MiB`)
    text = bytes.toString('utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`cannot read config file ${file}`, { cause: err })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON`, { cause: err })
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object { "self": ..., "peers": [...] }`)
  }
  return parsed as { self?: unknown; peers?: unknown; ring?: unknown }
}

/** splitList splits a comma-separated env value, dropping blanks. */
export function splitList(value: string | undefined): string[] {
  if (value === undefined) return []
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
}

function nonEmpty(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== ''
}

/**
 * ringOptions resolves the ring kind and checks the ring options by building
 * an empty ring, so a bad combination (a `hash` with the balanced ring) is
 * refused at construction even in a process without peers.
 */
export function ringOptions(kind: RingKind, options: { replicas?: number | undefined; hash?: HashFn | undefined }): RingOptions {
  const ring: RingOptions = { ring: kind }
  if (options.replicas !== undefined) ring.replicas = options.replicas
  if (options.hash !== undefined) ring.hash = options.hash
  void new HashRing([], ring)
  return ring
}

/** discoveryRingKind is the ring kind of a Peercache whose peers come from discovery: the option, else PEERCACHE_RING, else balanced. */
export function discoveryRingKind(options: { ring?: RingKind | undefined; env?: Record<string, string | undefined> | undefined }): RingKind {
  return resolvePeerConfig({ ring: options.ring, env: { PEERCACHE_RING: (options.env ?? process.env).PEERCACHE_RING } }).ring
}

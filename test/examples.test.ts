/**
 * The deployment examples (examples/kubernetes, examples/compose) are read
 * and checked against the code: every variable they set is one peercache or
 * the example app reads, PEERCACHE_DNS names the headless Service and the
 * container port, self derives from what the platform provides, and the
 * grace period covers the drain. No cluster is needed.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { resolveDiscovery } from '../src/discovery/config.js'
import { discoveryFromEnv } from '../src/discovery/env.js'
import { parseYaml, type YamlValue } from './helpers/yaml.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string): string => readFileSync(ROOT + path, 'utf8')

/** Obj walks parsed YAML by key, failing loudly on a missing one. */
function at(value: YamlValue, ...path: Array<string | number>): YamlValue {
  let current = value
  for (const step of path) {
    const next = (current as Record<string | number, YamlValue> | null)?.[step]
    if (next === undefined) throw new Error(`missing ${path.join('.')} (at ${String(step)})`)
    current = next
  }
  return current
}

/** Every environment variable the library reads (env.NAME in src/), and those the example app reads. */
function variablesRead(): { library: Set<string>; app: Set<string> } {
  const files = (dir: string): string[] =>
    readdirSync(ROOT + dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : [`${dir}/${e.name}`]))
  const library = new Set(files('src').flatMap((file) => [...read(file).matchAll(/\benv\)?\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!)))
  const app = new Set([...read('examples/app/server.mjs').matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1]!))
  return { library, app }
}

describe('examples/kubernetes', () => {
  const [service] = parseYaml(read('examples/kubernetes/service.yaml'))
  const [deployment] = parseYaml(read('examples/kubernetes/deployment.yaml'))
  const container = at(deployment!, 'spec', 'template', 'spec', 'containers', 0)
  const env = at(container, 'env') as Array<{ name: string; value?: string; valueFrom?: YamlValue }>
  const envValue = (name: string): string | undefined => env.find((e) => e.name === name)?.value

  it('sets only variables the code reads', () => {
    const { library, app } = variablesRead()
    for (const { name } of env) expect(library.has(name) || app.has(name), name).toBe(true)
    expect(library.has('PEERCACHE_DNS') && library.has('POD_IP') && library.has('PEERCACHE_SECRET')).toBe(true)
  })

  it('PEERCACHE_DNS names the headless Service and the port the container serves peers on', () => {
    expect(at(service!, 'spec', 'clusterIP')).toBe('None')
    const name = `${at(service!, 'metadata', 'name')}.${at(service!, 'metadata', 'namespace')}.svc.cluster.local`
    const port = at(container, 'ports', 0, 'containerPort')
    expect(discoveryFromEnv({ PEERCACHE_DNS: envValue('PEERCACHE_DNS') })).toEqual({ dns: name, port })
    expect(Number(envValue('PORT'))).toBe(port)
    expect(at(service!, 'spec', 'ports', 0, 'targetPort')).toBe(port)
    expect(at(service!, 'spec', 'selector')).toEqual(at(deployment!, 'spec', 'template', 'metadata', 'labels'))
  })

  it('self comes from POD_IP through the downward API', () => {
    expect(env.find((e) => e.name === 'POD_IP')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.podIP' } })
    const resolved = resolveDiscovery({ env: { PEERCACHE_DNS: envValue('PEERCACHE_DNS'), POD_IP: '10.1.2.3' } })
    expect(resolved?.self).toBe('http://10.1.2.3:8080')
  })

  it('probes hit the app, and the grace period covers preStop + drain + close', () => {
    const port = at(container, 'ports', 0, 'containerPort')
    expect(at(container, 'readinessProbe', 'httpGet')).toEqual({ path: '/healthz', port })
    expect(read('examples/app/server.mjs')).toContain("'/healthz'")
    const preStopS = at(container, 'lifecycle', 'preStop', 'sleep', 'seconds') as number
    const drainS = Number(envValue('DRAIN_MS')) / 1000
    const closeTimeoutS = 5 // PeercacheOptions.closeTimeout's default
    expect(at(deployment!, 'spec', 'template', 'spec', 'terminationGracePeriodSeconds')).toBeGreaterThanOrEqual(preStopS + drainS + closeTimeoutS)
    // The pod leaves the DNS answer when it starts terminating: the drain must outlast a discovery refresh.
    expect(drainS * 1000).toBeGreaterThan(5000)
  })
})

describe('examples/compose', () => {
  const [compose] = parseYaml(read('examples/compose/compose.yaml'))
  const app = at(compose!, 'services', 'app')
  const environment = at(app, 'environment') as Record<string, string>

  it('three replicas found through the service name', () => {
    const { library, app: appVars } = variablesRead()
    for (const name of Object.keys(environment)) expect(library.has(name) || appVars.has(name), name).toBe(true)
    expect(at(app, 'deploy', 'replicas')).toBe(3)
    const discovery = discoveryFromEnv(environment)
    expect(discovery).toEqual({ dns: 'app', port: Number(environment.PORT) })
    expect(Object.keys(at(compose!, 'services') as object)).toContain(discovery!.dns)
  })

  it('self comes from HOSTNAME, which Docker writes into /etc/hosts', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const { deriveSelf } = await import('../src/discovery/self.js')
    const dir = await mkdtemp(join(tmpdir(), 'peercache-compose-'))
    await writeFile(join(dir, 'hosts'), '127.0.0.1 localhost\n172.18.0.4 3f2c1a9b7e6d\n')
    expect(deriveSelf({ env: { ...environment, HOSTNAME: '3f2c1a9b7e6d' }, port: Number(environment.PORT), protocol: 'http', hostsFile: join(dir, 'hosts') })).toBe('http://172.18.0.4:8080')
  })

  it('the stop grace period covers the drain and close', () => {
    expect(Number(String(at(app, 'stop_grace_period')).replace(/s$/, ''))).toBeGreaterThanOrEqual(Number(environment.DRAIN_MS) / 1000 + 5)
  })
})

describe('the YAML subset parser', () => {
  it('reads mappings, sequences, scalars and documents, and refuses what it does not know', () => {
    expect(parseYaml('a: 1\nb:\n  - x: "y # z"\n    w: true\n  - 2\nc: [\"p\", \"q\"] # note\n---\nd: null\n')).toEqual([
      { a: 1, b: [{ x: 'y # z', w: true }, 2], c: ['p', 'q'] },
      { d: null },
    ])
    expect(() => parseYaml('a: &anchor 1\n')).toThrow(/unsupported/)
    expect(() => parseYaml('a: |\n  text\n')).toThrow(/unsupported/)
  })
})

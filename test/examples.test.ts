/**
 * The deployment examples (examples/kubernetes, examples/compose) are read
 * and checked against the code: every variable they set is one peercache or
 * the example app reads, every variable the app needs is set, every Secret
 * and Service they name is defined, PEERCACHE_DNS names the headless Service
 * and the container port, self derives from what the platform provides, the
 * grace period covers the drain, and the image holds every script they run.
 * No cluster is needed (test/integration/example-app.test.ts runs the app).
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

/** Every document of every YAML file in examples/kubernetes. */
function kubernetesDocuments(): Array<{ file: string; doc: YamlValue }> {
  return readdirSync(`${ROOT}examples/kubernetes`)
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) => parseYaml(read(`examples/kubernetes/${file}`)).map((doc) => ({ file, doc })))
}

/** The variables the example app cannot run without (it exits when they are missing). */
const REQUIRED_BY_APP = ['ORIGIN_URL']

/** The scripts examples/app/Dockerfile copies into the image. */
function imageScripts(): string[] {
  return [...read('examples/app/Dockerfile').matchAll(/^COPY (.+) \.\/$/gm)].flatMap((m) => m[1]!.split(' '))
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

  it('every file parses, and every Secret referenced is defined in the example', () => {
    const documents = kubernetesDocuments()
    expect(documents.map(({ file }) => file)).toEqual(expect.arrayContaining(['deployment.yaml', 'service.yaml', 'secret.yaml', 'origin.yaml']))
    const defined = documents.filter(({ doc }) => at(doc, 'kind') === 'Secret').map(({ doc }) => at(doc, 'metadata', 'name'))
    const referenced = env.flatMap((e) => {
      const ref = (e.valueFrom as { secretKeyRef?: { name: string; key: string } } | undefined)?.secretKeyRef
      return ref === undefined ? [] : [ref]
    })
    expect(referenced.length).toBeGreaterThan(0)
    for (const ref of referenced) {
      expect(defined, ref.name).toContain(ref.name)
      const secret = documents.find(({ doc }) => at(doc, 'kind') === 'Secret' && at(doc, 'metadata', 'name') === ref.name)!.doc
      expect(at(secret, 'stringData', ref.key), `${ref.name}.${ref.key}`).toBeTruthy()
    }
  })

  it('sets every variable the app needs; ORIGIN_URL names the origin Service of the example', () => {
    for (const name of REQUIRED_BY_APP) expect(env.some((e) => e.name === name), name).toBe(true)
    const origin = new URL(envValue('ORIGIN_URL')!)
    const services = kubernetesDocuments().filter(({ doc }) => at(doc, 'kind') === 'Service').map(({ doc }) => doc)
    const named = services.find((svc) => origin.hostname === `${at(svc, 'metadata', 'name')}.${at(svc, 'metadata', 'namespace')}.svc.cluster.local`)
    expect(named, origin.hostname).toBeDefined()
    expect(at(named!, 'spec', 'ports', 0, 'port')).toBe(Number(origin.port))
  })

  it('runs only scripts the image holds', () => {
    for (const { doc } of kubernetesDocuments().filter(({ doc }) => at(doc, 'kind') === 'Deployment')) {
      const command = at(doc, 'spec', 'template', 'spec', 'containers', 0, 'command') as string[]
      expect(imageScripts()).toContain(command[1])
    }
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

  it('runs a real origin, from the example image, that the app is pointed at', () => {
    const origin = at(compose!, 'services', 'origin')
    expect(at(origin, 'build')).toBe('../app')
    const command = at(origin, 'command') as string[]
    expect(imageScripts()).toContain(command[1])
    expect(imageScripts()).toContain((at(app, 'command') as string[])[1])
    const url = new URL(environment.ORIGIN_URL!)
    expect(url.hostname).toBe('origin')
    expect(url.port).toBe((at(origin, 'environment') as Record<string, string>).PORT)
    for (const name of REQUIRED_BY_APP) expect(environment[name], name).toBeTruthy()
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

describe('examples/app/Dockerfile', () => {
  it('installs the tarball `npm pack` makes (the package is not on the registry) and copies both scripts', () => {
    const { version } = JSON.parse(read('package.json')) as { version: string }
    const dockerfile = read('examples/app/Dockerfile')
    expect(dockerfile).toContain(`RUN npm install ./peercache-${version}.tgz`)
    expect(dockerfile).toContain('npm pack --pack-destination examples/app')
    expect(imageScripts()).toEqual(expect.arrayContaining([`peercache-${version}.tgz`, 'server.mjs', 'origin.mjs']))
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

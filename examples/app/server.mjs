// A minimal service embedding peercache, configured only through the
// environment, as the Kubernetes and Compose examples run it:
//   PEERCACHE_DNS=name:port   who the peers are (A records of a headless Service / Compose service)
//   POD_IP or HOSTNAME        who this process is (self), with the port of PEERCACHE_DNS
//   PEERCACHE_SELF, PEERCACHE_PEERS  or a static list instead of PEERCACHE_DNS
//   PEERCACHE_SECRET          shared secret signing peer requests
//   PORT                      the port of both the app and the peer endpoint
//   DRAIN_MS                  how long a terminating instance keeps serving its peers
//   ORIGIN_URL                where products come from: GET {ORIGIN_URL}/products/{id} (origin.mjs is a fake one)
import { createServer } from 'node:http'
import { NotFoundError, Peercache } from 'peercache'

const port = Number(process.env.PORT ?? 8080)
const origin = process.env.ORIGIN_URL
if (!origin) {
  console.error('ORIGIN_URL is not set: it names the origin products are loaded from, e.g. http://origin:8000')
  process.exit(2)
}

const cache = new Peercache({ deploy: { drainMs: Number(process.env.DRAIN_MS ?? 10000) } })
const products = cache.group({
  name: 'products',
  cacheBytes: 64 << 20,
  load: async (key, { signal }) => {
    const response = await fetch(`${origin}/products/${encodeURIComponent(key)}`, { signal })
    // Only a 200 is a value: a 404 is a product that does not exist, anything else a failed load (not cached).
    if (response.status === 404) throw new NotFoundError(`product ${key}`)
    if (!response.ok) throw new Error(`origin answered ${response.status} for product ${key}`)
    return new Uint8Array(await response.arrayBuffer())
  },
})

let terminating = false
const peers = cache.handler()
createServer((req, res) => {
  if (req.url === '/healthz') {
    res.statusCode = terminating ? 503 : 200
    return res.end()
  }
  if (req.url?.startsWith('/products/')) {
    products.get(decodeURIComponent(req.url.slice('/products/'.length))).then(
      (value) => {
        res.setHeader('content-type', 'application/json')
        res.end(value)
      },
      (err) => {
        res.statusCode = err instanceof NotFoundError ? 404 : 502
        res.end(err.message)
      },
    )
    return
  }
  peers(req, res)
}).listen(port, () => console.log(`listening on ${port}`))

process.on('SIGTERM', () => {
  terminating = true
  cache.close().then(() => process.exit(0))
})

// A minimal service embedding peercache, configured only through the
// environment, as the Kubernetes and Compose examples run it:
//   PEERCACHE_DNS=name:port   who the peers are (A records of a headless Service / Compose service)
//   POD_IP or HOSTNAME        who this process is (self), with the port of PEERCACHE_DNS
//   PEERCACHE_SECRET          shared secret signing peer requests
//   PORT                      the port of both the app and the peer endpoint
//   DRAIN_MS                  how long a terminating instance keeps serving its peers
import { createServer } from 'node:http'
import { Peercache } from 'peercache'

const port = Number(process.env.PORT ?? 8080)
const cache = new Peercache({ deploy: { drainMs: Number(process.env.DRAIN_MS ?? 10000) } })
const products = cache.group({
  name: 'products',
  cacheBytes: 64 << 20,
  load: async (key, { signal }) => {
    const response = await fetch(`${process.env.ORIGIN_URL}/products/${encodeURIComponent(key)}`, { signal })
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
      (value) => res.end(value),
      (err) => ((res.statusCode = 502), res.end(err.message)),
    )
    return
  }
  peers(req, res)
}).listen(port)

process.on('SIGTERM', () => {
  terminating = true
  cache.close().then(() => process.exit(0))
})

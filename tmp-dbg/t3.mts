import { createServer } from 'node:http'
import { Pool } from 'undici'
import { Peercache, serverUrl } from '/work/wt/transport/src/index.ts'
const s = createServer(); await new Promise<void>(r => s.listen(0, '127.0.0.1', r))
const url = serverUrl(s)
const c = new Peercache({ env: {}, self: url, peers: [url] })
c.group({ name: 'kv', cacheBytes: 1000, load: (k) => k })
s.on('request', c.handler())
await c.close()
const p = new Pool(url)
const t0 = Date.now()
for (const path of ['/_groupcache/kv/a', '/_groupcache/']) {
  const r = await p.request({ method: 'GET', path })
  console.log(path, r.statusCode, await r.body.text(), Date.now() - t0)
}
await p.close(); s.close()

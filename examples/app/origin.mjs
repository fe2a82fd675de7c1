// A stand-in origin for the examples: GET /products/{id} answers a JSON
// product for ids 1..1000 and 404 for any other id. Replace ORIGIN_URL with
// your real service. Each request is logged on stdout.
//   PORT  the port to serve on (8000)
import { createServer } from 'node:http'

const port = Number(process.env.PORT ?? 8000)
createServer((req, res) => {
  const match = /^\/products\/(\d+)$/.exec(req.url ?? '')
  const id = match ? Number(match[1]) : 0
  res.statusCode = id >= 1 && id <= 1000 ? 200 : 404
  console.log(`${req.method} ${req.url} ${res.statusCode}`)
  if (res.statusCode !== 200) return res.end('no such product\n')
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ id: String(id), name: `product ${id}`, price: (id * 7) % 100 }))
}).listen(port, () => console.log(`listening on ${port}`))

process.on('SIGTERM', () => process.exit(0))

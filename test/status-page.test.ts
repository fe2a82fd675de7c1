/**
 * status-page: what the status page shows for a 3-process cluster with one
 * peer down, read the way a person reads it. In a real browser when there
 * is one: Debian's chromium, headless, driven by playwright-core, loading
 * the page over HTTP from the statusHandler(), with a screenshot. On a
 * machine without /usr/bin/chromium the same assertions run on the same
 * HTML parsed by linkedom (an npm DOM), and the test's name says so.
 * PEERCACHE_TEST_BROWSER=chromium forces the browser (the test fails if it
 * is missing); PEERCACHE_TEST_BROWSER=dom forces linkedom.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseHTML } from 'linkedom'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatus } from '../src/index.js'
import { KEYS, startStatusCluster, type StatusCluster } from './helpers/status-cluster.js'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const forced = process.env.PEERCACHE_TEST_BROWSER
const mode: 'chromium' | 'linkedom' = forced === 'chromium' || (forced !== 'dom' && existsSync(CHROMIUM)) ? 'chromium' : 'linkedom'

/** PageView is what the page shows, read from its DOM (the same reader runs in chromium and on linkedom). */
interface PageView {
  title: string
  gatheredBy: string
  caption: string
  legend: Array<{ peer: string; down: boolean; text: string }>
  peers: Row[]
  groups: Row[]
  history: Row[]
  arcs: Array<{ peer: string; stroke: string; down: boolean; title: string }>
  bodyText: string
  html: string
}

interface Row {
  peer: string
  group: string | null
  cells: string[]
}

/** READ_PAGE is the DOM reader, as source text: chromium evaluates it in the page, linkedom through a Function. */
const READ_PAGE = `(document) => {
  const text = (el) => (el ? el.textContent : '').replace(/\\s+/g, ' ').trim()
  const rows = (id) => [...document.querySelectorAll('#' + id + ' tbody tr')].map((tr) => ({
    peer: tr.getAttribute('data-peer'), group: tr.getAttribute('data-group'), cells: [...tr.querySelectorAll('td')].map(text) }))
  return {
    title: document.title,
    gatheredBy: text(document.querySelector('#gathered-by')),
    caption: text(document.querySelector('svg.ring text.caption')),
    legend: [...document.querySelectorAll('.legend li')].map((li) => ({ peer: li.getAttribute('data-peer'), down: li.getAttribute('class') === 'down', text: text(li) })),
    peers: rows('peers'), groups: rows('groups'), history: rows('history'),
    arcs: [...document.querySelectorAll('svg.ring path.arc')].map((p) => ({
      peer: p.getAttribute('data-peer'), stroke: p.getAttribute('stroke'), down: p.getAttribute('class').includes('down'), title: text(p.querySelector('title')) })),
    bodyText: text(document.body),
    html: document.documentElement.outerHTML,
  }
}`

let running: StatusCluster
let expected: ClusterStatus
let view: PageView

/** readWithChromium loads the page in headless chromium over HTTP, reads it and takes a screenshot. */
async function readWithChromium(url: string): Promise<PageView> {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install -y chromium), and PEERCACHE_TEST_BROWSER=chromium asks for it`).toBe(true)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 })
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } })
    const response = await page.goto(url, { timeout: 20_000 })
    expect(response?.status()).toBe(200)
    const box = await page.locator('svg.ring').boundingBox()
    expect(box?.width).toBeGreaterThan(100)
    const screenshot = join(mkdtempSync(join(tmpdir(), 'peercache-status-')), 'status-page.png')
    await page.screenshot({ path: screenshot, fullPage: true })
    console.log(`status page screenshot: ${screenshot}`)
    const png = readFileSync(screenshot)
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG')
    expect(png.byteLength).toBeGreaterThan(10_000)
    return (await page.evaluate(`(${READ_PAGE})(document)`)) as PageView
  } finally {
    await browser.close()
  }
}

/** readWithDom fetches the page as a browser would ask for it and reads it with linkedom. */
async function readWithDom(url: string): Promise<PageView> {
  const response = await fetch(url, { headers: { accept: 'text/html,application/xhtml+xml' }, signal: AbortSignal.timeout(10_000) })
  expect(response.status).toBe(200)
  const { document } = parseHTML(await response.text())
  const read = new Function(`return ${READ_PAGE}`)() as (document: unknown) => PageView
  return read(document)
}

beforeAll(async () => {
  const why = forced === 'dom' ? 'PEERCACHE_TEST_BROWSER=dom' : `no ${CHROMIUM}`
  console.log(`status page test: ${mode === 'chromium' ? `real browser (${CHROMIUM}, headless)` : `${why}: the page's HTML read with linkedom instead`}`)
  running = await startStatusCluster()
  view = mode === 'chromium' ? await readWithChromium(running.statusUrl) : await readWithDom(running.statusUrl)
  const json = await fetch(running.statusUrl, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) })
  expected = (await json.json()) as ClusterStatus
}, 60_000)

afterAll(async () => {
  await running?.close()
})

describe(`the status page of a 3-process cluster with one peer down (${mode === 'chromium' ? 'headless chromium' : 'linkedom DOM, no chromium here'})`, () => {
  const urls = (): readonly string[] => running.cluster.urls
  const downUrl = (): string => urls()[running.down]!

  it('names the process that gathered it', () => {
    expect(view.title).toBe('peercache status')
    expect(view.gatheredBy).toBe(urls()[0])
  })

  it('lists every peer with its state: two up, the stopped one down (unreachable)', () => {
    expect(view.peers.map((row) => row.peer).sort()).toEqual([...urls()].sort())
    for (const row of view.peers) {
      expect(row.cells[0]).toBe(row.peer)
      expect(row.cells[1]).toBe(row.peer === downUrl() ? 'down (unreachable)' : 'up')
    }
    expect(view.peers.find((row) => row.peer === downUrl())!.cells.at(-1)).toMatch(/ECONNREFUSED/)
    expect(view.peers.find((row) => row.peer === urls()[0])!.cells[2]).toBe('self')
  })

  it('draws the ring: each peer\u2019s arcs in its own colour, the down peer\u2019s arcs marked', () => {
    expect(new Set(view.arcs.map((arc) => arc.peer))).toEqual(new Set(urls()))
    const strokes = new Map<string, Set<string>>()
    for (const arc of view.arcs) strokes.set(arc.peer, (strokes.get(arc.peer) ?? new Set()).add(arc.stroke))
    for (const colours of strokes.values()) expect(colours.size).toBe(1)
    expect(new Set([...strokes.values()].map((colours) => [...colours][0])).size).toBe(3)
    for (const arc of view.arcs) {
      expect(arc.down).toBe(arc.peer === downUrl())
      expect(arc.title).toBe(arc.peer === downUrl() ? `${arc.peer} (down)` : arc.peer)
    }
    expect(view.caption).toBe('3 peers · 1 down')
  })

  it('gives each peer\u2019s share of the ring in the legend, the shares adding up to the whole ring', () => {
    expect(view.legend.map((item) => [item.peer, item.down])).toEqual([...urls()].sort().map((url) => [url, url === downUrl()]))
    const shares = view.legend.map((item) => Number(/— ([\d.]+)% of the ring/.exec(item.text)![1]))
    for (const share of shares) expect(share).toBeGreaterThan(25)
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0)
  })

  it('shows each answering peer\u2019s group with the hit ratios of its JSON', () => {
    const answering = expected.members.filter((m) => m.state === 'ok')
    expect(view.groups.map((row) => [row.peer, row.group])).toEqual(answering.map((m) => [m.url, 'kv']))
    for (const row of view.groups) {
      const group = answering.find((m) => m.url === row.peer)!.status!.groups[0]!
      expect(row.cells[2]).toBe(String(group.gets))
      expect(row.cells[3]).toBe(`${(group.hitRatio! * 100).toFixed(1)}%`)
      expect(row.cells[6]).toBe(`${(group.hotShare! * 100).toFixed(1)}%`)
    }
  })

  it('shows the hit ratio of each of the last minutes', () => {
    expect(view.history.map((row) => row.peer)).toEqual(expected.members.filter((m) => m.state === 'ok').map((m) => m.url))
    for (const row of view.history) {
      const minutes = row.cells[3]!
      expect(minutes).toMatch(/^12:00 .+ · 12:01 .+ · 12:02 .+ · 12:03 .+$/)
      // The traffic grew each minute and every key was cached by then: full hits in the last full minute.
      expect(minutes).toContain('12:02 100.0% of 15')
    }
  })

  it('shows no key anywhere', () => {
    for (const key of KEYS) {
      expect(view.html).not.toContain(key)
      expect(view.bodyText).not.toContain(key)
    }
  })
})

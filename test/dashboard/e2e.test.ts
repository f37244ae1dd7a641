/**
 * The dashboard end to end in real headless Chromium (Debian's, never a
 * downloaded browser): real SDK calls through the proxy to the mock
 * upstream, stored in chDB, then every view checked against the collector
 * API and the mock's known usage and prices. Screenshots of each view go to
 * test-artifacts/dashboard/.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { chromium, type BrowserContext, type Locator, type Page, type Request } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatCount, formatPercent, formatUsd } from '../../dashboard/src/lib/format.ts'
import type { Recommendations, Span, Summary } from '../../dashboard/src/lib/types.ts'
import { expectedCost, expectedUsage, mockFaultHeaders, startMockUpstream, type MockUpstream } from '../helpers/mock-upstream.ts'
import { startTestTollgate, type TestTollgate } from '../helpers/tollgate.ts'

const CHROMIUM = '/usr/bin/chromium'
const ROOT = resolve(import.meta.dirname, '../..')
const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard')
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) console.warn(`dashboard e2e skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`)

/** Embedding calls on top of the chat calls, so the Requests view needs "Load more" (50 per page). */
const EMBEDDINGS = 45

let upstream: MockUpstream
let tg: TestTollgate
let fresh: TestTollgate
let context: BrowserContext
let page: Page
let userDataDir: string
const pageErrors: string[] = []


/** Builds dashboard/dist from the current sources, as `npm run build:dashboard` does. */
function buildDashboard(): void {
  // The CLI file sits next to package.json; "exports" does not list it.
  const vite = join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js')
  // NODE_ENV=production: vitest sets it to "test", which would make a dev build.
  const result = spawnSync(process.execPath, [vite, 'build', '--config', join(ROOT, 'dashboard/vite.config.ts'), '--logLevel', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    encoding: 'utf8',
  })
  if (result.status !== 0) throw new Error(`dashboard build failed:\n${result.stdout}\n${result.stderr}`)
}

/** Waits until the element's trimmed text equals `expected`, then asserts it (a clear diff on failure). */
async function expectText(locator: Locator, expected: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let text: string | null = null
  while (Date.now() < deadline) {
    text = (await locator.first().textContent({ timeout: timeoutMs }).catch(() => null))?.trim() ?? null
    if (text === expected) break
    await page.waitForTimeout(50)
  }
  expect(text).toBe(expected)
}

async function waitForCount(locator: Locator, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await locator.count()) !== count && Date.now() < deadline) await page.waitForTimeout(50)
  expect(await locator.count()).toBe(count)
}

async function screenshot(name: string): Promise<void> {
  // Let uPlot finish its resize pass so the picture shows the final layout.
  await page.waitForTimeout(150)
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
}

async function sendTraffic(): Promise<number> {
  const headers = (user: string, extra: Record<string, string> = {}) => ({ 'x-tollgate-user': user, ...extra })
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${tg.proxyUrl}/openai/v1`, maxRetries: 0 })
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${tg.proxyUrl}/anthropic`, maxRetries: 0 })
  const chat = { messages: [{ role: 'user' as const, content: 'hi' }] }
  const message = { max_tokens: 10, messages: [{ role: 'user' as const, content: 'hi' }] }

  for (let i = 0; i < 3; i++) {
    await openai.chat.completions.create({ model: 'gpt-4o', ...chat }, { headers: headers('alice', { 'x-tollgate-app': 'web', 'x-tollgate-property-feature': 'search' }) })
  }
  for (let i = 0; i < 2; i++) {
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', ...chat, stream: true, stream_options: { include_usage: true } }, { headers: headers('bob') })
    for await (const chunk of stream) void chunk
  }
  for (let i = 0; i < 2; i++) {
    await openai.chat.completions.create({ model: 'gpt-4o-mini', ...chat }, { headers: headers('alice', { 'x-tollgate-session': 's-1', 'x-tollgate-property-feature': 'chat' }) })
  }
  await openai.chat.completions.create({ model: 'gpt-4o', ...chat }, { headers: { ...headers('bob'), ...mockFaultHeaders({ status: 500 }) } }).catch(() => {})
  await openai.chat.completions.create({ model: 'gpt-4o-mini', ...chat }, { headers: { ...headers('bob'), ...mockFaultHeaders({ status: 429 }) } }).catch(() => {})
  for (let i = 0; i < 2; i++) {
    await anthropic.messages.create({ model: 'claude-sonnet-4-20250514', ...message }, { headers: headers('carol', { 'x-tollgate-app': 'batch' }) })
  }
  const stream = await anthropic.messages.create({ model: 'claude-sonnet-4-20250514', ...message, stream: true }, { headers: headers('carol') })
  for await (const event of stream) void event
  await anthropic.messages.create({ model: 'claude-sonnet-4-20250514', ...message }, { headers: mockFaultHeaders({ status: 500 }) }).catch(() => {})
  for (let i = 0; i < EMBEDDINGS; i += 15) {
    await Promise.all(Array.from({ length: Math.min(15, EMBEDDINGS - i) }, () => openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' })))
  }
  return 13 + EMBEDDINGS
}

describe.skipIf(!haveChromium)('dashboard in headless Chromium', () => {
  let total: number
  let summary: Summary

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    buildDashboard()
    upstream = await startMockUpstream()
    ;[tg, fresh] = await Promise.all([startTestTollgate({ upstreams: { openai: upstream.url, anthropic: upstream.url }, captureBodies: 'errors' }), startTestTollgate()])
    total = await sendTraffic()
    await tg.waitForSpans(total)
    summary = await tg.api<Summary>('/api/summary?from=now-24h')
    userDataDir = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'))
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 900 },
      colorScheme: 'light',
    })
    page = context.pages()[0] ?? (await context.newPage())
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (msg) => {
      // The last test answers /api/recommendations with a 404 on purpose.
      if (msg.type() === 'error' && !msg.location().url.includes('/api/recommendations')) pageErrors.push(msg.text())
    })
  }, 90_000)

  afterAll(async () => {
    await context?.close()
    await Promise.all([tg?.close(), fresh?.close(), upstream?.close()])
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true })
  })

  it('shows the API’s totals on the Overview, in light and dark', async () => {
    const expectedSpend =
      5 * expectedCost('chat', 'gpt-4o', 'openai') + 2 * expectedCost('chat', 'gpt-4o-mini', 'openai') + 3 * expectedCost('messages', 'claude-sonnet-4-20250514', 'anthropic') + EMBEDDINGS * expectedCost('embeddings', 'text-embedding-3-small', 'openai')
    const row = summary.rows[0]!
    expect(row).toMatchObject({ requests: total, errors: 3 })
    expect(row.cost_usd).toBeCloseTo(expectedSpend, 9)
    expect(row.tokens.input).toBe(7 * expectedUsage('chat').input_tokens! + 3 * expectedUsage('messages').input_tokens! + EMBEDDINGS * expectedUsage('embeddings').input_tokens!)

    // The embedded store runs one query at a time: the page sends its query calls one at a time too.
    let inFlight = 0
    let mostInFlight = 0
    let queryCalls = 0
    const isQuery = (r: Request) => new URL(r.url()).pathname.startsWith('/api/') && !r.url().includes('/api/health')
    const started = (r: Request) => {
      if (!isQuery(r)) return
      queryCalls++
      mostInFlight = Math.max(mostInFlight, ++inFlight)
    }
    const ended = (r: Request) => {
      if (isQuery(r)) inFlight--
    }
    page.on('request', started)
    page.on('requestfinished', ended)
    page.on('requestfailed', ended)
    await page.goto(`${tg.collectorUrl}/`)
    await expectText(page.getByTestId('stat-requests'), formatCount(total))
    page.off('request', started)
    page.off('requestfinished', ended)
    page.off('requestfailed', ended)
    expect(queryCalls, 'the Overview asks several questions').toBeGreaterThanOrEqual(4)
    expect(mostInFlight, 'at most one query call in flight').toBe(1)
    await expectText(page.getByTestId('stat-error_rate'), formatPercent(3 / total))
    await expectText(page.getByTestId('stat-spend'), formatUsd(expectedSpend))
    // To the cent, whatever the display precision.
    const shown = Number((await page.getByTestId('stat-spend').textContent())!.replace(/[$,]/g, ''))
    expect(Math.abs(shown - expectedSpend)).toBeLessThan(0.005)
    await expectText(page.getByTestId('stat-tokens'), formatCount(row.tokens.input + row.tokens.output))
    expect(await page.getByTestId('delta-requests').textContent()).toBe('new')
    for (const chart of ['chart-requests', 'chart-spend', 'chart-latency', 'chart-ttft']) {
      await page.getByTestId(chart).locator('canvas').waitFor()
      expect(await page.getByTestId(chart).getByText('No data in this range').count(), chart).toBe(0)
    }
    await expectText(page.getByTestId('health-proxy').locator('strong'), 'up')
    await expectText(page.getByTestId('health-store').locator('strong'), 'reachable')
    await screenshot('overview-light')

    await page.getByTestId('theme-toggle').click()
    expect(await page.locator('html').getAttribute('data-theme')).toBe('dark')
    await page.reload()
    await expectText(page.getByTestId('stat-requests'), formatCount(total))
    expect(await page.locator('html').getAttribute('data-theme'), 'the choice survives a reload').toBe('dark')
    await screenshot('overview-dark')
    await page.getByTestId('theme-toggle').click()
    expect(await page.locator('html').getAttribute('data-theme')).toBe('light')
  })

  it('lists models, sorts them, and opens a model’s detail', async () => {
    const byModel = await tg.api<Summary>('/api/summary?from=now-24h&group_by=model')
    await page.getByTestId('nav-models').click()
    const rows = page.getByTestId('models-table').locator('tbody tr')
    await waitForCount(rows, byModel.rows.length)
    expect(byModel.rows.length).toBe(4)
    // Sorted by spend, largest first, as the API orders them.
    const names = await rows.locator('td:first-child a').allTextContents()
    expect(names).toEqual(byModel.rows.map((r) => r.group!.model))
    const gpt4o = byModel.rows.find((r) => r.group!.model === 'gpt-4o')!
    const gptRow = page.getByTestId('models-table').locator('tbody tr', { has: page.getByRole('link', { name: 'gpt-4o', exact: true }) })
    expect((await gptRow.locator('td').nth(1).textContent())?.trim()).toBe(formatCount(gpt4o.requests))
    expect(gpt4o.requests).toBe(6)
    expect(await gptRow.locator('td').nth(12).textContent()).toContain(formatUsd(gpt4o.cost_usd))

    // Keyboard: focus the Requests header and press Enter → most requests first.
    await page.getByTestId('sort-requests').focus()
    await page.keyboard.press('Enter')
    expect(await page.getByTestId('sort-requests').locator('..').getAttribute('aria-sort')).toBe('descending')
    expect(await rows.first().locator('td:first-child a').textContent()).toBe('text-embedding-3-small')
    await page.getByTestId('sort-model').click()
    expect(await rows.locator('td:first-child a').allTextContents()).toEqual([...names].sort())
    await screenshot('models')

    await page.getByRole('link', { name: 'gpt-4o', exact: true }).click()
    await page.getByTestId('page-model-detail').waitFor()
    expect(page.url()).toContain('detail_model=gpt-4o')
    await expectText(page.getByTestId('stat-requests'), '6')
    await expectText(page.getByTestId('stat-error_rate'), formatPercent(1 / 6))
    const errorRow = page.getByTestId('errors-by-type').locator('tbody tr')
    await waitForCount(errorRow, 1)
    expect(await errorRow.locator('td').allTextContents()).toEqual(['http_5xx', '1', formatPercent(1 / 6)])
    expect(await page.getByTestId('errors-by-status').locator('tbody tr td').first().textContent()).toBe('500')
    await page.getByTestId('chart-latency').locator('canvas').waitFor()
    await screenshot('model-detail')
  })

  it('splits spend, with cache savings and a monthly projection', async () => {
    const byModel = await tg.api<Summary>('/api/summary?from=now-24h&group_by=model')
    const savings = byModel.rows.reduce((sum, r) => sum + (r.cache_savings_usd ?? 0), 0)
    expect(savings).toBeGreaterThan(0)
    await page.getByTestId('nav-spend').click()
    await expectText(page.getByTestId('spend-total'), formatUsd(summary.rows[0]!.cost_usd))
    await expectText(page.getByTestId('spend-cache-savings'), formatUsd(savings))
    // The 24 h preset: the projection is 30 × the range's spend.
    await expectText(page.getByTestId('spend-projected'), formatUsd(summary.rows[0]!.cost_usd * 30))
    const users = page.getByTestId('top-users').locator('tbody tr')
    await waitForCount(users, 4)
    expect(await users.first().locator('td').first().textContent()).toContain('carol')

    await page.getByTestId('spend-by-user').click()
    await waitForCount(page.getByTestId('spend-table').locator('tbody tr'), 4)
    await page.getByTestId('spend-by-property').click()
    await page.getByLabel('Property key').fill('feature')
    await page.getByLabel('Property key').press('Enter')
    const props = page.getByTestId('spend-table').locator('tbody tr')
    await waitForCount(props, 2)
    expect((await props.locator('td:first-child').allTextContents()).sort()).toEqual(['chat', 'search'])
    await page.getByTestId('chart-spend-split').locator('canvas').waitFor()
    await screenshot('spend-by-property')
    await page.getByTestId('spend-by-model').click()
    await waitForCount(page.getByTestId('spend-table').locator('tbody tr'), 4)
    await screenshot('spend')
  })

  it('explores requests: paging, filters, a span’s detail, another range', async () => {
    await page.getByTestId('nav-requests').click()
    const rows = page.getByTestId('span-table').locator('tbody tr')
    await waitForCount(rows, 50)
    await page.getByTestId('load-more').click()
    await waitForCount(rows, total)
    expect(await page.getByTestId('load-more').count()).toBe(0)

    // Filter with the keyboard: choose a status, Enter in a text field applies.
    await page.getByLabel('Status').selectOption('error')
    await page.getByLabel('Provider').fill('openai')
    await page.getByLabel('Provider').press('Enter')
    await waitForCount(rows, 2)
    expect(page.url()).toContain('status=error')
    expect(page.url()).toContain('provider=openai')
    const errors = await tg.spans({ status: 'error', provider: 'openai' })
    expect(errors).toHaveLength(2)

    await rows.first().locator('td:first-child a').click()
    const detail = page.getByTestId('span-detail')
    await detail.waitFor()
    const newest: Span = errors[0]!
    expect(page.url()).toContain(`span=${newest.span_id}`)
    await expectText(detail.locator('[data-field="span_id"]'), newest.span_id)
    await expectText(detail.locator('[data-field="error_type"]'), newest.error_type)
    await expectText(detail.locator('[data-field="status_code"]'), String(newest.status_code))
    // Bodies of failed calls are captured (captureBodies: 'errors') and shown, redacted.
    await detail.getByText('rate_limit_exceeded').waitFor()
    expect(await detail.textContent()).toContain('"model": "gpt-4o-mini"')
    await screenshot('requests-span-detail')
    // The panel scrolls on its own; show its end, with the bodies.
    await detail.getByRole('heading', { name: 'Bodies' }).scrollIntoViewIfNeeded()
    await detail.screenshot({ path: join(ARTIFACTS, 'requests-span-bodies.png') })

    // A successful call's span (opened by URL, not in the filtered list) says how to capture bodies.
    const ok = (await tg.spans({ status: 'ok', model: 'gpt-4o' }))[0]!
    await page.goto(`${tg.collectorUrl}/${new URL(page.url()).hash.replace(/span=[^&]+/, `span=${ok.span_id}`)}`)
    await expectText(detail.locator('[data-field="span_id"]'), ok.span_id)
    expect(await page.getByTestId('bodies-not-captured').textContent()).toContain('TOLLGATE_CAPTURE_BODIES=errors')
    await page.goBack()
    await expectText(detail.locator('[data-field="span_id"]'), newest.span_id)

    // The URL carries the state: a reload reopens the same filtered list and span.
    await page.reload()
    await page.getByTestId('span-detail').waitFor()
    await waitForCount(rows, 2)

    await page.getByTestId('range-1h').click()
    expect(page.url()).toContain('range=1h')
    await waitForCount(rows, 2)
    await page.getByRole('button', { name: 'Clear' }).click()
    await waitForCount(rows, 50)
    await page.getByTestId('nav-overview').click()
    await expectText(page.getByTestId('stat-requests'), formatCount(total))
    expect(await page.getByTestId('delta-requests').textContent()).toBe('new')
  })

  it('shows the collector’s recommendations and opens the requests behind one', async () => {
    // The page is on the 1 h range now (the previous test switched it).
    const res = await fetch(`${tg.collectorUrl}/api/recommendations?from=now-1h`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Recommendations
    expect(body.recommendations.length).toBeGreaterThan(0)
    await page.getByTestId('nav-recommendations').click()
    const cards = page.getByTestId('recommendation')
    await waitForCount(cards, body.recommendations.length)
    const titles = await cards.locator('h3').allTextContents()
    expect([...titles].sort()).toEqual(body.recommendations.map((r) => r.title).sort())
    await screenshot('recommendations')

    const first = body.recommendations.find((r) => r.title === titles[0])!
    const cited = await tg.spans(Object.fromEntries(new URLSearchParams(first.spans_query)))
    await cards.first().getByRole('link', { name: /Show the requests behind this/ }).click()
    await page.getByTestId('page-requests').waitFor()
    await waitForCount(page.getByTestId('span-table').locator('tbody tr'), Math.min(50, cited.length))
  })

  it('tells a new user how to send the first request', async () => {
    await page.goto(`${fresh.collectorUrl}/`)
    const onboarding = page.getByTestId('onboarding')
    await onboarding.waitFor()
    const text = await onboarding.textContent()
    expect(text).toContain(`baseURL: '${fresh.proxyUrl}/openai/v1'`)
    expect(text).toContain(`baseURL: '${fresh.proxyUrl}/anthropic'`)
    expect(text).toContain(`curl ${fresh.proxyUrl}/openai/v1/chat/completions`)
    expect(text).toContain(`export HTTPS_PROXY=${fresh.proxyUrl}`)
    expect(text).toContain('npx tollgate ca trust-help')
    await screenshot('empty-state')

    await page.getByTestId('nav-recommendations').click()
    const empty = page.getByTestId('recommendations-empty')
    await empty.waitFor()
    expect(await empty.textContent()).toContain('Nothing to recommend')
    await screenshot('recommendations-empty')
    // A collector without the endpoint (404) gets an explanation, not an error.
    await page.route('**/api/recommendations?*', (route) => route.fulfill({ status: 404, json: { error: { code: 'TG_ERR_NOT_FOUND', message: 'no route' } } }))
    await page.getByRole('button', { name: 'Refresh now' }).click()
    await page.getByText('does not serve recommendations yet').waitFor()
    await page.unroute('**/api/recommendations?*')
    expect(pageErrors).toEqual([])
  })
})

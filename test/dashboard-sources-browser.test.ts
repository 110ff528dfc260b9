// The dashboard over a fleet of 1,000 sources, in Chromium: the fleet view ranks them hottest
// first as the API does, the source picker finds one by name from the keyboard, and the source's
// own view shows its numbers, live.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { createTestApp } from './support/app.js';
import { launchChromium, watchContentSecurityPolicy } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, serve } from './support/sse.js';

const TOKEN = 'dashboard-sources-token-0123';
/** The hot few, hottest first, far apart whatever a percentile's error. */
const HOT = [
  { name: 'db-primary', load: 50, labels: { tier: 'db', region: 'eu' } },
  { name: 'api-gateway', load: 40, labels: { tier: 'edge', region: 'eu' } },
  { name: 'search-7', load: 30, labels: { tier: 'search', region: 'us' } },
  { name: 'queue-2', load: 20, labels: { tier: 'queue', region: 'us' } },
  { name: 'cache-1', load: 10, labels: { tier: 'cache', region: 'eu' } },
];
/** And a quiet many: pod-0001 to pod-0995, each under 6. */
const PODS = 995;
const SAMPLES_PER_SOURCE = 12;

let db: TestDatabase;
let served: ServedApp;
let browser: Browser;

/**
 * A sample every 5 minutes over the last 55 minutes for each source, so the live hour holds all
 * of them for the test's few minutes: the page's numbers and the API's over all time agree.
 */
async function seedFleet(): Promise<void> {
  const pods = Array.from({ length: PODS }, (_, i) => ({
    name: `pod-${String(i + 1).padStart(4, '0')}`,
    // A permutation of the pods, so that the coolest are not simply the last by name.
    load: 0.5 + ((i * 389) % PODS) / 200,
    labels: { tier: 'web', zone: `z${i % 3}` },
  }));
  const fleet = [...HOT, ...pods];
  await db.prisma.source.createMany({ data: fleet.map(({ name, labels }) => ({ name, labels })) });
  const ids = new Map(
    (await db.prisma.source.findMany({ select: { id: true, name: true } })).map((s) => [s.name, s.id]),
  );
  const now = Math.floor(Date.now() / 1000) * 1000;
  await db.prisma.metric.createMany({
    data: fleet.flatMap(({ name, load }) =>
      Array.from({ length: SAMPLES_PER_SOURCE }, (_, k) => ({
        sourceId: ids.get(name) as number,
        timestamp: new Date(now - k * 300_000),
        cpuLoad: load * (1 + 0.02 * Math.sin(k)),
        concurrency: Math.round(load * 4) + (k % 3),
      })),
    ),
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  await seedFleet();
  served = await serve(createTestApp(db, { INGEST_TOKEN: TOKEN, LIVE_THROTTLE_MS: '200' }));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await db?.drop();
});

async function graphql<Data>(query: string, variables: Record<string, unknown> = {}): Promise<Data> {
  const response = await fetch(`${served.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const answer = (await response.json()) as { data: Data; errors?: { message: string }[] };
  expect(answer.errors).toBeUndefined();
  return answer.data;
}

interface SummaryAnswer {
  count: number;
  cpuLoad: { p50: number | null; p95: number | null; p99: number | null };
  concurrency: { p95: number | null };
}

const SUMMARY = 'count cpuLoad { p50 p95 p99 } concurrency { p95 }';

/** The tiles as the page writes them from `summary`. */
function tilesOf(summary: SummaryAnswer): Record<string, string> {
  const fixed = (value: number | null, digits: number) => (value === null ? '–' : value.toFixed(digits));
  return {
    count: summary.count.toLocaleString('en'),
    p50: fixed(summary.cpuLoad.p50, 2),
    p95: fixed(summary.cpuLoad.p95, 2),
    p99: fixed(summary.cpuLoad.p99, 2),
    'concurrency-p95': fixed(summary.concurrency.p95, 1),
  };
}

function tilesOnPage(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() =>
    Object.fromEntries(
      ['count', 'p50', 'p95', 'p99', 'concurrency-p95'].map((id) => [
        id,
        document.getElementById(id)?.textContent ?? '',
      ]),
    ),
  );
}

/** Pixels of a canvas that differ from its first pixel: 0 for a blank one. */
function drawnPixels(page: Page, selector: string): Promise<number> {
  return page.evaluate((selector) => {
    const canvas = document.querySelector<HTMLCanvasElement>(selector);
    const context = canvas?.getContext('2d');
    if (!canvas || !context || canvas.width === 0) return 0;
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let drawn = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] !== data[3] || data[i] !== data[0]) drawn++;
    }
    return drawn;
  }, selector);
}

/** The names in the fleet table, top to bottom. */
function tableNames(page: Page): Promise<string[]> {
  return page.locator('#hottest-rows th[scope="row"] a').allTextContents();
}

interface FleetAnswer {
  sourceSummaries: {
    source: { name: string };
    summary: { count: number; cpuLoad: { p95: number | null } };
  }[];
}

/** The page's own next Fleet query's answer, as the API sent it. */
async function nextFleetAnswer(page: Page, action: () => Promise<unknown>): Promise<FleetAnswer> {
  const answered = page.waitForResponse(
    (response: Response) =>
      response.url().endsWith('/graphql') && (response.request().postData() ?? '').includes('query Fleet'),
  );
  await action();
  return ((await (await answered).json()) as { data: FleetAnswer }).data;
}

describe('the dashboard over a fleet of 1,000 sources', () => {
  it('ranks the fleet hottest first, finds a source from the keyboard, and shows its own numbers live', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    const violations = await watchContentSecurityPolicy(page);

    // ---- The fleet: every source in the strip, the hottest in the table, in the API's order.
    const fleet = await nextFleetAnswer(page, () => page.goto(`${served.url}/dashboard`));
    const ranked = fleet.sourceSummaries.filter((entry) => entry.summary.count > 0);
    expect(ranked).toHaveLength(HOT.length + PODS);
    await page.waitForFunction(() => document.body.dataset.fleet === '1000', undefined, { timeout: 15_000 });
    expect(await page.locator('#fleet').isVisible()).toBe(true);
    expect(await page.locator('#fleet-caption').textContent()).toContain('1,000');
    expect(await drawnPixels(page, '#fleet-strip')).toBeGreaterThan(2000);

    const names = await tableNames(page);
    expect(names).toHaveLength(20);
    expect(names).toEqual(ranked.slice(0, 20).map((entry) => entry.source.name));
    expect(names.slice(0, HOT.length)).toEqual(HOT.map((source) => source.name));
    const p95s = (await page.locator('#hottest-rows tr td:nth-child(5)').allTextContents()).map(Number);
    expect(p95s).toEqual([...p95s].sort((a, b) => b - a));
    // The ranking the page shows is the API's own, asked for independently.
    const hottest = await graphql<{ sourceSummaries: { source: { name: string } }[] }>(
      '{ sourceSummaries(first: 5) { source { name } } }',
    );
    expect(hottest.sourceSummaries.map((entry) => entry.source.name)).toEqual(names.slice(0, 5));
    // The rows' sparklines are drawn, the hottest's and the coolest's.
    expect(await drawnPixels(page, '#hottest-rows tr:first-child canvas')).toBeGreaterThan(50);
    expect(await drawnPixels(page, '#hottest-rows tr:last-child canvas')).toBeGreaterThan(20);
    // The fleet-wide tiles are over every source.
    await page.waitForFunction(
      (count) => document.getElementById('count')?.textContent === count,
      ((HOT.length + PODS) * SAMPLES_PER_SOURCE).toLocaleString('en'),
    );

    // More rows, from the table's own control.
    await nextFleetAnswer(page, () => page.getByLabel('The hottest').selectOption('30'));
    await page.waitForFunction(() => document.querySelectorAll('#hottest-rows tr').length === 30);

    const screenshots = join(projectRoot, 'test-results');
    await mkdir(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'dashboard-fleet.png'), fullPage: true });

    // ---- The picker: a prefix lists the first ten and says how many more; the keyboard picks.
    const picker = page.getByRole('combobox', { name: 'Source' });
    await picker.focus();
    await page.keyboard.type('pod-07');
    const options = page.locator('#source-options [role="option"]:not([aria-disabled])');
    await options.first().waitFor();
    expect(await options.allTextContents()).toEqual(
      Array.from(
        { length: 10 },
        (_, i) => `pod-07${String(i).padStart(2, '0')}tier=web zone=z${(699 + i) % 3}`,
      ),
    );
    expect(await page.locator('#source-options .note').textContent()).toContain('90 more');
    await page.keyboard.type('7');
    await page.waitForFunction(() =>
      document.querySelector('#source-options [role="option"]')?.textContent?.startsWith('pod-0770'),
    );
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await picker.getAttribute('aria-activedescendant')).toBe('source-option-2');
    await page.keyboard.press('Enter');

    // ---- The source's view: its name, labels, and its numbers, which are the API's.
    const chosen = 'pod-0772';
    await page.waitForURL(`${served.url}/dashboard?source=${chosen}`);
    expect(await picker.inputValue()).toBe(chosen);
    expect(await page.locator('#source-options').isHidden()).toBe(true);
    expect(await page.locator('#source-name').textContent()).toBe(chosen);
    await page.waitForFunction(() =>
      document.getElementById('source-details')?.textContent?.includes('seen'),
    );
    expect(await page.locator('#source-details').textContent()).toContain('tier=web zone=z0');
    expect(await page.locator('#fleet').isHidden()).toBe(true);
    const own = await graphql<{ metricsSummary: SummaryAnswer }>(
      `query($source: String!) { metricsSummary(source: $source) { ${SUMMARY} } }`,
      { source: chosen },
    );
    expect(own.metricsSummary.count).toBe(SAMPLES_PER_SOURCE);
    await page.waitForFunction(
      (count) => document.getElementById('count')?.textContent === count,
      String(SAMPLES_PER_SOURCE),
      { timeout: 15_000 },
    );
    expect(await tilesOnPage(page)).toEqual(tilesOf(own.metricsSummary));
    await page.waitForFunction(() => Number(document.body.dataset.buckets) > 0);
    expect(await drawnPixels(page, '#cpu-chart canvas')).toBeGreaterThan(500);

    // Live, for this source only: its sample shows, another source's does not.
    const ingest = (source: string) =>
      graphql<{ ingestMetrics: { inserted: number } }>(
        'mutation($s: [MetricInput!]!) { ingestMetrics(samples: $s) { inserted } }',
        { s: [{ source, timestamp: new Date().toISOString(), cpuLoad: 1, concurrency: 3 }] },
      );
    expect((await ingest('db-primary')).ingestMetrics.inserted).toBe(1);
    expect((await ingest(chosen)).ingestMetrics.inserted).toBe(1);
    await page.waitForFunction(
      (count) => document.getElementById('count')?.textContent === count,
      String(SAMPLES_PER_SOURCE + 1),
      { timeout: 5000 },
    );
    await page.waitForTimeout(1000);
    expect(await page.locator('#count').textContent()).toBe(String(SAMPLES_PER_SOURCE + 1));
    await page.screenshot({ path: join(screenshots, 'dashboard-source.png'), fullPage: true });

    // ---- Back to the fleet, and Back again to the source: the address is the view.
    await page.getByRole('button', { name: 'All sources' }).click();
    await page.waitForURL(`${served.url}/dashboard`);
    await page.waitForFunction(() => Number(document.body.dataset.fleet) > 0);
    expect(await page.locator('#fleet').isVisible()).toBe(true);
    expect(await picker.inputValue()).toBe('');
    await page.goBack();
    await page.waitForFunction(() => document.getElementById('source-name')?.textContent === 'pod-0772');
    expect(await page.locator('#fleet').isHidden()).toBe(true);

    // A row of the table leads to its source too.
    await page.goBack();
    await page.locator('#hottest-rows a', { hasText: 'search-7' }).click();
    await page.waitForURL(`${served.url}/dashboard?source=search-7`);
    await page.waitForFunction(
      (count) => document.getElementById('count')?.textContent === count,
      String(SAMPLES_PER_SOURCE),
    );

    expect(await violations()).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 120_000);

  it('opens a source named in the address, and says when no source has that name', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${served.url}/dashboard?source=db-primary`);
    await page.waitForFunction(() => document.getElementById('count')?.textContent !== '–', undefined, {
      timeout: 15_000,
    });
    const own = await graphql<{ metricsSummary: SummaryAnswer }>(
      `{ metricsSummary(source: "db-primary") { ${SUMMARY} } }`,
    );
    expect(await tilesOnPage(page)).toEqual(tilesOf(own.metricsSummary));
    expect(await page.title()).toContain('db-primary');

    // A window where no source has samples: the fleet says so.
    await page.getByRole('button', { name: 'All sources' }).click();
    await page.getByLabel('Window', { exact: true }).selectOption('custom');
    await page.getByLabel('From (UTC)').fill('2020-01-01T00:00:00');
    await page.getByLabel('To (UTC)').fill('2020-01-02T00:00:00');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForFunction(() =>
      document.getElementById('fleet-caption')?.textContent?.startsWith('no source of 1,001'),
    );
    expect(await page.locator('#hottest-rows tr').count()).toBe(0);
    expect(await page.locator('#count').textContent()).toBe('0');
    expect(await page.getByRole('alert').isHidden()).toBe(true);

    await page.goto(`${served.url}/dashboard?source=no-such-source`);
    await page.getByRole('alert').waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.getByRole('alert').textContent()).toContain('No source is named “no-such-source”');
    expect(pageErrors).toEqual([]);
  });
});

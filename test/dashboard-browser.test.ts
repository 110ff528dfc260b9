import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { connectPostgres, type PostgresConnection } from '../src/database/connection.js';
import { createLogger } from '../src/observability/logger.js';
import { projectRoot } from '../src/paths.js';
import { createTestApp } from './support/app.js';
import { launchChromium, watchContentSecurityPolicy } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, serve } from './support/sse.js';
import { TcpProxy } from './support/tcp-proxy.js';

const TOKEN = 'dashboard-test-token-0123';

let db: TestDatabase;
let proxy: TcpProxy;
let connection: PostgresConnection;
let served: ServedApp;
let browser: Browser;

/** Samples every 10 s over the last two hours, ending now, with a visible daily shape. */
async function seedRecentSamples(): Promise<void> {
  const now = Math.floor(Date.now() / 10_000) * 10_000;
  const rows = Array.from({ length: 720 }, (_, i) => ({
    timestamp: new Date(now - (720 - i) * 10_000),
    cpuLoad: 1 + Math.sin(i / 40),
    concurrency: 10 + (i % 17),
  }));
  await db.prisma.metric.createMany({ data: rows });
}

beforeAll(async () => {
  db = await createTestDatabase();
  await seedRecentSamples();
  // The app reaches PostgreSQL through a proxy the test can stop: "the database is down".
  const target = new URL(db.url);
  proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.start();
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  const logger = createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' });
  connection = connectPostgres(proxied.toString(), { poolSize: 4, connectTimeoutMs: 1000, logger });
  served = await serve(
    createTestApp(
      { ...connection, url: proxied.toString() },
      { INGEST_TOKEN: TOKEN, LIVE_THROTTLE_MS: '200', DATABASE_CONNECT_TIMEOUT_MS: '1000' },
      { logger },
    ),
  );
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await connection?.close();
  await proxy?.stop();
  await db?.drop();
});

/** Pixels of a chart's canvas that differ from its first pixel: 0 for a blank chart. */
function drawnPixels(page: Page, chart: string): Promise<number> {
  return page.evaluate((selector) => {
    const canvas = document.querySelector<HTMLCanvasElement>(`${selector} canvas`);
    const context = canvas?.getContext('2d');
    if (!canvas || !context) return 0;
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let drawn = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (
        data[i] !== data[0] ||
        data[i + 1] !== data[1] ||
        data[i + 2] !== data[2] ||
        data[i + 3] !== data[3]
      ) {
        drawn++;
      }
    }
    return drawn;
  }, chart);
}

describe('the dashboard in Chromium', () => {
  it('draws live charts from real data, switches windows, follows new samples, and survives an outage', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const consoleErrors: string[] = [];
    const foreign: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    page.on('request', (request) => {
      if (new URL(request.url()).hostname !== '127.0.0.1') foreign.push(request.url());
    });
    const violations = await watchContentSecurityPolicy(page);

    const response = await page.goto(served.url);
    expect(response?.url()).toBe(`${served.url}/dashboard`);
    await page.getByLabel('Window', { exact: true }).waitFor();
    // The last hour, live: a sample every 10 s until the seeding, so up to 360 of them, fewer by
    // one for every 10 s the setup took.
    await page.waitForFunction(
      () => {
        const count = Number(document.getElementById('count')?.textContent);
        return count >= 300 && count <= 360;
      },
      undefined,
      { timeout: 15_000 },
    );
    await page.waitForFunction(() => Number(document.body.dataset.buckets) > 0);
    expect(await drawnPixels(page, '#cpu-chart')).toBeGreaterThan(500);
    expect(await drawnPixels(page, '#concurrency-chart')).toBeGreaterThan(500);
    expect(await page.locator('#mode').textContent()).toContain('Live');

    // Another window, chosen with the keyboard.
    await page.getByLabel('Window', { exact: true }).focus();
    await page.keyboard.press('ArrowDown');
    await page.getByLabel('Window', { exact: true }).selectOption('86400');
    await page.waitForFunction(() => document.getElementById('count')?.textContent === '720', undefined, {
      timeout: 10_000,
    });
    // One source (every sample in `default`): the page as before sources, no fleet and no picker.
    expect(await page.locator('#fleet').isHidden()).toBe(true);
    expect(await page.locator('#source-bar').isHidden()).toBe(true);

    // A sample ingested now shows within 2 s.
    const ingested = Date.now();
    const answer = await fetch(`${served.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        query: 'mutation($s: [MetricInput!]!) { ingestMetrics(samples: $s) { inserted } }',
        variables: { s: [{ timestamp: new Date().toISOString(), cpuLoad: 3, concurrency: 40 }] },
      }),
    });
    expect(
      ((await answer.json()) as { data: { ingestMetrics: { inserted: number } } }).data.ingestMetrics,
    ).toEqual({
      inserted: 1,
    });
    await page.waitForFunction(() => document.getElementById('count')?.textContent === '721', undefined, {
      timeout: 2000,
    });
    expect(Date.now() - ingested).toBeLessThan(2500);

    const screenshots = join(projectRoot, 'test-results');
    await mkdir(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'dashboard.png'), fullPage: true });

    // The database goes away: the page says so, and recovers by itself when it is back.
    await proxy.stop();
    await page.getByRole('alert').waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.getByRole('alert').textContent()).toContain('database is unavailable');
    await proxy.start();
    await page.getByRole('alert').waitFor({ state: 'hidden', timeout: 15_000 });
    await page.waitForFunction(() => document.body.dataset.health === 'up');
    expect(await drawnPixels(page, '#cpu-chart')).toBeGreaterThan(500);

    // The dark theme, from its labelled toggle.
    await page.getByRole('button', { name: 'Dark theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await page.screenshot({ path: join(screenshots, 'dashboard-dark.png'), fullPage: true });

    expect(foreign).toEqual([]);
    // The page runs under its self-only policy (no inline script or style) without a violation.
    expect(await violations()).toEqual([]);
    // The outage's failed requests are the only console errors a browser may print.
    expect(consoleErrors.filter((text) => !/503|Failed to load resource|ERR_/.test(text))).toEqual([]);
  }, 90_000);

  it('transfers less than 150 KB compressed for the whole page', async () => {
    const page = await browser.newPage();
    let bytes = 0;
    const client = await page.context().newCDPSession(page);
    await client.send('Network.enable');
    client.on('Network.loadingFinished', (event: { encodedDataLength: number }) => {
      bytes += event.encodedDataLength;
    });
    await page.goto(`${served.url}/dashboard`);
    await page.waitForFunction(() => document.getElementById('count')?.textContent !== '–');
    await page.waitForTimeout(500);
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThan(150 * 1024);
  });
});

/** Texts the page draws on its canvases (uPlot's axis labels), recorded from its start. */
async function recordCanvasText(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const drawn: string[] = [];
    (window as unknown as { drawnText: string[] }).drawnText = drawn;
    const fillText = CanvasRenderingContext2D.prototype.fillText;
    CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
      drawn.push(text);
      return fillText.call(this, text, ...rest);
    };
  });
  return () => page.evaluate(() => (window as unknown as { drawnText: string[] }).drawnText);
}

describe('the dashboard in a browser far from UTC', () => {
  it('draws its axes and legend in UTC, as its range is labelled', async () => {
    // UTC-7 or -8, so every local hour differs from the UTC one.
    const context = await browser.newContext({ timezoneId: 'America/Los_Angeles' });
    const page = await context.newPage();
    const drawnText = await recordCanvasText(page);
    await page.goto(`${served.url}/dashboard`);
    await page.waitForFunction(() => Number(document.body.dataset.buckets) > 0, undefined, {
      timeout: 15_000,
    });
    const now = Date.now();
    expect(await page.evaluate(() => new Date(Date.UTC(2026, 0, 1)).getHours())).not.toBe(0);

    // The legend's time under the pointer, in the chart's middle: within the last hour, in UTC.
    const plot = page.locator('#cpu-chart .u-over');
    await plot.hover();
    const legend =
      (await page.locator('#cpu-chart .u-legend .u-series').first().locator('.u-value').textContent()) ?? '';
    expect(legend).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    const shown = Date.parse(`${legend.replace(' ', 'T').replace(' UTC', '')}Z`);
    expect(shown).toBeGreaterThan(now - 3600_000 - 120_000);
    expect(shown).toBeLessThan(now + 120_000);

    // The axis' time labels (uPlot's "3:10pm"), UTC hours only: the window's last hour in UTC.
    const hours = (await drawnText())
      .map((text) => /^(\d{1,2}):\d\d(am|pm)$/.exec(text))
      .filter((match) => match !== null)
      .map((match) => (Number(match[1]) % 12) + (match[2] === 'pm' ? 12 : 0));
    expect(hours.length).toBeGreaterThan(2);
    const utcHours = [now - 3600_000, now].map((ms) => new Date(ms).getUTCHours());
    for (const hour of hours) expect(utcHours).toContain(hour);
    await context.close();
  });
});

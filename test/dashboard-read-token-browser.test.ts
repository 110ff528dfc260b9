import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { launchChromium, watchContentSecurityPolicy } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, serve } from './support/sse.js';

const READ_TOKEN = 'dashboard-read-token-0123456789';
const ROWS = 120;

let db: TestDatabase;
let served: ServedApp;
let browser: Browser;

beforeAll(async () => {
  db = await createTestDatabase();
  // A sample a minute over the last two hours: the last hour, live, holds about 60 of them.
  const now = Date.now();
  await db.prisma.metric.createMany({
    data: Array.from({ length: ROWS }, (_, i) => ({
      timestamp: new Date(now - (ROWS - i) * 60_000),
      cpuLoad: 1 + (i % 7) / 10,
      concurrency: i % 13,
    })),
  });
  served = await serve(createTestApp(db, { READ_TOKEN, LIVE_THROTTLE_MS: '200' }));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await db?.drop();
});

describe('the dashboard with READ_TOKEN set', () => {
  it('loads, asks for the token, refuses a wrong one, then shows live data and keeps the token for the session', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const violations = await watchContentSecurityPolicy(page);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));

    const response = await page.goto(`${served.url}/dashboard`);
    expect(response?.status()).toBe(200);
    const tokenField = page.getByLabel('Read token', { exact: true });
    await tokenField.waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.locator('#token-message').textContent()).toContain('READ_TOKEN');
    expect(await page.locator('#count').textContent()).toBe('–');

    await tokenField.fill('a-wrong-token-of-some-length');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.waitForFunction(
      () => document.getElementById('token-message')?.textContent?.includes('refused'),
      undefined,
      { timeout: 15_000 },
    );
    expect(await tokenField.isVisible()).toBe(true);

    await tokenField.fill(READ_TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.waitForFunction(
      () => {
        const count = Number(document.getElementById('count')?.textContent);
        return count >= 55 && count <= 60;
      },
      undefined,
      { timeout: 15_000 },
    );
    await page.waitForFunction(() => Number(document.body.dataset.buckets) > 0);
    expect(await tokenField.isVisible()).toBe(false);
    expect(await page.evaluate(() => sessionStorage.getItem('metrics-api-read-token'))).toBe(READ_TOKEN);

    // Within the session, a reload asks nothing.
    await page.reload();
    await page.waitForFunction(() => Number(document.getElementById('count')?.textContent) >= 55, undefined, {
      timeout: 15_000,
    });
    expect(await tokenField.isVisible()).toBe(false);

    expect(pageErrors).toEqual([]);
    expect(await violations()).toEqual([]);
    await context.close();
  }, 90_000);
});

import { createServer, type Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { launchChromium, watchContentSecurityPolicy } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let server: Server;
let browser: Browser;
let url: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: Array.from({ length: 30 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2026, 10, 26, 0, i)),
      cpuLoad: i / 10,
      concurrency: i,
    })),
  });
  server = createServer(createTestApp(db));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  await db?.drop();
});

describe('GraphiQL in a real browser', () => {
  it('opens with the example query and runs it against the API', async () => {
    const page = await browser.newPage();
    const failedRequests: string[] = [];
    page.on('requestfailed', (request) => failedRequests.push(request.url()));
    const violations = await watchContentSecurityPolicy(page);
    const answer = await page.goto(url);
    // Served under its own policy: every script it runs is the page's one inline script, by hash.
    expect(answer?.headers()['content-security-policy']).toMatch(/script-src 'sha256-[\w+/=]+'/);
    await page.getByText('query FirstSamples').first().waitFor({ timeout: 20_000 });
    const response = page.waitForResponse(
      (candidate) =>
        candidate.url() === url &&
        candidate.request().method() === 'POST' &&
        (candidate.request().postData() ?? '').includes('FirstSamples'),
    );
    await page.locator('.graphiql-execute-button').click();
    const body = await (await response).json();
    expect(body.errors).toBeUndefined();
    expect(body.data.metrics.totalCount).toBe(30);
    expect(body.data.metricsSummary.count).toBe(30);
    // The editor renders with non-breaking spaces; compare text with whitespace collapsed.
    const shown = async () =>
      ((await page.locator('.result-window').textContent()) ?? '').replace(/\s+/g, ' ');
    await expect.poll(shown, { timeout: 20_000 }).toContain('"totalCount": 30');
    expect(await shown()).toContain('"cpuLoad": 0.1');
    expect(failedRequests).toEqual([]);
    expect(await violations()).toEqual([]);
    await page.screenshot({ path: 'test-results/graphiql.png' });
  });
});

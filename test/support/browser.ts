import { type Browser, chromium, type Page } from 'playwright-core';

/** Debian's Chromium, never a downloaded browser; the flags keep it off the (closed) network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

declare global {
  interface Window {
    cspViolations?: string[];
  }
}

/**
 * Collects the Content-Security-Policy violations of `page` from its next navigation on: the
 * `securitypolicyviolation` events of its documents and Chromium's console reports (which also
 * cover what no event reaches). Call before `goto`; the result reads them so far.
 */
export async function watchContentSecurityPolicy(page: Page): Promise<() => Promise<string[]>> {
  const reported: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) reported.push(message.text());
  });
  await page.addInitScript(() => {
    const violations: string[] = [];
    window.cspViolations = violations;
    document.addEventListener('securitypolicyviolation', (event) =>
      violations.push(`${event.violatedDirective} ${event.blockedURI}`),
    );
  });
  return async () => [...reported, ...(await page.evaluate(() => window.cspViolations ?? []))];
}

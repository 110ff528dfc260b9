import { createHash } from 'node:crypto';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { Plugin } from 'graphql-yoga';
import { DASHBOARD_PATH } from './dashboard.js';
import { pageSecurityHeaders, SELF_ONLY_POLICY } from './security-headers.js';
import { prepareStaticContent, type StaticContent, staticResponse } from './static-content.js';

/** The contents of a page's inline `<script>` elements (no attributes), as the HTML parser splits them. */
function inlineScripts(html: string): string[] {
  const scripts: string[] = [];
  for (let open = html.indexOf('<script>'); open !== -1; ) {
    const start = open + '<script>'.length;
    const end = html.indexOf('</script>', start);
    if (end === -1) break;
    scripts.push(html.slice(start, end));
    open = html.indexOf('<script>', end);
  }
  return scripts;
}

/**
 * GraphiQL's policy: its one inline script by hash, so no other script runs; its editor's workers
 * from the blob: URLs that script makes; inline styles, which the editor injects as it runs.
 */
function graphiqlPolicy(html: string): string {
  const hashes = inlineScripts(html).map(
    (script) => `'sha256-${createHash('sha256').update(script).digest('base64')}'`,
  );
  return [
    "default-src 'self'",
    `script-src ${hashes.join(' ')}`,
    "style-src 'self' 'unsafe-inline'",
    'worker-src blob:',
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** GraphiQL, rendered, hashed and compressed once: it is 9 MB, and rendering it cost ~150 ms a request. */
async function graphiqlPage(options: { title: string; defaultQuery: string }): Promise<StaticContent> {
  const html = renderGraphiQL(options);
  return prepareStaticContent(Buffer.from(html), {
    'content-type': 'text/html; charset=utf-8',
    ...pageSecurityHeaders(graphiqlPolicy(html)),
  });
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (character) => `&#${character.charCodeAt(0)};`);

/** What a browser opening the endpoint sees where GraphiQL is off. */
function graphiqlOffPage(endpoint: string): Response {
  const path = escapeHtml(endpoint);
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>GraphiQL is off</title><link rel="icon" href="data:,"></head>
<body>
<h1>GraphiQL is off on this server</h1>
<p>GraphiQL is off by default when <code>NODE_ENV=production</code>; set <code>GRAPHIQL=true</code> to serve it here.</p>
<p>The GraphQL API itself is on: send queries to <code>POST ${path}</code> as <code>application/json</code>
(<code>{"query": "{ metricsSummary { count } }"}</code>).</p>
<p><a href="${DASHBOARD_PATH}">The dashboard</a> · <a href="/">the list of endpoints</a> (as JSON)</p>
</body>
</html>
`;
  return new Response(html, {
    status: 404,
    headers: { 'content-type': 'text/html; charset=utf-8', ...pageSecurityHeaders(SELF_ONLY_POLICY) },
  });
}

/**
 * A browser's GET of the GraphQL endpoint (Yoga's rule: GET accepting text/html): GraphiQL when
 * `enabled`, else a 404 page saying it is off and how to turn it on (Yoga would answer an empty 406).
 * The page is made on its first request, not at start: most instances never serve it.
 */
export function useGraphiQLPage(options: {
  enabled: boolean;
  endpoint: string;
  title: string;
  defaultQuery: string;
}): Plugin {
  const { enabled, endpoint, title, defaultQuery } = options;
  let page: Promise<StaticContent> | undefined;
  return {
    onRequest({ request, url, endResponse }) {
      if (request.method !== 'GET' || !request.headers.get('accept')?.includes('text/html')) return;
      if (url.pathname !== endpoint && url.pathname !== `${endpoint}/`) return;
      if (!enabled) {
        endResponse(graphiqlOffPage(endpoint));
        return;
      }
      page ??= graphiqlPage({ title, defaultQuery });
      return page.then((content) => endResponse(staticResponse(request, content)));
    },
  };
}

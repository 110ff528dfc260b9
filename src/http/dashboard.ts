import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { projectRoot } from '../paths.js';

export const DASHBOARD_PATH = '/dashboard';

interface Asset {
  type: string;
  body: Uint8Array<ArrayBuffer>;
  gzipped: Uint8Array<ArrayBuffer>;
}

const require = createRequire(import.meta.url);
const publicDir = join(projectRoot, 'src/dashboard/public');

/** The page and its assets: the project's own files and the dependencies' browser builds, no CDN. */
const SOURCES: Record<string, { file: string; type: string }> = {
  [DASHBOARD_PATH]: { file: join(publicDir, 'index.html'), type: 'text/html; charset=utf-8' },
  [`${DASHBOARD_PATH}/dashboard.js`]: {
    file: join(publicDir, 'dashboard.js'),
    type: 'text/javascript; charset=utf-8',
  },
  [`${DASHBOARD_PATH}/dashboard.css`]: {
    file: join(publicDir, 'dashboard.css'),
    type: 'text/css; charset=utf-8',
  },
  [`${DASHBOARD_PATH}/uPlot.iife.min.js`]: {
    file: require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  [`${DASHBOARD_PATH}/uPlot.min.css`]: {
    file: require.resolve('uplot/dist/uPlot.min.css'),
    type: 'text/css; charset=utf-8',
  },
  // graphql-sse exports no path to its browser build: it sits next to its entry point.
  [`${DASHBOARD_PATH}/graphql-sse.min.js`]: {
    file: join(dirname(require.resolve('graphql-sse')), '../umd/graphql-sse.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

let assets: Map<string, Asset> | undefined;

/** Read and compressed once, on the first request for any of them. */
function loadAssets(): Map<string, Asset> {
  assets ??= new Map(
    Object.entries(SOURCES).map(([path, { file, type }]) => {
      const body = new Uint8Array(readFileSync(file));
      return [path, { type, body, gzipped: new Uint8Array(gzipSync(body, { level: 9 })) }];
    }),
  );
  return assets;
}

/** The paths the dashboard answers. */
export const dashboardPaths: readonly string[] = Object.keys(SOURCES);

/** One file of the dashboard, gzipped for clients that accept it. */
export function dashboardAsset(request: Request, path: string): Response {
  const asset = loadAssets().get(path);
  if (!asset) throw new Error(`${path} is not a dashboard asset`);
  const gzip = /\bgzip\b/.test(request.headers.get('accept-encoding') ?? '');
  const headers: Record<string, string> = {
    'content-type': asset.type,
    'cache-control': 'no-cache',
    vary: 'accept-encoding',
    // Everything comes from this origin; the page talks only to it.
    'content-security-policy':
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
  };
  if (gzip) headers['content-encoding'] = 'gzip';
  return new Response(gzip ? asset.gzipped : asset.body, { headers });
}

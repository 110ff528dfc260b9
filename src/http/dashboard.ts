import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { projectRoot } from '../paths.js';
import { pageSecurityHeaders, SELF_ONLY_POLICY } from './security-headers.js';
import { prepareStaticContent, type StaticContent, staticResponse } from './static-content.js';

export const DASHBOARD_PATH = '/dashboard';

const require = createRequire(import.meta.url);
const publicDir = join(projectRoot, 'src/dashboard/public');

/** The page and its assets: the project's own files and the dependencies' browser builds, no CDN. */
const SOURCES: Record<string, { file: string; type: string }> = {
  [DASHBOARD_PATH]: { file: join(publicDir, 'index.html'), type: 'text/html; charset=utf-8' },
  // The page's ES modules: dashboard.js imports the others.
  ...Object.fromEntries(
    ['dashboard.js', 'fleet.js', 'source-picker.js', 'page.js'].map((module) => [
      `${DASHBOARD_PATH}/${module}`,
      { file: join(publicDir, module), type: 'text/javascript; charset=utf-8' },
    ]),
  ),
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

let assets: Promise<Map<string, StaticContent>> | undefined;

/** Read and compressed once, on the first request for any of them. */
function loadAssets(): Promise<Map<string, StaticContent>> {
  assets ??= Promise.all(
    Object.entries(SOURCES).map(async ([path, { file, type }]) => {
      const page = path === DASHBOARD_PATH ? pageSecurityHeaders(SELF_ONLY_POLICY) : {};
      const headers = { 'content-type': type, ...page };
      return [path, await prepareStaticContent(readFileSync(file), headers)] as const;
    }),
  ).then((entries) => new Map(entries));
  return assets;
}

/** The paths the dashboard answers. */
export const dashboardPaths: readonly string[] = Object.keys(SOURCES);

/** One file of the dashboard, compressed and cacheable (see staticResponse). */
export async function dashboardAsset(request: Request, path: string): Promise<Response> {
  const asset = (await loadAssets()).get(path);
  if (!asset) throw new Error(`${path} is not a dashboard asset`);
  return staticResponse(request, asset);
}

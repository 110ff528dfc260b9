import { type App, createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { TestDatabase } from './database.js';

/** The real application on a test database, with `env` overriding the configuration. */
export function createTestApp(
  db: Pick<TestDatabase, 'url' | 'prisma'>,
  env: Record<string, string> = {},
): App {
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: db.url, ...env });
  return createApp({ config, prisma: db.prisma, logger: createLogger(config) });
}

export interface GraphQLResponse<Data = Record<string, unknown>> {
  status: number;
  data?: Data | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; [key: string]: unknown } }[];
}

/** POSTs one GraphQL operation through `app.fetch`, as a client would over HTTP. */
export async function graphql<Data = Record<string, unknown>>(
  app: App,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Data>> {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as object) };
}

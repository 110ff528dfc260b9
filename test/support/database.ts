import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { connectPostgres, type PostgresConnection } from '../../src/database/connection.js';
import { createLogger } from '../../src/observability/logger.js';
import { databaseUrl, withMaintenanceClient } from './postgres.js';

export interface TestDatabase extends PostgresConnection {
  name: string;
  url: string;
  drop(): Promise<void>;
}

const silent = createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' });

/** A connection as the service makes one (pool, Prisma client, outage tracking), logging nothing. */
export function connectTest(url: string, poolSize = 4): PostgresConnection {
  return connectPostgres(url, { poolSize, connectTimeoutMs: 2000, logger: silent });
}

/** A fresh, migrated database of its own; drop it in `afterAll`. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('testServerUrl');
  const name = `metrics_test_${inject('runId')}_${randomBytes(6).toString('hex')}`;
  await withMaintenanceClient(serverUrl, (client) =>
    client.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`),
  );
  const url = databaseUrl(serverUrl, name);
  const connection = connectTest(url);
  return {
    ...connection,
    name,
    url,
    async drop() {
      await connection.close();
      await withMaintenanceClient(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      );
    },
  };
}

/** An empty database on the test server, not migrated (for migration tests). */
export async function createEmptyDatabase(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const serverUrl = inject('testServerUrl');
  const name = `metrics_test_${inject('runId')}_${randomBytes(6).toString('hex')}`;
  await withMaintenanceClient(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: databaseUrl(serverUrl, name),
    drop: () =>
      withMaintenanceClient(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      ).then(() => undefined),
  };
}

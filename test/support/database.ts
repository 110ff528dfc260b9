import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createPrismaClient, type PrismaClient } from '../../src/database.js';
import { databaseUrl, withMaintenanceClient } from './postgres.js';

export interface TestDatabase {
  name: string;
  url: string;
  prisma: PrismaClient;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own; drop it in `afterAll`. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('testServerUrl');
  const name = `metrics_test_${inject('runId')}_${randomBytes(6).toString('hex')}`;
  await withMaintenanceClient(serverUrl, (client) =>
    client.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`),
  );
  const url = databaseUrl(serverUrl, name);
  const prisma = createPrismaClient(url, 4);
  return {
    name,
    url,
    prisma,
    async drop() {
      await prisma.$disconnect();
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

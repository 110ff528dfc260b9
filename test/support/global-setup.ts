import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { migrateDeploy } from '../../src/database/migrations.js';
import { WITHOUT_DOTENV } from './environment.js';
import { databaseUrl, testServerUrl, withMaintenanceClient } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testServerUrl: string;
    templateDatabase: string;
    runId: string;
  }
}

/**
 * Migrates one template database with the real `prisma migrate deploy`; each test file then
 * clones it (CREATE DATABASE ... TEMPLATE), which takes milliseconds instead of a migration run.
 */
export default async function setup(project: TestProject) {
  const serverUrl = testServerUrl();
  const runId = randomBytes(4).toString('hex');
  const templateDatabase = `metrics_test_${runId}_template`;
  await withMaintenanceClient(serverUrl, (client) => client.query(`CREATE DATABASE "${templateDatabase}"`));
  // migrateDeploy's Prisma CLI inherits this process's environment; the developer's .env stays
  // out of it. Only for the call: the test workers forked later must not inherit the setting, as a
  // test of .env itself runs the server without it.
  const dotenvPath = process.env.DOTENV_CONFIG_PATH;
  process.env.DOTENV_CONFIG_PATH = WITHOUT_DOTENV.DOTENV_CONFIG_PATH;
  try {
    await migrateDeploy(databaseUrl(serverUrl, templateDatabase));
  } finally {
    if (dotenvPath === undefined) delete process.env.DOTENV_CONFIG_PATH;
    else process.env.DOTENV_CONFIG_PATH = dotenvPath;
  }
  project.provide('testServerUrl', serverUrl);
  project.provide('templateDatabase', templateDatabase);
  project.provide('runId', runId);

  return async () => {
    await withMaintenanceClient(serverUrl, async (client) => {
      const { rows } = await client.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname LIKE $1',
        [`metrics_test_${runId}_%`],
      );
      for (const { datname } of rows) {
        await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      }
    });
  };
}

import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.js';

/** The ConfigError `parseConfig(env)` throws; fails the test if it throws nothing else. */
function configErrorFor(env: NodeJS.ProcessEnv): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}

describe('parseConfig', () => {
  it('defaults every variable, and runs on the embedded database without DATABASE_URL', () => {
    expect(parseConfig({})).toMatchObject({
      env: 'development',
      databaseUrl: undefined,
      host: '127.0.0.1',
      port: 4000,
      databasePoolSize: 10,
      logLevel: 'info',
      embedded: { dataDir: '.data/pglite', sampleDataFile: 'data/sample-metrics.json' },
      pagination: { defaultPageSize: 100, maxPageSize: 1000 },
      maxSeriesBuckets: 10_000,
      aggregateCacheBytes: 32 * 1024 * 1024,
      rest: { defaultLimit: 1000, maxLimit: 10_000 },
      readinessTimeoutMs: 1000,
      shutdownTimeoutMs: 10_000,
      ingest: { token: undefined, maxSamplesPerRequest: 10_000, batchSize: 5000 },
      exactPercentileMaxRows: 1_000_000,
      rollups: { minuteRetentionSeconds: 365 * 86_400, hourRetentionSeconds: undefined },
      maintenanceIntervalMs: 3_600_000,
    });
  });

  it("reads the rollups' retention and the maintenance interval as durations", () => {
    expect(
      parseConfig({
        EXACT_PERCENTILE_MAX_ROWS: '5000',
        MINUTE_ROLLUP_RETENTION: '90d',
        HOUR_ROLLUP_RETENTION: '730d',
        MAINTENANCE_INTERVAL: '15m',
      }),
    ).toMatchObject({
      exactPercentileMaxRows: 5000,
      rollups: { minuteRetentionSeconds: 90 * 86_400, hourRetentionSeconds: 730 * 86_400 },
      maintenanceIntervalMs: 900_000,
    });
    expect(
      configErrorFor({ MINUTE_ROLLUP_RETENTION: 'a year', MAINTENANCE_INTERVAL: '0s' }).problems,
    ).toEqual([
      'MAINTENANCE_INTERVAL: must be a duration such as 90d, 1h or 30m, got "0s"',
      'MINUTE_ROLLUP_RETENTION: must be a duration such as 90d, 1h or 30m, got "a year"',
    ]);
    expect(configErrorFor({ HOUR_ROLLUP_RETENTION: '30d' }).problems).toEqual([
      'HOUR_ROLLUP_RETENTION: must not be shorter than MINUTE_ROLLUP_RETENTION',
    ]);
  });

  it('reads and converts the variables it is given', () => {
    const config = parseConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://app:secret@db.internal:6543/metrics',
      HOST: '0.0.0.0',
      PORT: '8080',
      DATABASE_POOL_SIZE: '25',
      LOG_LEVEL: 'warn',
      EMBEDDED_DATA_DIR: '/var/lib/metrics',
      INGEST_TOKEN: 'a-token-of-sixteen+',
    });
    expect(config).toMatchObject({
      env: 'production',
      databaseUrl: 'postgres://app:secret@db.internal:6543/metrics',
      host: '0.0.0.0',
      port: 8080,
      databasePoolSize: 25,
      logLevel: 'warn',
      embedded: { dataDir: '/var/lib/metrics' },
      ingest: { token: 'a-token-of-sixteen+' },
    });
    expect(parseConfig({ DATABASE_URL: 'postgresql://postgres@127.0.0.1/metrics' }).databaseUrl).toBe(
      'postgresql://postgres@127.0.0.1/metrics',
    );
  });

  it('reports every invalid variable at once, in one ConfigError', () => {
    const error = configErrorFor({
      NODE_ENV: 'staging',
      DATABASE_URL: 'mysql://root@127.0.0.1/metrics',
      PORT: 'eighty',
      DATABASE_POOL_SIZE: '0',
      LOG_LEVEL: 'loud',
      MAX_PAGE_SIZE: '1.5',
      INGEST_TOKEN: 'short',
    });
    const invalid = [
      'NODE_ENV',
      'DATABASE_URL',
      'PORT',
      'DATABASE_POOL_SIZE',
      'LOG_LEVEL',
      'MAX_PAGE_SIZE',
      'INGEST_TOKEN',
    ];
    expect(error.problems).toHaveLength(invalid.length);
    for (const variable of invalid) {
      const problem = error.problems.find((line) => line.startsWith(`${variable}: `));
      expect(problem, `${variable} in ${JSON.stringify(error.problems)}`).toBeDefined();
      expect(error.message).toContain(problem);
    }
    expect(error.problems.find((line) => line.startsWith('DATABASE_URL'))).toContain('postgres://');
    expect(error.name).toBe('ConfigError');
    expect(error.message.split('\n')[0]).toBe('Invalid configuration:');
  });

  it.each([
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['DATABASE_POOL_SIZE', '501'],
    ['DATABASE_URL', 'not a url'],
  ])('rejects %s=%s', (variable, value) => {
    const error = configErrorFor({ [variable]: value });
    expect(error.problems).toEqual([expect.stringMatching(new RegExp(`^${variable}: `))]);
  });

  it('reads from DATABASE_READ_URL and listens on DATABASE_LISTEN_URL, by default the primary, and only with DATABASE_URL', () => {
    const primary = 'postgresql://app@pgbouncer:6432/metrics';
    expect(parseConfig({ DATABASE_URL: primary })).toMatchObject({
      databaseReadUrl: undefined,
      databaseListenUrl: primary,
    });
    expect(
      parseConfig({
        DATABASE_URL: primary,
        DATABASE_READ_URL: 'postgresql://app@standby:5432/metrics',
        DATABASE_LISTEN_URL: 'postgresql://app@primary:5432/metrics',
      }),
    ).toMatchObject({
      databaseReadUrl: 'postgresql://app@standby:5432/metrics',
      databaseListenUrl: 'postgresql://app@primary:5432/metrics',
    });
    const error = configErrorFor({
      DATABASE_READ_URL: 'postgresql://app@standby:5432/metrics',
      DATABASE_LISTEN_URL: 'postgresql://app@primary:5432/metrics',
    });
    expect(error.problems).toEqual([
      'DATABASE_READ_URL: needs DATABASE_URL: the embedded database has no replicas',
      'DATABASE_LISTEN_URL: needs DATABASE_URL: the embedded database listens in its own process',
    ]);
  });

  it('rejects a default page size above the maximum', () => {
    const error = configErrorFor({ DEFAULT_PAGE_SIZE: '500', MAX_PAGE_SIZE: '100' });
    expect(error.problems).toEqual(['DEFAULT_PAGE_SIZE: must not exceed MAX_PAGE_SIZE']);
  });

  it('reports the cross-variable checks together with unrelated problems', () => {
    const error = configErrorFor({
      DEFAULT_PAGE_SIZE: '500',
      MAX_PAGE_SIZE: '100',
      REST_DEFAULT_LIMIT: '20',
      REST_MAX_LIMIT: '10',
      PORT: 'x',
    });
    expect(error.problems).toEqual([
      expect.stringMatching(/^PORT: /),
      'DEFAULT_PAGE_SIZE: must not exceed MAX_PAGE_SIZE',
      'REST_DEFAULT_LIMIT: must not exceed REST_MAX_LIMIT',
    ]);
  });

  it('treats a value of only whitespace as unset', () => {
    expect(parseConfig({ DATABASE_POOL_SIZE: ' ', PORT: '\t' })).toMatchObject({
      databasePoolSize: 10,
      port: 4000,
    });
  });

  it('treats empty strings as unset', () => {
    const config = parseConfig({
      DATABASE_URL: '',
      HOST: '',
      PORT: '',
      DATABASE_POOL_SIZE: '',
      LOG_LEVEL: '',
      EMBEDDED_DATA_DIR: '',
      INGEST_TOKEN: '',
    });
    expect(config).toMatchObject({
      databaseUrl: undefined,
      host: '127.0.0.1',
      port: 4000,
      databasePoolSize: 10,
      logLevel: 'info',
      embedded: { dataDir: '.data/pglite' },
      ingest: { token: undefined },
    });
  });
});

describe('partitions and retention', () => {
  it('defaults to day partitions, no retention and an hourly maintenance pass', () => {
    expect(parseConfig({})).toMatchObject({
      partitions: { sizeSeconds: 86_400, retentionSeconds: undefined },
      maintenanceIntervalMs: 3_600_000,
    });
  });

  it('reads durations', () => {
    expect(
      parseConfig({ PARTITION_SIZE: '6h', RETENTION: '90d', MAINTENANCE_INTERVAL: '15m' }),
    ).toMatchObject({
      partitions: { sizeSeconds: 6 * 3600, retentionSeconds: 90 * 86_400 },
      maintenanceIntervalMs: 15 * 60_000,
    });
  });

  it('refuses a partition size that does not divide a day into whole hours, and malformed durations', () => {
    expect(
      configErrorFor({ PARTITION_SIZE: '7h', RETENTION: 'forever', MAINTENANCE_INTERVAL: '0s' }).problems,
    ).toEqual([
      'PARTITION_SIZE: must be a whole number of hours that divides a day: 1h, 2h, 3h, 4h, 6h, 8h, 12h or 1d',
      'RETENTION: must be a duration such as 90d, 1h or 30m, got "forever"',
      'MAINTENANCE_INTERVAL: must be a duration such as 90d, 1h or 30m, got "0s"',
    ]);
    expect(configErrorFor({ PARTITION_SIZE: '2d' }).problems).toEqual([
      'PARTITION_SIZE: must be a whole number of hours that divides a day: 1h, 2h, 3h, 4h, 6h, 8h, 12h or 1d',
    ]);
  });
});

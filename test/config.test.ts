import { readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
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
      ingest: { token: undefined, maxSamplesPerRequest: 10_000, batchSize: 30_000 },
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
      METRICS_PORT: '9464',
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
      observability: { metricsPort: 9464 },
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

/** A token of the 16 characters every token needs at least. */
const TOKEN = 'a-token-of-16-ch';

describe('production hardening', () => {
  it('defaults every new variable outside production: GraphiQL and introspection on, reads open, no cross-origin access', () => {
    expect(parseConfig({})).toMatchObject({
      graphiql: true,
      introspection: true,
      migrateOnStart: false,
      http: { corsOrigins: [], readTokens: undefined, clientAddressHeader: undefined },
      limits: { maxCost: 50_000, maxNodeIds: 100, expensiveOperations: 8 },
      live: {
        streamReservationTtlMs: 10_000,
        maxStreamReservations: 1000,
        maxStreamReservationsPerClient: 16,
        maxCatchUpReads: 2,
      },
      ingest: { maxFutureSeconds: 86_400 },
      maintenance: { lockTimeoutMs: 2000, statementTimeoutMs: 60_000, maxPartitionsPerPass: 48 },
      observability: { metricsPort: undefined, metricsToken: undefined, maxOperationNames: 200 },
    });
  });

  it('keeps two connections of the pool from expensive work by default, and at least one slot for it', () => {
    expect(parseConfig({ DATABASE_POOL_SIZE: '4' }).limits.expensiveOperations).toBe(2);
    expect(parseConfig({ DATABASE_POOL_SIZE: '2' }).limits.expensiveOperations).toBe(1);
    expect(parseConfig({ DATABASE_POOL_SIZE: '1' }).limits.expensiveOperations).toBe(1);
  });

  it('turns GraphiQL and introspection off in production unless asked for, and keeps the other defaults', () => {
    const production = { NODE_ENV: 'production', METRICS_TOKEN: TOKEN };
    expect(parseConfig(production)).toMatchObject({
      env: 'production',
      graphiql: false,
      introspection: false,
      migrateOnStart: false,
      http: { corsOrigins: [], readTokens: undefined },
      limits: { maxCost: 50_000, maxNodeIds: 100, expensiveOperations: 8 },
      ingest: { maxFutureSeconds: 86_400 },
      observability: { metricsToken: TOKEN, maxOperationNames: 200 },
    });
    expect(parseConfig({ ...production, GRAPHIQL: 'true', INTROSPECTION: 'true' })).toMatchObject({
      graphiql: true,
      introspection: true,
    });
    expect(parseConfig({ GRAPHIQL: 'false', INTROSPECTION: 'false' })).toMatchObject({
      graphiql: false,
      introspection: false,
    });
  });

  it('refuses an open /metrics in production unless METRICS_TOKEN, METRICS_PORT or METRICS_PUBLIC=true', () => {
    const refusal =
      'METRICS_TOKEN: in production /metrics needs METRICS_TOKEN (scrapes send it as a bearer token) or METRICS_PORT (a port of its own, kept off the public network); METRICS_PUBLIC=true serves it to anyone';
    expect(configErrorFor({ NODE_ENV: 'production' }).problems).toEqual([refusal]);
    expect(configErrorFor({ NODE_ENV: 'production', METRICS_PUBLIC: 'false' }).problems).toEqual([refusal]);
    expect(parseConfig({ NODE_ENV: 'production', METRICS_TOKEN: TOKEN }).observability.metricsToken).toBe(
      TOKEN,
    );
    expect(parseConfig({ NODE_ENV: 'production', METRICS_PORT: '9464' }).observability.metricsPort).toBe(
      9464,
    );
    expect(parseConfig({ NODE_ENV: 'production', METRICS_PUBLIC: 'true' }).env).toBe('production');
    // Outside production /metrics may stay open; a bad token is reported alone, not as a refusal too.
    expect(parseConfig({ NODE_ENV: 'development' }).observability.metricsToken).toBeUndefined();
    expect(configErrorFor({ NODE_ENV: 'production', METRICS_TOKEN: 'short' }).problems).toEqual([
      'METRICS_TOKEN: must be at least 16 characters',
    ]);
  });

  it('reads MAX_FUTURE as a duration, with 0 and off meaning any time', () => {
    expect(parseConfig({ MAX_FUTURE: '12h' }).ingest.maxFutureSeconds).toBe(43_200);
    expect(parseConfig({ MAX_FUTURE: '2d' }).ingest.maxFutureSeconds).toBe(172_800);
    expect(parseConfig({ MAX_FUTURE: '90' }).ingest.maxFutureSeconds).toBe(90);
    for (const none of ['0', 'off', 'OFF', ' off ']) {
      expect(parseConfig({ MAX_FUTURE: none }).ingest.maxFutureSeconds, JSON.stringify(none)).toBeUndefined();
    }
    expect(configErrorFor({ MAX_FUTURE: 'soon' }).problems).toEqual([
      'MAX_FUTURE: must be a duration such as 1d or 12h, or 0/off, got "soon"',
    ]);
  });

  it('reads CORS_ORIGINS as a list of exact origins, or * alone', () => {
    expect(
      parseConfig({ CORS_ORIGINS: ' https://dashboard.example.com , http://localhost:5173,,' }).http
        .corsOrigins,
    ).toEqual(['https://dashboard.example.com', 'http://localhost:5173']);
    expect(parseConfig({ CORS_ORIGINS: '*' }).http.corsOrigins).toEqual(['*']);
    expect(configErrorFor({ CORS_ORIGINS: '*,https://dashboard.example.com' }).problems).toEqual([
      'CORS_ORIGINS: * allows every origin: it cannot be listed with others',
    ]);
    const notAnOrigin = 'each origin must be scheme://host[:port] (no path) or *';
    for (const [value, index] of [
      ['null', 0],
      ['dashboard.example.com', 0],
      ['https://ok.example,https://dashboard.example.com/path', 1],
      ['https://dashboard.example.com/', 0],
    ] as const) {
      expect(configErrorFor({ CORS_ORIGINS: value }).problems, value).toEqual([
        `CORS_ORIGINS.${index}: ${notAnOrigin}`,
      ]);
    }
  });

  it('reads READ_TOKEN as one or several tokens of at least 16 characters', () => {
    const other = 'another-token-16';
    expect(parseConfig({ READ_TOKEN: TOKEN }).http.readTokens).toEqual([TOKEN]);
    expect(parseConfig({ READ_TOKEN: `${TOKEN}, ${other}` }).http.readTokens).toEqual([TOKEN, other]);
    expect(configErrorFor({ READ_TOKEN: 'a-token-of-15ch' }).problems).toEqual([
      'READ_TOKEN.0: each token must be at least 16 characters',
    ]);
    expect(configErrorFor({ READ_TOKEN: `${TOKEN},short` }).problems).toEqual([
      'READ_TOKEN.1: each token must be at least 16 characters',
    ]);
    expect(configErrorFor({ READ_TOKEN: ',' }).problems).toEqual([expect.stringMatching(/^READ_TOKEN: /)]);
  });

  it('reads the other new variables, and refuses values out of range', () => {
    expect(
      parseConfig({
        MIGRATE_ON_START: 'true',
        CLIENT_ADDRESS_HEADER: 'X-Forwarded-For',
        MAX_QUERY_COST: '1000',
        MAX_NODE_IDS: '10',
        MAX_EXPENSIVE_OPERATIONS: '4',
        STREAM_RESERVATION_TTL_MS: '500',
        MAX_STREAM_RESERVATIONS: '50',
        MAX_STREAM_RESERVATIONS_PER_CLIENT: '2',
        LIVE_MAX_CATCHUP_READS: '1',
        MAINTENANCE_LOCK_TIMEOUT_MS: '100',
        MAINTENANCE_STATEMENT_TIMEOUT_MS: '5000',
        MAINTENANCE_MAX_PARTITIONS: '4',
        METRICS_MAX_OPERATION_NAMES: '20',
      }),
    ).toMatchObject({
      migrateOnStart: true,
      http: { clientAddressHeader: 'x-forwarded-for' },
      limits: { maxCost: 1000, maxNodeIds: 10, expensiveOperations: 4 },
      live: {
        streamReservationTtlMs: 500,
        maxStreamReservations: 50,
        maxStreamReservationsPerClient: 2,
        maxCatchUpReads: 1,
      },
      maintenance: { lockTimeoutMs: 100, statementTimeoutMs: 5000, maxPartitionsPerPass: 4 },
      observability: { maxOperationNames: 20 },
    });
    const invalid = {
      MIGRATE_ON_START: 'sometimes',
      CLIENT_ADDRESS_HEADER: 'x forwarded for',
      MAX_QUERY_COST: '0',
      MAX_NODE_IDS: '10001',
      MAX_EXPENSIVE_OPERATIONS: '0',
      STREAM_RESERVATION_TTL_MS: '99',
      MAX_STREAM_RESERVATIONS: '0',
      MAX_STREAM_RESERVATIONS_PER_CLIENT: '1.5',
      LIVE_MAX_CATCHUP_READS: '101',
      MAINTENANCE_LOCK_TIMEOUT_MS: '9',
      MAINTENANCE_STATEMENT_TIMEOUT_MS: '99',
      MAINTENANCE_MAX_PARTITIONS: '0',
      METRICS_MAX_OPERATION_NAMES: '0',
      METRICS_PUBLIC: 'maybe',
    };
    const problems = configErrorFor(invalid).problems;
    expect(problems.map((problem) => problem.split(':')[0]).sort()).toEqual(Object.keys(invalid).sort());
  });
});

describe('the documented variables', () => {
  /** Each `NAME:` of a zod object literal between `start` and the first `end` after it in `file`. */
  function schemaVariables(file: string, start: string, end: string): string[] {
    const source = readFileSync(file, 'utf8');
    const from = source.indexOf(start);
    const block = source.slice(from, source.indexOf(end, from));
    expect(from, `${start} in ${file}`).toBeGreaterThanOrEqual(0);
    return [...block.matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)].map((match) => match[1] as string);
  }
  const configVariables = schemaVariables('src/config.ts', 'const environmentSchema', '\n  })');
  const telemetryVariables = schemaVariables(
    'src/observability/telemetry.ts',
    'const telemetryEnvironment',
    '});',
  );
  /** Standard variables the OpenTelemetry SDK reads itself (sampler, resource, exporter headers). */
  const SDK_VARIABLES = [
    'OTEL_RESOURCE_ATTRIBUTES',
    'OTEL_EXPORTER_OTLP_HEADERS',
    'OTEL_TRACES_SAMPLER',
    'OTEL_TRACES_SAMPLER_ARG',
  ];
  const serviceVariables = [...configVariables, ...telemetryVariables];

  /** `NAME=` lines of .env.example, commented out or not. */
  const exampleText = readFileSync('.env.example', 'utf8');
  const exampleVariables = [...exampleText.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map(
    (match) => match[1] as string,
  );
  /** The names in the first column of the README's tables under "## Configuration". */
  const readme = readFileSync('README.md', 'utf8');
  const configurationSection = readme.slice(
    readme.indexOf('\n## Configuration\n'),
    readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 1),
  );
  const readmeVariables = configurationSection
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) =>
      [...(line.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string),
    );

  it('finds the schemas it checks', () => {
    expect(configVariables.length).toBeGreaterThan(50);
    expect(configVariables).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'MAX_FUTURE', 'READ_TOKEN', 'PORT']),
    );
    expect(telemetryVariables).toEqual(
      expect.arrayContaining(['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SDK_DISABLED']),
    );
  });

  it('lists every variable the service reads in .env.example and in the README table, and none other', () => {
    const documented = [...serviceVariables, ...SDK_VARIABLES];
    expect(serviceVariables.filter((name) => !exampleVariables.includes(name))).toEqual([]);
    expect(serviceVariables.filter((name) => !readmeVariables.includes(name))).toEqual([]);
    expect(exampleVariables.filter((name) => !documented.includes(name))).toEqual([]);
    expect(readmeVariables.filter((name) => !documented.includes(name))).toEqual([]);
  });

  it('gives .env.example the defaults: a copy of it as .env changes nothing', () => {
    const values = parseDotenv(exampleText);
    expect(Object.keys(values).length).toBeGreaterThan(30);
    expect(parseConfig(values)).toEqual(parseConfig({}));
  });
});

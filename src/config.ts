import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';
import type { AgentMapping } from './domain/agent-mapping.js';
import { parseDurationSeconds } from './domain/duration.js';
import { checkSourceName } from './domain/source.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** Seconds from a duration's text; `expected` says what was wanted when the text is not one. */
const durationOf = (expected: string) =>
  z.string().transform((text, context) => {
    const seconds = parseDurationSeconds(text);
    if (seconds === undefined) {
      context.addIssue({ code: 'custom', message: `must be ${expected}, got "${text}"` });
      return z.NEVER;
    }
    return seconds;
  });
const duration = durationOf('a duration such as 90d, 1h or 30m');
const HOUR_SECONDS = 3600;
const DAY_SECONDS = 86_400;
/** A duration, or `0`/`off` for none (undefined). */
const optionalDuration = z
  .string()
  .transform((text) => (/^\s*(0|off)\s*$/i.test(text) ? undefined : text))
  .pipe(durationOf('a duration such as 1d or 12h, or 0/off').optional());
/** A comma-separated list; blank items are dropped. */
const list = z.string().transform((text) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== ''),
);
const tokens = list.pipe(z.array(z.string().min(16, 'each token must be at least 16 characters')).min(1));
const origins = list.pipe(
  z.array(
    z.string().refine((origin) => origin === '*' || isOrigin(origin), {
      message: 'each origin must be scheme://host[:port] (no path) or *',
    }),
  ),
);

function isOrigin(text: string): boolean {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}
const postgresUrl = z
  .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' })
  .describe('PostgreSQL connection URL');

/** Every variable the service reads, with its default. `.env.example` documents each one. */
const environmentSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    DATABASE_URL: postgresUrl.optional(),
    DATABASE_READ_URL: postgresUrl.optional(),
    DATABASE_LISTEN_URL: postgresUrl.optional(),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: integer(0, 65_535).default(4000),
    DATABASE_POOL_SIZE: integer(1, 500).default(10),
    DATABASE_CONNECT_TIMEOUT_MS: integer(100, 60_000).default(2000),
    LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
    EMBEDDED_DATA_DIR: z.string().min(1).default('.data/pglite'),
    EMBEDDED_SAMPLE_DATA: z.string().min(1).default('data/sample-metrics.json'),
    DEFAULT_PAGE_SIZE: integer(1, 100_000).default(100),
    MAX_PAGE_SIZE: integer(1, 100_000).default(1000),
    MAX_SERIES_BUCKETS: integer(1, 1_000_000).default(10_000),
    AGGREGATE_CACHE_BYTES: integer(0, 16 * 1024 * 1024 * 1024).default(32 * 1024 * 1024),
    REST_DEFAULT_LIMIT: integer(1, 1_000_000).default(1000),
    REST_MAX_LIMIT: integer(1, 1_000_000).default(10_000),
    // Unset: on outside production, off in it.
    GRAPHIQL: z.stringbool().optional(),
    INTROSPECTION: z.stringbool().optional(),
    MIGRATE_ON_START: z.stringbool().default(false),
    CORS_ORIGINS: origins.default([]),
    READ_TOKEN: tokens.optional(),
    CLIENT_ADDRESS_HEADER: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'must be a header name such as x-forwarded-for')
      .transform((name) => name.toLowerCase())
      .optional(),
    MAX_QUERY_COST: integer(1, 10_000_000).default(50_000),
    MAX_NODE_IDS: integer(1, 10_000).default(100),
    // Unset: DATABASE_POOL_SIZE less two (at least one), the rest kept for pages, writes and live reads.
    MAX_EXPENSIVE_OPERATIONS: integer(1, 500).optional(),
    // The default goes in before the transform: zod replaces an undefined result (`off`) with a default too.
    MAX_FUTURE: z.string().default('1d').pipe(optionalDuration),
    STREAM_RESERVATION_TTL_MS: integer(100, 600_000).default(10_000),
    MAX_STREAM_RESERVATIONS: integer(1, 1_000_000).default(1000),
    MAX_STREAM_RESERVATIONS_PER_CLIENT: integer(1, 1_000_000).default(16),
    MAX_STREAM_OPERATIONS: integer(1, 10_000).default(100),
    LIVE_MAX_CATCHUP_READS: integer(1, 100).default(2),
    LIVE_READ_INTERVAL_MS: integer(0, 1000).default(20),
    MAINTENANCE_LOCK_TIMEOUT_MS: integer(10, 600_000).default(2000),
    MAINTENANCE_STATEMENT_TIMEOUT_MS: integer(100, 3_600_000).default(60_000),
    MAINTENANCE_MAX_PARTITIONS: integer(1, 10_000).default(48),
    METRICS_MAX_OPERATION_NAMES: integer(1, 100_000).default(200),
    METRICS_PUBLIC: z.stringbool().default(false),
    MAX_BODY_BYTES: integer(1024, 100 * 1024 * 1024).default(2 * 1024 * 1024),
    MAX_QUERY_DEPTH: integer(1, 100).default(8),
    MAX_QUERY_ALIASES: integer(0, 1000).default(15),
    MAX_QUERY_TOKENS: integer(10, 1_000_000).default(5000),
    READINESS_TIMEOUT_MS: integer(10, 60_000).default(1000),
    SHUTDOWN_TIMEOUT_MS: integer(0, 600_000).default(10_000),
    INGEST_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    INGEST_MAX_SAMPLES: integer(1, 1_000_000).default(10_000),
    // Each batch merges the rollups of every source it holds: a load interleaving 1,000 sources
    // measured 36% of \copy's rows/s at 5,000 rows a batch, 62% at 15,000, 83% at 30,000.
    INGEST_BATCH_SIZE: integer(1, 30_000).default(30_000),
    // Unset: source 1 keeps its name (`default`, as the sources migration made it). Set, every
    // process that writes names it so; unset, none renames it back.
    DEFAULT_SOURCE: z
      .string()
      .superRefine((name, context) => {
        const problem = checkSourceName(name);
        if (problem) context.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    MAX_SOURCES: integer(1, 10_000_000).default(100_000),
    PROMETHEUS_MAX_SERIES: integer(1, 1_000_000).default(10_000),
    // Counts the samples read and a value per series and step (src/promql/evaluate.ts).
    PROMETHEUS_MAX_SAMPLES: integer(1000, 100_000_000).default(1_000_000),
    AGENT_CPU_LOAD_METRICS: list.default(['system.cpu.load_average.1m', 'node_load1']),
    AGENT_CONCURRENCY_METRICS: list.default(['http.server.active_requests', 'http_server_active_requests']),
    AGENT_SOURCE_LABELS: list
      .pipe(z.array(z.string()).min(1, 'must name at least one attribute or label'))
      .default(['service.instance.id', 'k8s.pod.name', 'host.name', 'instance']),
    // A row of one value waits this long for its other half from another push (src/store/half-rows.ts).
    AGENT_JOIN_WINDOW_MS: integer(0, 10_000).default(500),
    ACCESS_LOG: z.stringbool().default(true),
    ACCESS_LOG_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(1),
    SLOW_OPERATION_MS: integer(1, 3_600_000).default(1000),
    METRICS_PORT: integer(0, 65_535).optional(),
    METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    LIVE_THROTTLE_MS: integer(0, 60_000).default(500),
    // Whole hours that divide a day: every partition then starts at a multiple of its size from
    // midnight UTC, as pg_partman aligns them, and hour- and day-sized partitions never overlap.
    PARTITION_SIZE: duration
      .refine((seconds) => seconds % HOUR_SECONDS === 0 && DAY_SECONDS % seconds === 0, {
        message: 'must be a whole number of hours that divides a day: 1h, 2h, 3h, 4h, 6h, 8h, 12h or 1d',
      })
      .default(DAY_SECONDS),
    RETENTION: duration.optional(),
    MAINTENANCE_INTERVAL: duration.default(HOUR_SECONDS),
    REPLICA_MAX_LAG: duration.default(30),
    EXACT_PERCENTILE_MAX_ROWS: integer(0, 1_000_000_000).default(1_000_000),
    MINUTE_ROLLUP_RETENTION: duration.default(365 * 86_400),
    HOUR_ROLLUP_RETENTION: duration.optional(),
  })
  // zod skips object-level refinements once any field fails; `when` runs these whenever the two
  // variables they compare are themselves valid, so every problem is still reported at once.
  .refine((env) => env.DEFAULT_PAGE_SIZE <= env.MAX_PAGE_SIZE, {
    path: ['DEFAULT_PAGE_SIZE'],
    message: 'must not exceed MAX_PAGE_SIZE',
    when: (payload) => fieldsValid(payload.issues, 'DEFAULT_PAGE_SIZE', 'MAX_PAGE_SIZE'),
  })
  .refine((env) => env.DATABASE_READ_URL === undefined || env.DATABASE_URL !== undefined, {
    path: ['DATABASE_READ_URL'],
    message: 'needs DATABASE_URL: the embedded database has no replicas',
    when: (payload) => fieldsValid(payload.issues, 'DATABASE_READ_URL', 'DATABASE_URL'),
  })
  .refine((env) => env.DATABASE_LISTEN_URL === undefined || env.DATABASE_URL !== undefined, {
    path: ['DATABASE_LISTEN_URL'],
    message: 'needs DATABASE_URL: the embedded database listens in its own process',
    when: (payload) => fieldsValid(payload.issues, 'DATABASE_LISTEN_URL', 'DATABASE_URL'),
  })
  .refine(
    (env) =>
      env.HOUR_ROLLUP_RETENTION === undefined || env.HOUR_ROLLUP_RETENTION >= env.MINUTE_ROLLUP_RETENTION,
    {
      path: ['HOUR_ROLLUP_RETENTION'],
      message: 'must not be shorter than MINUTE_ROLLUP_RETENTION',
      when: (payload) => fieldsValid(payload.issues, 'HOUR_ROLLUP_RETENTION', 'MINUTE_ROLLUP_RETENTION'),
    },
  )
  .refine(
    (env) =>
      env.NODE_ENV !== 'production' ||
      env.METRICS_TOKEN !== undefined ||
      env.METRICS_PORT !== undefined ||
      env.METRICS_PUBLIC,
    {
      path: ['METRICS_TOKEN'],
      message:
        'in production /metrics needs METRICS_TOKEN (scrapes send it as a bearer token) or METRICS_PORT (a port of its own, kept off the public network); METRICS_PUBLIC=true serves it to anyone',
      when: (payload) =>
        fieldsValid(payload.issues, 'NODE_ENV', 'METRICS_TOKEN', 'METRICS_PORT', 'METRICS_PUBLIC'),
    },
  )
  .refine((env) => !env.CORS_ORIGINS.includes('*') || env.CORS_ORIGINS.length === 1, {
    path: ['CORS_ORIGINS'],
    message: '* allows every origin: it cannot be listed with others',
    when: (payload) => fieldsValid(payload.issues, 'CORS_ORIGINS'),
  })
  .refine((env) => !env.AGENT_CPU_LOAD_METRICS.some((name) => env.AGENT_CONCURRENCY_METRICS.includes(name)), {
    path: ['AGENT_CONCURRENCY_METRICS'],
    message: 'a metric cannot be both a CPU load and a concurrency: it is also in AGENT_CPU_LOAD_METRICS',
    when: (payload) => fieldsValid(payload.issues, 'AGENT_CPU_LOAD_METRICS', 'AGENT_CONCURRENCY_METRICS'),
  })
  .refine((env) => env.REST_DEFAULT_LIMIT <= env.REST_MAX_LIMIT, {
    path: ['REST_DEFAULT_LIMIT'],
    message: 'must not exceed REST_MAX_LIMIT',
    when: (payload) => fieldsValid(payload.issues, 'REST_DEFAULT_LIMIT', 'REST_MAX_LIMIT'),
  });

function fieldsValid(issues: readonly { path?: readonly PropertyKey[] }[], ...fields: string[]): boolean {
  return !issues.some((issue) => fields.includes(String(issue.path?.[0])));
}

export type Environment = z.infer<typeof environmentSchema>;

export interface Config {
  env: Environment['NODE_ENV'];
  /** Undefined means: run on the embedded PGlite database. */
  databaseUrl: string | undefined;
  /** A streaming standby of DATABASE_URL that pages, summaries and series are read from. */
  databaseReadUrl: string | undefined;
  /**
   * Where the one LISTEN connection goes, when DATABASE_URL is a pooler in transaction mode
   * (pgbouncer), which cannot keep a LISTEN: the primary itself. Defaults to DATABASE_URL.
   */
  databaseListenUrl: string | undefined;
  host: string;
  port: number;
  databasePoolSize: number;
  /** How long a request waits for a new database connection before it is answered DATABASE_UNAVAILABLE. */
  databaseConnectTimeoutMs: number;
  logLevel: Environment['LOG_LEVEL'];
  embedded: { dataDir: string; sampleDataFile: string };
  pagination: { defaultPageSize: number; maxPageSize: number };
  maxSeriesBuckets: number;
  /** Heap bytes (estimated) for summaries and series remembered until the data changes; 0: none. */
  aggregateCacheBytes: number;
  rest: { defaultLimit: number; maxLimit: number };
  /** GraphiQL on GET /graphql from a browser; off in production unless GRAPHIQL=true. */
  graphiql: boolean;
  /** Schema introspection; off in production unless INTROSPECTION=true. */
  introspection: boolean;
  /** Apply pending migrations at start instead of refusing to start with a schema behind the code. */
  migrateOnStart: boolean;
  http: {
    /** Origins allowed cross-origin access; empty: none; ['*']: any, never with credentials. */
    corsOrigins: string[];
    /** Bearer tokens every read needs (any one of them); undefined: reads are open. */
    readTokens: string[] | undefined;
    /** A header a trusted proxy sets to the client's address (first item); undefined: the socket's peer. */
    clientAddressHeader: string | undefined;
  };
  limits: {
    maxBodyBytes: number;
    maxDepth: number;
    maxAliases: number;
    maxTokens: number;
    /** The largest estimated cost of one operation (list sizes and expensive fields counted). */
    maxCost: number;
    /** The most ids one `nodes(ids:)` may ask for. */
    maxNodeIds: number;
    /**
     * Expensive operations (uncached summaries and series, totalCount, nodes) running at once in
     * all, shared fairly between client addresses.
     */
    expensiveOperations: number;
  };
  live: {
    /** An SSE stream reservation (PUT /graphql/stream) no stream claims within this long expires. */
    streamReservationTtlMs: number;
    maxStreamReservations: number;
    maxStreamReservationsPerClient: number;
    /** Subscriptions running at once on one reserved stream (single-connection mode). */
    maxStreamOperations: number;
    /** Replays (subscriptions resuming from a cursor) reading the database at once. */
    maxCatchUpReads: number;
    /** The least time between the starts of two reads of new samples by the change feed. */
    readIntervalMs: number;
  };
  readinessTimeoutMs: number;
  /** How far behind the primary the read replica may replay while the service says it is ready. */
  replicaMaxLagSeconds: number;
  shutdownTimeoutMs: number;
  ingest: {
    token: string | undefined;
    maxSamplesPerRequest: number;
    batchSize: number;
    /** Samples further ahead of now than this are refused; undefined: any time (MAX_FUTURE=off). */
    maxFutureSeconds: number | undefined;
  };
  /** Bounds on one request of the Prometheus-compatible read API. */
  prometheus: {
    /** Series one selector may select. */
    maxSeries: number;
    /** Samples one query may read, over all its selectors. */
    maxSamples: number;
  };
  /** Which pushed metrics (OTLP, remote-write) are stored, as which field, and of which source. */
  agents: AgentMapping & {
    /** How long a pushed row of one value waits for its other half from another push; 0: not at all. */
    joinWindowMs: number;
  };
  sources: {
    /** The name to give source 1, which holds the samples of writers that name no source; undefined: keep its name. */
    defaultName: string | undefined;
    /** Sources that may exist; a write that would make one more is refused. */
    max: number;
  };
  observability: {
    accessLog: { enabled: boolean; sampleRate: number };
    /** Requests slower than this log their SQL and the plan of the slowest statement. */
    slowOperationMs: number;
    /** Where /metrics is served: undefined, on the main port; else on a port of its own. */
    metricsPort: number | undefined;
    /** A bearer token /metrics requires, when set. */
    metricsToken: string | undefined;
    /** Distinct operation names a metric label takes before the rest count as `(other)`. */
    maxOperationNames: number;
  };
  /** A live series or summary is pushed at most once per this many milliseconds per distinct question. */
  liveThrottleMs: number;
  partitions: {
    /** The time range of one partition of `metrics`. */
    sizeSeconds: number;
    /** Partitions that ended longer ago than this are dropped; undefined: everything is kept. */
    retentionSeconds: number | undefined;
  };
  /** How often partitions are made ahead and retention (raw and rollups) applied. */
  maintenanceIntervalMs: number;
  /** Bounds on one maintenance pass, so that it never holds up serving. */
  maintenance: {
    lockTimeoutMs: number;
    statementTimeoutMs: number;
    /** Partitions made or dropped in one pass at most; the next pass goes on. */
    maxPartitionsPerPass: number;
  };
  /** Summaries of at most this many rows get exact percentiles (from raw rows); larger ones, the sketch's. */
  exactPercentileMaxRows: number;
  rollups: {
    /** Minute rollups older than this are dropped (never while their raw rows are kept). */
    minuteRetentionSeconds: number;
    /** Hour rollups older than this are dropped; undefined keeps them. Day rollups are kept. */
    hourRetentionSeconds: number | undefined;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Blank values mean "unset", as in most shells' `VAR= command`. */
function withoutEmptyValues(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && entry[1].trim() !== '',
    ),
  );
}

/** Validates the environment, reporting every problem at once. */
export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = environmentSchema.safeParse(withoutEmptyValues(env));
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`),
    );
  }
  const e = result.data;
  return {
    env: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    databaseReadUrl: e.DATABASE_READ_URL,
    databaseListenUrl: e.DATABASE_LISTEN_URL ?? e.DATABASE_URL,
    host: e.HOST,
    port: e.PORT,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    embedded: { dataDir: e.EMBEDDED_DATA_DIR, sampleDataFile: e.EMBEDDED_SAMPLE_DATA },
    pagination: { defaultPageSize: e.DEFAULT_PAGE_SIZE, maxPageSize: e.MAX_PAGE_SIZE },
    maxSeriesBuckets: e.MAX_SERIES_BUCKETS,
    aggregateCacheBytes: e.AGGREGATE_CACHE_BYTES,
    rest: { defaultLimit: e.REST_DEFAULT_LIMIT, maxLimit: e.REST_MAX_LIMIT },
    graphiql: e.GRAPHIQL ?? e.NODE_ENV !== 'production',
    introspection: e.INTROSPECTION ?? e.NODE_ENV !== 'production',
    migrateOnStart: e.MIGRATE_ON_START,
    http: {
      corsOrigins: e.CORS_ORIGINS,
      readTokens: e.READ_TOKEN,
      clientAddressHeader: e.CLIENT_ADDRESS_HEADER,
    },
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxDepth: e.MAX_QUERY_DEPTH,
      maxAliases: e.MAX_QUERY_ALIASES,
      maxTokens: e.MAX_QUERY_TOKENS,
      maxCost: e.MAX_QUERY_COST,
      maxNodeIds: e.MAX_NODE_IDS,
      expensiveOperations: e.MAX_EXPENSIVE_OPERATIONS ?? Math.max(1, e.DATABASE_POOL_SIZE - 2),
    },
    live: {
      streamReservationTtlMs: e.STREAM_RESERVATION_TTL_MS,
      maxStreamReservations: e.MAX_STREAM_RESERVATIONS,
      maxStreamReservationsPerClient: e.MAX_STREAM_RESERVATIONS_PER_CLIENT,
      maxStreamOperations: e.MAX_STREAM_OPERATIONS,
      maxCatchUpReads: e.LIVE_MAX_CATCHUP_READS,
      readIntervalMs: e.LIVE_READ_INTERVAL_MS,
    },
    readinessTimeoutMs: e.READINESS_TIMEOUT_MS,
    replicaMaxLagSeconds: e.REPLICA_MAX_LAG,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    ingest: {
      token: e.INGEST_TOKEN,
      maxSamplesPerRequest: e.INGEST_MAX_SAMPLES,
      batchSize: e.INGEST_BATCH_SIZE,
      maxFutureSeconds: e.MAX_FUTURE,
    },
    prometheus: { maxSeries: e.PROMETHEUS_MAX_SERIES, maxSamples: e.PROMETHEUS_MAX_SAMPLES },
    agents: {
      cpuLoadMetrics: e.AGENT_CPU_LOAD_METRICS,
      concurrencyMetrics: e.AGENT_CONCURRENCY_METRICS,
      sourceLabels: e.AGENT_SOURCE_LABELS,
      joinWindowMs: e.AGENT_JOIN_WINDOW_MS,
    },
    sources: { defaultName: e.DEFAULT_SOURCE, max: e.MAX_SOURCES },
    observability: {
      accessLog: { enabled: e.ACCESS_LOG, sampleRate: e.ACCESS_LOG_SAMPLE_RATE },
      slowOperationMs: e.SLOW_OPERATION_MS,
      metricsPort: e.METRICS_PORT,
      metricsToken: e.METRICS_TOKEN,
      maxOperationNames: e.METRICS_MAX_OPERATION_NAMES,
    },
    liveThrottleMs: e.LIVE_THROTTLE_MS,
    partitions: { sizeSeconds: e.PARTITION_SIZE, retentionSeconds: e.RETENTION },
    maintenanceIntervalMs: e.MAINTENANCE_INTERVAL * 1000,
    maintenance: {
      lockTimeoutMs: e.MAINTENANCE_LOCK_TIMEOUT_MS,
      statementTimeoutMs: e.MAINTENANCE_STATEMENT_TIMEOUT_MS,
      maxPartitionsPerPass: e.MAINTENANCE_MAX_PARTITIONS,
    },
    exactPercentileMaxRows: e.EXACT_PERCENTILE_MAX_ROWS,
    rollups: {
      minuteRetentionSeconds: e.MINUTE_ROLLUP_RETENTION,
      hourRetentionSeconds: e.HOUR_ROLLUP_RETENTION,
    },
  };
}

/**
 * The environment of an entry point (the server, the ingest and seed commands): `.env` in the
 * working directory is read into the environment first, and a variable already set in the real
 * environment wins over the file, as with dotenv everywhere (and Prisma's CLI, which reads the
 * same file through prisma.config.ts). `DOTENV_CONFIG_PATH` names another file instead
 * (`/dev/null`: none), so that a caller such as the test suite can keep a developer's `.env` out.
 */
export function loadEnv(): NodeJS.ProcessEnv {
  loadDotenv({ quiet: true, path: process.env.DOTENV_CONFIG_PATH || undefined });
  return process.env;
}

export function loadConfig(): Config {
  return parseConfig(loadEnv());
}

import {
  type Attributes,
  context,
  type Meter,
  metrics,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import type pg from 'pg';
import { boundedText } from './bounds.js';
import type { OperationScope } from './operation-scope.js';

/** Seconds, as the semantic conventions' duration histograms. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface DatabaseAddress {
  host: string;
  port: number;
  database: string;
}

/** The address a connection URL names, for spans: pg's own defaults where the URL leaves them out. */
export function databaseAddress(url: string): DatabaseAddress {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || 'localhost',
    port: Number(parsed.port || 5432),
    database: decodeURIComponent(parsed.pathname.slice(1)) || 'postgres',
  };
}

/** The SQLSTATE or Node error code of a failed statement, the kind of error a dashboard groups by. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : error instanceof Error ? error.name : 'unknown';
}

/** The verb and collection a statement's summary names, the attributes of its measurement. */
function statementAttributes(summary: string): Attributes {
  const [operation, collection, ...more] = summary.split(' ');
  return {
    'db.system.name': 'postgresql',
    'db.operation.name': operation,
    // A summary of more than one table (INSERT metrics SELECT metrics_staging) names no one collection.
    ...(collection && more.length === 0 ? { 'db.collection.name': collection } : {}),
  };
}

/**
 * One client span and one `db.client.operation.duration` measurement per SQL statement, on the
 * semantic conventions for PostgreSQL, and the statement recorded for the slow-operation log.
 * Statements carry their placeholders, never their values.
 */
export class DatabaseTelemetry {
  readonly #tracer: Tracer | undefined;
  readonly #duration;
  readonly #attributes: Attributes;

  /** Without `tracer` no span is made at all (tracing off); without `meter` nothing is measured. */
  constructor(options: { tracer?: Tracer; meter?: Meter; address: DatabaseAddress; pool?: pg.Pool }) {
    this.#tracer = options.tracer;
    const meter = options.meter ?? metrics.getMeter('metrics-api');
    this.#attributes = {
      'db.system.name': 'postgresql',
      'db.namespace': options.address.database,
      'server.address': options.address.host,
      'server.port': options.address.port,
    };
    this.#duration = meter.createHistogram('db.client.operation.duration', {
      unit: 's',
      description: 'Duration of SQL statements.',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    const pool = options.pool;
    if (pool) {
      const connections = meter.createObservableUpDownCounter('db.client.connection.count', {
        unit: '{connection}',
        description: 'Connections in the pool, by state.',
      });
      const pending = meter.createObservableUpDownCounter('db.client.connection.pending_requests', {
        unit: '{request}',
        description: 'Requests waiting for a connection.',
      });
      const pool_name = `${options.address.host}:${options.address.port}/${options.address.database}`;
      connections.addCallback((result) => {
        result.observe(pool.totalCount - pool.idleCount, {
          'db.client.connection.state': 'used',
          'db.client.connection.pool.name': pool_name,
        });
        result.observe(pool.idleCount, {
          'db.client.connection.state': 'idle',
          'db.client.connection.pool.name': pool_name,
        });
      });
      pending.addCallback((result) =>
        result.observe(pool.waitingCount, { 'db.client.connection.pool.name': pool_name }),
      );
    }
  }

  /**
   * Runs one statement. `summary` is its SQL verb, then the table it works on when it works on one
   * (`SELECT metrics`, `UPDATE metrics_revision`; `SELECT` alone for a catalog query or a lock): the
   * span's name and its `db.operation.name` and `db.collection.name`, as the semantic conventions'
   * `db.query.summary`. `text` is its SQL with placeholders; `scope`, the request's, records it for
   * the slow-operation log.
   */
  async statement<T>(
    summary: string,
    text: string,
    values: readonly unknown[],
    run: () => Promise<T>,
    scope?: OperationScope,
  ): Promise<T> {
    const started = performance.now();
    // A child of the request's current span, passed down in its scope; elsewhere (the ingest
    // command) of the active context, where spans nest through one. None for a request the
    // sampler dropped.
    const parent = scope ? scope.trace?.context : context.active();
    const attributes = statementAttributes(summary);
    const span =
      parent &&
      this.#tracer?.startSpan(
        summary,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            ...this.#attributes,
            ...attributes,
            'db.query.summary': summary,
            // Built from a request (a list of ids, a window over many partitions), it can be long.
            'db.query.text': boundedText(text),
          },
        },
        parent,
      );
    try {
      return await run();
    } catch (error) {
      attributes['error.type'] = errorType(error);
      span?.setAttribute('error.type', attributes['error.type'] as string);
      span?.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      const ms = performance.now() - started;
      span?.end();
      this.#duration.record(ms / 1000, attributes);
      scope?.statements.push({ text, values, ms });
    }
  }
}

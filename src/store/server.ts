import type pg from 'pg';
import type { DatabaseAvailability } from '../database/availability.js';
import type { PostgresConnection } from '../database/connection.js';
import type { ProbeConnection } from '../database/probe-connection.js';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import type { DatabaseTelemetry } from '../observability/database-telemetry.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { fastTimestamptzTypes } from './pg-timestamptz.js';
import type { StatementRunner } from './statement-runner.js';
import { withTransaction } from './transaction.js';

/** A server the store runs statements on: the primary, or the standby reads go to. */
export interface Server {
  pool: pg.Pool;
  prisma: PrismaClient;
  /** Readiness's own connection (see ProbeConnection). */
  probe: ProbeConnection;
  /** Runs one statement, observed, with unavailability told apart from other failures. */
  observed: StatementRunner;
  /**
   * Tells unavailability from other failures for what is not one statement: a transaction as a
   * whole (its connection, BEGIN, COMMIT) and an EXPLAIN.
   */
  classified: (error: unknown) => never;
}

export type ServerConnection = Pick<PostgresConnection, 'pool' | 'prisma' | 'probe' | 'availability'>;

const classifiedBy =
  (availability: DatabaseAvailability) =>
  (error: unknown): never => {
    throw availability.classify(error);
  };

/**
 * `connection` as the store runs statements on it, observed by `telemetry` (unobserved without
 * it). A statement's failure is classified by the connection's own availability, a failure outside
 * a statement by `outsideStatements`'s (MetricStore gives every server the primary's).
 */
export function server(
  { pool, prisma, probe, availability }: ServerConnection,
  telemetry: DatabaseTelemetry | undefined,
  outsideStatements: DatabaseAvailability = availability,
): Server {
  const classified = classifiedBy(availability);
  return {
    pool,
    prisma,
    probe,
    observed: (operation, text, values, run, scope) =>
      (telemetry ? telemetry.statement(operation, text, values, run, scope) : run()).catch(classified),
    classified: classifiedBy(outsideStatements),
  };
}

/** A query on `on`'s pool, rows as arrays: pg would otherwise build an object per row only for it to be mapped. */
export function arrays<Row extends unknown[]>(
  on: Server,
  summary: string,
  text: string,
  values: unknown[],
  scope: OperationScope | undefined,
  types?: typeof fastTimestamptzTypes,
): Promise<pg.QueryResult<Row>> {
  return on.observed(
    summary,
    text,
    values,
    () => on.pool.query<Row>({ text, values, rowMode: 'array', ...(types ? { types } : {}) }),
    scope,
  );
}

/** A Prisma raw query on `on`, observed under its SQL text. */
export function raw<Row>(
  on: Server,
  operation: string,
  sql: Prisma.Sql,
  scope?: OperationScope,
): Promise<Row[]> {
  return on.observed(operation, sql.text, sql.values, () => on.prisma.$queryRaw<Row[]>(sql), scope);
}

/** `work` on one connection of `on`, in a transaction `begin` opens; committed, or rolled back on failure. */
export function transaction<T>(
  on: Server,
  begin: string,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return withTransaction(on.pool, begin, work).catch(on.classified);
}

/** Runs one statement of a snapshot (see inSnapshot), rows as objects. */
export type SnapshotQuery = <Row>(sql: Prisma.Sql, scope?: OperationScope) => Promise<Row[]>;

/**
 * Runs `work`'s statements on one connection of `on`, in one read-only snapshot, JIT off (every
 * statement here is short; compiling one costs more than running it). Statements are observed
 * like any other.
 */
export function inSnapshot<T>(on: Server, work: (query: SnapshotQuery) => Promise<T>): Promise<T> {
  // One round trip opens the snapshot and turns JIT off for it.
  const begin = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off';
  return transaction(on, begin, async (client) =>
    work(async <Row>(sql: Prisma.Sql, scope?: OperationScope) => {
      const { rows } = await on.observed(
        'SELECT',
        sql.text,
        sql.values,
        () => client.query<Row & pg.QueryResultRow>(sql.text, sql.values),
        scope,
      );
      return rows as Row[];
    }),
  );
}

import type pg from 'pg';
import type { PostgresConnection } from '../../src/database/connection.js';
import { connectTest } from './database.js';

/** A statement run on a logged pool, with its values. */
export interface LoggedStatement {
  text: string;
  values: unknown[];
}

type QueryConfig = string | { text?: string; values?: unknown[] };

/**
 * A connection to the database at `url` whose pool records every statement its clients run, in a
 * transaction or not, for tests that read the SQL the app sent: to count it, or to have PostgreSQL
 * EXPLAIN it.
 */
export function connectLogged(
  url: string,
  poolSize?: number,
): { connection: PostgresConnection; statements: LoggedStatement[] } {
  const connection = connectTest(url, poolSize);
  const statements: LoggedStatement[] = [];
  connection.pool.on('connect', (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (config: QueryConfig, ...rest: unknown[]) => {
      const text = typeof config === 'string' ? config : config.text;
      // A COPY stream is a query object without text.
      if (text !== undefined) {
        const values = Array.isArray(rest[0])
          ? rest[0]
          : typeof config === 'string'
            ? []
            : (config.values ?? []);
        statements.push({ text, values });
      }
      return query(config, ...rest);
    };
  });
  return { connection, statements };
}

/** A node of PostgreSQL's plan as EXPLAIN (FORMAT JSON) gives it: the fields tests read. */
export interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Heap Fetches'?: number;
  'Rows Removed by Filter'?: number;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/** Runs `statement` under EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) on `client`: its plan's nodes, depth first. */
export async function explainedPlan(
  client: pg.ClientBase,
  { text, values }: LoggedStatement,
): Promise<PlanNode[]> {
  const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values);
  const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
  return nodes(rows[0]['QUERY PLAN'][0].Plan as PlanNode);
}

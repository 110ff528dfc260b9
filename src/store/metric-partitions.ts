import type pg from 'pg';
import type { StatementRunner } from './statement-runner.js';
import { METRICS, REVISION } from './tables.js';

/** One partition of `metrics`: the rows with `from <= timestamp < to`. */
export interface Partition {
  name: string;
  from: Date;
  to: Date;
}

/** A partition and the ids its rows hold, for `MetricStore.findById`. */
export interface PartitionIds extends Partition {
  minId: bigint;
  maxId: bigint;
}

/** Who makes partitions ahead and drops old ones. */
export type PartitionManager = { kind: 'pg_partman'; schema: string } | { kind: 'service'; reason: string };

/** What one maintenance pass did. */
export interface MaintenanceResult {
  created: string[];
  dropped: Partition[];
  /** Rows in the default partition: their time had no partition when they were written. */
  defaultRows: number;
  /**
   * The partition size pg_partman keeps, in seconds, when it differs from the policy's: it was
   * handed the table with another PARTITION_SIZE, and a new size would overlap its partitions.
   */
  partmanSizeSeconds?: number;
}

export interface MaintenancePolicy {
  sizeSeconds: number;
  /** Partitions whose end is older than this are dropped; undefined keeps them all. */
  retentionSeconds: number | undefined;
  /** Partitions made ahead of now. */
  premake: number;
}

const DEFAULT_PARTITION = `${METRICS}_default`;
/** The default partition's name while pg_partman makes its own, at the takeover. */
const DEFAULT_BEFORE_PARTMAN = 'metrics_default_before_partman';
const DAY_MS = 86_400_000;
/** Default rows are counted up to this many: beyond, the count is only "at least". */
const DEFAULT_ROWS_COUNTED = 1_000_000;

/** A quoted identifier: partition names are made here, but quoted all the same. */
export const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/**
 * The name pg_partman 4.x gives the partition starting at `from`: `metrics_pYYYY_MM_DD` for
 * partitions of a day or more, with `_HH24MI` after it for shorter ones (UTC, as the service runs
 * pg_partman in UTC), so partitions made by either are recognized by the other.
 */
export function partitionName(from: Date, sizeSeconds: number): string {
  const day = `${from.getUTCFullYear()}_${pad(from.getUTCMonth() + 1)}_${pad(from.getUTCDate())}`;
  const time = sizeSeconds * 1000 >= DAY_MS ? '' : `_${pad(from.getUTCHours())}${pad(from.getUTCMinutes())}`;
  return `${METRICS}_p${day}${time}`;
}

/**
 * The starts of the partitions of `sizeSeconds` that cover [from, to): multiples of the size from
 * midnight UTC (the size divides a day; see PARTITION_SIZE in config.ts).
 */
export function partitionStarts(from: Date, to: Date, sizeSeconds: number): Date[] {
  const size = sizeSeconds * 1000;
  const starts: Date[] = [];
  for (let start = Math.floor(from.getTime() / size) * size; start < to.getTime(); start += size) {
    starts.push(new Date(start));
  }
  return starts;
}

const overlaps = (a: { from: Date; to: Date }, b: { from: Date; to: Date }) => a.from < b.to && b.from < a.to;

/**
 * The partitions of `metrics`, made by the migration (20261202060000_metrics_partitioned), the
 * service, the partitions command, or pg_partman when it manages the table.
 *
 * With pg_partman (4.x) installed, or installable by the service's role, the first maintenance
 * pass hands the table to it: `create_parent(..., 'native', ...)` adopts the partitions there are
 * (same names and bounds) and each pass runs `run_maintenance` for the table, which makes
 * partitions ahead and drops those past retention. Without it, the service makes partitions ahead
 * itself with plain DDL, and retention does nothing (there is one warning at start-up).
 */
export class MetricPartitions {
  constructor(
    private readonly pool: pg.Pool,
    private readonly observed: StatementRunner,
  ) {}

  #query<Row extends pg.QueryResultRow>(
    client: pg.ClientBase | pg.Pool,
    text: string,
    values: unknown[] = [],
  ) {
    const verb = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
    return this.observed(verb, text, values, () => client.query<Row>(text, values));
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      // pg_partman names and bounds partitions in the session's time zone: UTC, as partitionName.
      await client.query("SET LOCAL TimeZone TO 'UTC'");
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
        broken = rollbackFailed;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** Every partition but the default one, in time order. */
  list(client: pg.ClientBase | pg.Pool = this.pool): Promise<Partition[]> {
    return this.#query<Partition>(
      client,
      `SELECT name, "from", "to" FROM (
         SELECT c.relname AS name,
                (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS "from",
                (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS "to"
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1::regclass
       ) AS partitions
       WHERE "from" IS NOT NULL AND "to" IS NOT NULL
       ORDER BY "from"`,
      [METRICS],
    ).then(({ rows }) => rows);
  }

  /** The ids in each partition, from both ends of its id index (two index probes a partition). */
  async idRanges(partitions: Partition[]): Promise<PartitionIds[]> {
    if (partitions.length === 0) return [];
    const probes = partitions.map(
      (partition, index) =>
        `SELECT ${index} AS index, min(id)::text AS min_id, max(id)::text AS max_id FROM ONLY ${quoteIdentifier(partition.name)}`,
    );
    const { rows } = await this.#query<{ index: number; min_id: string | null; max_id: string | null }>(
      this.pool,
      probes.join(' UNION ALL '),
    );
    return rows.flatMap(({ index, min_id, max_id }) => {
      const partition = partitions[index];
      return partition && min_id !== null && max_id !== null
        ? [{ ...partition, minId: BigInt(min_id), maxId: BigInt(max_id) }]
        : [];
    });
  }

  /** Rows in the default partition (counted up to a million). */
  async defaultRows(client: pg.ClientBase | pg.Pool = this.pool): Promise<number> {
    const { rows } = await this.#query<{ count: number }>(
      client,
      `SELECT count(*)::int AS count FROM (SELECT FROM ONLY ${quoteIdentifier(DEFAULT_PARTITION)} LIMIT ${DEFAULT_ROWS_COUNTED}) AS counted`,
    );
    return rows[0]?.count ?? 0;
  }

  /**
   * pg_partman when it manages `metrics` or can be made to (installed here and creatable by this
   * role); otherwise the service, with the reason.
   */
  async manager(): Promise<PartitionManager> {
    const { rows } = await this.#query<{ schema: string | null; available: boolean }>(
      this.pool,
      `SELECT (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_partman') AS schema,
              EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_partman') AS available`,
    );
    const found = rows[0];
    if (found?.schema) return { kind: 'pg_partman', schema: found.schema };
    if (!found?.available) {
      return { kind: 'service', reason: 'the pg_partman extension is not installed on the database server' };
    }
    try {
      // Together or not at all: no empty schema is left behind by a role that may not create it.
      await this.#transaction(async (client) => {
        await this.#query(client, 'CREATE SCHEMA IF NOT EXISTS partman');
        await this.#query(client, 'CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman');
      });
    } catch (error) {
      const { message } = error as Error;
      return { kind: 'service', reason: `pg_partman could not be created in schema partman: ${message}` };
    }
    return { kind: 'pg_partman', schema: 'partman' };
  }

  /**
   * One maintenance pass: partitions made ahead, and with pg_partman, those past retention
   * dropped. A dropped partition fires no DELETE trigger, so the pass renews the revision and
   * announces the dropped range on metrics_changes itself, in the same transaction: remembered
   * aggregates and live series see the rows go.
   */
  maintain(
    manager: PartitionManager,
    policy: MaintenancePolicy,
    now = new Date(),
  ): Promise<MaintenanceResult> {
    return this.#transaction(async (client) => {
      // One pass at a time across every instance of the service on this database.
      await this.#query(client, `SELECT pg_advisory_xact_lock(hashtext('metrics partition maintenance'))`);
      const before = await this.list(client);
      let partmanSizeSeconds: number | undefined;
      if (manager.kind === 'pg_partman') {
        partmanSizeSeconds = await this.#partmanPass(client, manager.schema, policy, before, now);
      } else {
        const ahead = partitionStarts(
          now,
          new Date(now.getTime() + policy.premake * policy.sizeSeconds * 1000),
          policy.sizeSeconds,
        );
        const last = ahead.at(-1);
        if (last)
          await this.#createCovering(
            client,
            ahead[0] as Date,
            new Date(last.getTime() + policy.sizeSeconds * 1000),
            policy.sizeSeconds,
            before,
          );
      }
      const after = await this.list(client);
      const remaining = new Set(after.map((partition) => partition.name));
      const known = new Set(before.map((partition) => partition.name));
      const dropped = before.filter((partition) => !remaining.has(partition.name));
      if (dropped.length > 0) await this.#announceDropped(client, dropped);
      return {
        created: after.filter((partition) => !known.has(partition.name)).map((partition) => partition.name),
        dropped,
        defaultRows: await this.defaultRows(client),
        ...(partmanSizeSeconds !== undefined && partmanSizeSeconds !== policy.sizeSeconds
          ? { partmanSizeSeconds }
          : {}),
      };
    });
  }

  async #partmanPass(
    client: pg.PoolClient,
    schema: string,
    policy: MaintenancePolicy,
    existing: Partition[],
    now: Date,
  ): Promise<number> {
    const partman = quoteIdentifier(schema);
    const { rows: parents } = await this.#query<{ parent: string }>(
      client,
      `SELECT n.nspname || '.' || c.relname AS parent FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`,
      [METRICS],
    );
    const parent = parents[0]?.parent as string;
    const { rowCount: managed } = await this.#query(
      client,
      `SELECT FROM ${partman}.part_config WHERE parent_table = $1`,
      [parent],
    );
    const interval = `${policy.sizeSeconds} seconds`;
    if (!managed) await this.#handOver(client, partman, parent, interval, policy, existing, now);
    // Retention and premake follow the configuration at every pass; infinite_time_partitions
    // makes partitions ahead of now, not only of the newest row.
    await this.#query(
      client,
      `UPDATE ${partman}.part_config
          SET retention = $2, retention_keep_table = false, retention_keep_index = false,
              premake = $3, infinite_time_partitions = true
        WHERE parent_table = $1`,
      [
        parent,
        policy.retentionSeconds === undefined ? null : `${policy.retentionSeconds} seconds`,
        policy.premake,
      ],
    );
    await this.#query(client, `SELECT ${partman}.run_maintenance($1, p_jobmon := false)`, [parent]);
    const { rows } = await this.#query<{ seconds: number }>(
      client,
      `SELECT extract(epoch FROM partition_interval::interval)::int AS seconds FROM ${partman}.part_config WHERE parent_table = $1`,
      [parent],
    );
    return rows[0]?.seconds ?? policy.sizeSeconds;
  }

  /**
   * pg_partman's create_parent makes a default partition of its own, so the one the migration
   * made is detached first and set aside under another name, rows and all. Once create_parent has
   * made its partitions, the rows of their ranges move into them, partition to partition, and the
   * old default takes the place of pg_partman's empty one. No row passes through a statement on
   * metrics, so no trigger sees a change (there is none: the rollups already count these rows),
   * and a default holding millions of rows (a back-fill written before its partitions were made)
   * is attached again, not copied. The first partition pg_partman makes starts where the newest
   * existing one ends (or `premake` partitions before now), so the two never overlap.
   */
  async #handOver(
    client: pg.PoolClient,
    partman: string,
    parent: string,
    interval: string,
    policy: MaintenancePolicy,
    existing: Partition[],
    now: Date,
  ): Promise<void> {
    const size = policy.sizeSeconds * 1000;
    const earliest = Math.floor((now.getTime() - policy.premake * size) / size) * size;
    const start = new Date(Math.max(earliest, existing.at(-1)?.to.getTime() ?? earliest));
    const { rowCount: hadDefault } = await this.#query(
      client,
      `SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass AND c.relname = $2`,
      [METRICS, DEFAULT_PARTITION],
    );
    if (hadDefault) {
      await this.#query(
        client,
        `ALTER TABLE ${METRICS} DETACH PARTITION ${quoteIdentifier(DEFAULT_PARTITION)}`,
      );
      await this.#query(
        client,
        `ALTER TABLE ${quoteIdentifier(DEFAULT_PARTITION)} RENAME TO ${quoteIdentifier(DEFAULT_BEFORE_PARTMAN)}`,
      );
    }
    await this.#query(
      client,
      `SELECT ${partman}.create_parent($1, 'timestamp', 'native', $2, p_premake := $3, p_start_partition := $4, p_jobmon := false)`,
      [parent, interval, policy.premake, start.toISOString()],
    );
    if (!hadDefault) return;
    const known = new Set(existing.map((partition) => partition.name));
    for (const partition of await this.list(client)) {
      if (known.has(partition.name)) continue;
      await this.#moveRows(client, DEFAULT_BEFORE_PARTMAN, partition);
    }
    await this.#query(
      client,
      `ALTER TABLE ${METRICS} DETACH PARTITION ${quoteIdentifier(DEFAULT_PARTITION)}`,
    );
    await this.#query(client, `DROP TABLE ${quoteIdentifier(DEFAULT_PARTITION)}`);
    await this.#query(
      client,
      `ALTER TABLE ${quoteIdentifier(DEFAULT_BEFORE_PARTMAN)} RENAME TO ${quoteIdentifier(DEFAULT_PARTITION)}`,
    );
    await this.#query(
      client,
      `ALTER TABLE ${METRICS} ATTACH PARTITION ${quoteIdentifier(DEFAULT_PARTITION)} DEFAULT`,
    );
  }

  /**
   * Makes the partitions of `sizeSeconds` covering [from, to) that do not exist yet (for the
   * partitions command, and ahead of now without pg_partman); returns their names. A range an
   * existing partition overlaps is left as it is.
   */
  create(from: Date, to: Date, sizeSeconds: number): Promise<string[]> {
    return this.#transaction(async (client) =>
      this.#createCovering(client, from, to, sizeSeconds, await this.list(client)),
    );
  }

  /**
   * Rows of the new partitions' ranges that sit in the default partition move into them, partition
   * to partition, so they fire none of metrics' statement triggers: no row changes. The default
   * partition is detached meanwhile: attached, it would be scanned for rows of the new range at
   * every partition made (PostgreSQL's check), once per day of a year's back-fill held there.
   * Detached, it is scanned once, when it is attached again.
   */
  async #createCovering(
    client: pg.PoolClient,
    from: Date,
    to: Date,
    sizeSeconds: number,
    existing: Partition[],
  ): Promise<string[]> {
    const missing = partitionStarts(from, to, sizeSeconds)
      .map((start) => ({
        name: partitionName(start, sizeSeconds),
        from: start,
        to: new Date(start.getTime() + sizeSeconds * 1000),
      }))
      .filter((range) => !existing.some((partition) => overlaps(partition, range)));
    if (missing.length === 0) return [];
    const defaultPartition = quoteIdentifier(DEFAULT_PARTITION);
    const { rows } = await this.#query<{ held: boolean }>(
      client,
      `SELECT EXISTS (SELECT FROM ONLY ${defaultPartition} WHERE "timestamp" >= $1 AND "timestamp" < $2) AS held`,
      [missing[0]?.from, missing.at(-1)?.to],
    );
    const moving = rows[0]?.held === true;
    if (moving) await this.#query(client, `ALTER TABLE ${METRICS} DETACH PARTITION ${defaultPartition}`);
    for (const range of missing) {
      const name = quoteIdentifier(range.name);
      await this.#query(
        client,
        `CREATE TABLE ${name} PARTITION OF ${METRICS} FOR VALUES FROM ('${range.from.toISOString()}') TO ('${range.to.toISOString()}')`,
      );
      if (moving) await this.#moveRows(client, DEFAULT_PARTITION, range);
    }
    if (moving)
      await this.#query(client, `ALTER TABLE ${METRICS} ATTACH PARTITION ${defaultPartition} DEFAULT`);
    return missing.map((range) => range.name);
  }

  /**
   * Moves the rows of `to`'s range from the table `from` into the partition `to`, table to table:
   * no statement on metrics, so none of its triggers fires.
   */
  async #moveRows(client: pg.PoolClient, from: string, to: Partition): Promise<void> {
    await this.#query(
      client,
      `WITH moved AS (
         DELETE FROM ${quoteIdentifier(from)} WHERE "timestamp" >= $1 AND "timestamp" < $2
         RETURNING id, "timestamp", cpu_load, concurrency)
       INSERT INTO ${quoteIdentifier(to.name)} (id, "timestamp", cpu_load, concurrency) SELECT * FROM moved`,
      [to.from, to.to],
    );
  }

  /** The revision and a DELETE-like announcement for partitions dropped whole. */
  async #announceDropped(client: pg.PoolClient, dropped: Partition[]): Promise<void> {
    const from = new Date(Math.min(...dropped.map((partition) => partition.from.getTime())));
    // Inclusive, like the triggers' announcements: the last millisecond of the last partition.
    const to = new Date(Math.max(...dropped.map((partition) => partition.to.getTime())) - 1);
    await this.#query(client, `UPDATE ${REVISION} SET revision = gen_random_uuid()`);
    await this.#query(client, `SELECT pg_notify('metrics_changes', $1)`, [
      JSON.stringify({
        op: 'DELETE',
        partitions: dropped.map((partition) => partition.name),
        from: from.toISOString(),
        to: to.toISOString(),
      }),
    ]);
  }
}

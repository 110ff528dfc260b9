import type pg from 'pg';
import type { StatementRunner } from './statement-runner.js';
import { METRICS, REVISION } from './tables.js';
import { withTransaction } from './transaction.js';

/** One partition of `metrics`: the rows with `from <= timestamp < to`. */
export interface Partition {
  name: string;
  from: Date;
  to: Date;
}

/** A partition and the ids its rows hold, for lookups by id (lookup.ts). */
export interface PartitionIds extends Partition {
  minId: bigint;
  maxId: bigint;
}

/** `metrics` as pg_partman manages it. */
interface PartmanTable {
  /** schema.table, as part_config names it. */
  parent: string;
  schema: string;
  /** The partition size it keeps. */
  sizeSeconds: number;
  /** Partitions it made when the table was handed to it, in this pass. */
  created: string[];
}

/** Who drops old partitions (pg_partman), or why nobody does (the service makes them only). */
export type PartitionManager = { kind: 'pg_partman'; schema: string } | { kind: 'service'; reason: string };

/** Rows in the default partition: counted exactly up to a limit, estimated from statistics beyond. */
export interface DefaultRows {
  count: number;
  estimated: boolean;
}

/** A step of a pass that did not complete (a lock not granted in time, a statement timed out). */
export interface MaintenanceFailure {
  partition: string;
  reason: string;
}

/** What one maintenance pass did. */
export interface MaintenanceResult {
  created: string[];
  dropped: Partition[];
  /** Steps that failed; each is tried again at the next pass, and the others went on. */
  failed: MaintenanceFailure[];
  /** Partitions left to make or drop for the next passes: this one reached its bound. */
  deferred: number;
  /** Rows in the default partition: their time had no partition when they were written. */
  defaultRows: DefaultRows;
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
  /** Partitions made or dropped in one pass at most (MAINTENANCE_MAX_PARTITIONS). */
  maxPartitions: number;
  /** How long a statement of the pass waits for a lock (MAINTENANCE_LOCK_TIMEOUT_MS). */
  lockTimeoutMs: number;
  /** How long a statement of the pass runs at most (MAINTENANCE_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs: number;
}

const DEFAULT_PARTITION = `${METRICS}_default`;
/** The default partition's name while pg_partman makes its own, at the takeover. */
const DEFAULT_BEFORE_PARTMAN = 'metrics_default_before_partman';
const DAY_MS = 86_400_000;
/** Default rows are counted up to this many; beyond, the planner's estimate is reported, labelled. */
const DEFAULT_ROWS_COUNTED = 1_000_000;
/** pg_partman names and bounds partitions in the session's time zone: UTC, as partitionName. */
const BEGIN_UTC = "BEGIN; SET LOCAL TimeZone TO 'UTC'";
/** One maintenance step at a time across every instance of the service on this database. */
const MAINTENANCE_LOCK = `SELECT pg_advisory_xact_lock(hashtext('metrics partition maintenance'))`;
/** One decision to create pg_partman at a time: instances starting together would race on it. */
const PARTMAN_CREATION_LOCK = `SELECT pg_advisory_xact_lock(hashtext('metrics pg_partman creation'))`;

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
 * A partition's bounds as DDL takes them (literals, not parameters). JavaScript writes years past
 * 9999 with a sign and six digits, which PostgreSQL reads as a time zone; the partition of
 * 9999-12-31 ends in year 10000.
 */
function partitionBounds(range: { from: Date; to: Date }): string {
  const literal = (instant: Date) => instant.toISOString().replace(/^\+0*/, '');
  return `FOR VALUES FROM ('${literal(range.from)}') TO ('${literal(range.to)}')`;
}

/** The partitions of `sizeSeconds` starting at `starts` that no existing partition overlaps. */
function missingRanges(starts: Date[], sizeSeconds: number, existing: Partition[]): Partition[] {
  return starts
    .map((start) => ({
      name: partitionName(start, sizeSeconds),
      from: start,
      to: new Date(start.getTime() + sizeSeconds * 1000),
    }))
    .filter((range) => !existing.some((partition) => overlaps(partition, range)));
}

/**
 * A statement's SQL verb: its first word, or for a WITH query the main statement's, which this
 * file's queries start on a line of its own after their common table expressions.
 */
function verbOf(text: string): string {
  const verb = /^\s*WITH\b/i.test(text)
    ? [...text.matchAll(/^\s*(SELECT|INSERT|UPDATE|DELETE)\b/gim)].at(-1)?.[1]
    : /^\s*(\w+)/.exec(text)?.[1];
  return verb?.toUpperCase() ?? 'QUERY';
}

/**
 * The partitions of `metrics`, made by the migration (20261202060000_metrics_partitioned), the
 * service, the partitions command, or pg_partman when it manages the table.
 *
 * A maintenance pass makes the partitions itself: those ahead of now, and one for each range of
 * rows that sit in the default partition (a back-fill, a clock that ran ahead), moving the rows
 * in. With pg_partman (4.x) installed, or installable by the service's role, the table is also
 * handed to it (`create_parent(..., 'native', ...)` adopts the partitions there are: same names and
 * bounds) and partitions past retention are dropped with its `drop_partition_time`. Its
 * `run_maintenance` is not called: it makes every partition from the newest one to the newest row
 * of the default partition in one transaction (one sample at 2036 made it attach thousands and
 * run out of the lock table), and it fails for good once the default partition holds a row of a
 * range it makes. Without pg_partman, retention does nothing (a warning for each distinct reason).
 *
 * Every step of a pass (one partition made, one dropped) is a transaction of its own, under the
 * policy's lock and statement timeouts: a step never queues behind serving for longer than the lock
 * timeout, and a step that fails is reported and the pass goes on. Reads of `metrics` never wait on
 * a step; a read that reaches the default partition waits while a step scans it (ATTACH checks it
 * holds no row of the new range), for as long as that scan takes, at most the statement timeout.
 */
export class MetricPartitions {
  constructor(
    private readonly pool: pg.Pool,
    private readonly observed: StatementRunner,
  ) {}

  /**
   * Runs one statement, observed under its SQL verb and `collection`, the one table it works on
   * (none for catalog queries, locks and functions, and none for one partition: a partition's name
   * would make a new metric label value every day).
   */
  #query<Row extends pg.QueryResultRow>(
    client: pg.ClientBase | pg.Pool,
    text: string,
    values: unknown[] = [],
    collection?: string,
  ) {
    const verb = verbOf(text);
    const summary = collection ? `${verb} ${collection}` : verb;
    return this.observed(summary, text, values, () => client.query<Row>(text, values));
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

  /**
   * Rows in the default partition: counted up to a million (a scan of its index), and beyond, the
   * planner's estimate (pg_class.reltuples), labelled as such: counting ten million rows at every
   * pass would cost more than the answer is worth.
   */
  async defaultRows(client: pg.ClientBase | pg.Pool = this.pool): Promise<DefaultRows> {
    const { rows } = await this.#query<{ count: number; estimate: number }>(
      client,
      `SELECT (SELECT count(*)::int FROM (SELECT FROM ONLY ${quoteIdentifier(DEFAULT_PARTITION)} LIMIT ${DEFAULT_ROWS_COUNTED + 1}) AS counted) AS count,
              (SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = $1::regclass) AS estimate`,
      [DEFAULT_PARTITION],
      DEFAULT_PARTITION,
    );
    const { count = 0, estimate = 0 } = rows[0] ?? {};
    return count > DEFAULT_ROWS_COUNTED
      ? { count: Math.max(count, Math.round(estimate)), estimated: true }
      : { count, estimated: false };
  }

  /**
   * pg_partman when it manages `metrics` or can be made to (installed here and creatable by this
   * role); otherwise the service, with the reason. Instances deciding at once on a new database
   * take turns to create it, so the later one finds it made instead of failing on the race.
   */
  async manager(): Promise<PartitionManager> {
    const found = await this.#partmanSchema();
    if (found.schema) return { kind: 'pg_partman', schema: found.schema };
    if (!found.available) {
      return { kind: 'service', reason: 'the pg_partman extension is not installed on the database server' };
    }
    try {
      // Together or not at all: no empty schema is left behind by a role that may not create it.
      await withTransaction(this.pool, 'BEGIN', async (client) => {
        await this.#query(client, PARTMAN_CREATION_LOCK);
        await this.#query(client, 'CREATE SCHEMA IF NOT EXISTS partman');
        await this.#query(client, 'CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman');
      });
    } catch (error) {
      const { message } = error as Error;
      return { kind: 'service', reason: `pg_partman could not be created in schema partman: ${message}` };
    }
    // Where it is: in partman, or wherever another instance or an operator put it first.
    return { kind: 'pg_partman', schema: (await this.#partmanSchema()).schema ?? 'partman' };
  }

  async #partmanSchema(): Promise<{ schema: string | null; available: boolean }> {
    const { rows } = await this.#query<{ schema: string | null; available: boolean }>(
      this.pool,
      `SELECT (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_partman') AS schema,
              EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_partman') AS available`,
    );
    return rows[0] ?? { schema: null, available: false };
  }

  /**
   * One maintenance pass, at most `policy.maxPartitions` partitions made or dropped, in this order:
   * the partitions ahead of now, those for the rows of the default partition, those past
   * retention (pg_partman only). Each is a transaction of its own; what does not fit is left for
   * the next pass. A dropped partition fires no DELETE trigger, so its transaction renews the
   * revision and announces the dropped range on metrics_changes: remembered aggregates and live
   * series see the rows go. Only a failure to read the catalog fails the pass.
   */
  async maintain(
    manager: PartitionManager,
    policy: MaintenancePolicy,
    now = new Date(),
  ): Promise<MaintenanceResult> {
    const step = this.#stepRunner(policy);
    const result: MaintenanceResult = {
      created: [],
      dropped: [],
      failed: [],
      deferred: 0,
      defaultRows: { count: 0, estimated: false },
    };
    const attempt = async <T>(partition: string, work: (client: pg.PoolClient) => Promise<T>) => {
      try {
        return await step(work);
      } catch (error) {
        result.failed.push({ partition, reason: (error as Error).message });
        return undefined;
      }
    };
    let budget = policy.maxPartitions;
    const make = async (ranges: Partition[]) => {
      for (const range of ranges) {
        if (budget === 0) {
          result.deferred++;
          continue;
        }
        budget--;
        if (await attempt(range.name, (client) => this.#makePartition(client, range)))
          result.created.push(range.name);
      }
    };

    let partman: PartmanTable | undefined;
    if (manager.kind === 'pg_partman') {
      partman = await attempt('metrics (pg_partman configuration)', (client) =>
        this.#partmanConfigure(client, manager.schema, policy, now),
      );
      if (partman && partman.sizeSeconds !== policy.sizeSeconds)
        result.partmanSizeSeconds = partman.sizeSeconds;
      if (!partman) {
        // Its partition size unknown, a partition made now might not be the size it makes.
        result.defaultRows = await this.defaultRows();
        return result;
      }
      result.created.push(...partman.created);
      budget = Math.max(0, budget - result.created.length);
    }
    const sizeSeconds = partman?.sizeSeconds ?? policy.sizeSeconds;
    const size = sizeSeconds * 1000;
    const existing = await this.list();
    const ahead = partitionStarts(now, new Date(now.getTime() + policy.premake * size), sizeSeconds);
    await make(missingRanges(ahead, sizeSeconds, existing));

    // Rows past retention stay where they are: a partition made for them would be dropped at once.
    const kept =
      policy.retentionSeconds === undefined
        ? undefined
        : new Date(now.getTime() - policy.retentionSeconds * 1000);
    // One more than the pass can make, so that more left for the next pass counts as deferred.
    const held = await this.#defaultRangeStarts(sizeSeconds, budget + 1, kept);
    await make(
      missingRanges(held, sizeSeconds, await this.list()).filter(
        (range) => kept === undefined || range.to > kept,
      ),
    );

    if (partman && policy.retentionSeconds !== undefined) {
      const expired = (await this.list()).filter((partition) => kept !== undefined && partition.to < kept);
      for (const partition of expired) {
        if (budget === 0) {
          result.deferred++;
          continue;
        }
        budget--;
        const dropped = await attempt(partition.name, (client) =>
          this.#dropPartition(client, partman, partition, policy.retentionSeconds as number),
        );
        if (dropped) result.dropped.push(...dropped);
      }
    }
    result.defaultRows = await this.defaultRows();
    return result;
  }

  /** Runs one step of a pass: a transaction of its own, bounded in time, one at a time across instances. */
  #stepRunner(policy: MaintenancePolicy) {
    const begin = `${BEGIN_UTC}; SET LOCAL lock_timeout = ${Math.round(policy.lockTimeoutMs)}; SET LOCAL statement_timeout = ${Math.round(policy.statementTimeoutMs)}`;
    return <T>(work: (client: pg.PoolClient) => Promise<T>) =>
      withTransaction(this.pool, begin, async (client) => {
        await this.#query(client, MAINTENANCE_LOCK);
        return work(client);
      });
  }

  /**
   * The starts of the partition-sized ranges the default partition holds rows of, earliest first,
   * at most `limit`, of those ending after `endingAfter`: one probe of its timestamp index per
   * range, whatever the rows.
   */
  async #defaultRangeStarts(
    sizeSeconds: number,
    limit: number,
    endingAfter: Date | undefined,
  ): Promise<Date[]> {
    const table = quoteIdentifier(DEFAULT_PARTITION);
    const { rows } = await this.#query<{ start: Date }>(
      this.pool,
      `WITH RECURSIVE held(start) AS (
         SELECT date_bin($1::interval, min("timestamp"), 'epoch') FROM ONLY ${table}
          WHERE "timestamp" >= coalesce($3::timestamptz - $1::interval, '-infinity')
         UNION ALL
         SELECT (SELECT date_bin($1::interval, min("timestamp"), 'epoch') FROM ONLY ${table}
                  WHERE "timestamp" >= held.start + $1::interval)
           FROM held WHERE held.start IS NOT NULL
       )
       SELECT start FROM held WHERE start IS NOT NULL LIMIT $2`,
      [`${sizeSeconds} seconds`, limit, endingAfter],
      DEFAULT_PARTITION,
    );
    return rows.map((row) => row.start);
  }

  /**
   * Makes one partition: a table of its own, the rows of its range moved into it from the default
   * partition, then attached. ATTACH PARTITION takes a SHARE UPDATE EXCLUSIVE lock on metrics,
   * which reads and writes do not wait for (CREATE TABLE ... PARTITION OF takes an ACCESS EXCLUSIVE
   * one). The rows move table to table, so none of metrics' statement triggers fires: no row
   * changes, and the rollups already count them. Made meanwhile by another instance: nothing.
   */
  async #makePartition(client: pg.PoolClient, range: Partition): Promise<boolean> {
    if ((await this.list(client)).some((partition) => overlaps(partition, range))) return false;
    const name = quoteIdentifier(range.name);
    await this.#query(client, `CREATE TABLE ${name} (LIKE ${METRICS} INCLUDING ALL)`);
    await this.#moveRows(client, DEFAULT_PARTITION, range);
    await this.#query(
      client,
      `ALTER TABLE ${METRICS} ATTACH PARTITION ${name} ${partitionBounds(range)}`,
      [],
      METRICS,
    );
    return true;
  }

  /** Drops one partition past retention with pg_partman, and announces it. */
  async #dropPartition(
    client: pg.PoolClient,
    partman: PartmanTable,
    partition: Partition,
    retentionSeconds: number,
  ): Promise<Partition[]> {
    const before = await this.list(client);
    // drop_partition_time drops every partition ending before its reference time less retention:
    // a reference just past this partition's end drops it (and none after it), one per transaction.
    await this.#query(
      client,
      `SELECT ${quoteIdentifier(partman.schema)}.drop_partition_time($1, $2::interval, p_keep_table := false, p_keep_index := false, p_reference_timestamp := $3)`,
      [
        partman.parent,
        `${retentionSeconds} seconds`,
        new Date(partition.to.getTime() + retentionSeconds * 1000 + 1),
      ],
    );
    const remaining = new Set((await this.list(client)).map((left) => left.name));
    const dropped = before.filter((left) => !remaining.has(left.name));
    if (dropped.length > 0) await this.#announceDropped(client, dropped);
    return dropped;
  }

  /**
   * Hands the table to pg_partman on the first pass, and keeps its configuration to the policy's:
   * retention, premake, and the two settings that keep its own run_maintenance (pg_cron, its
   * background worker) bounded too: partitions ahead of now, not of the newest row
   * (infinite_time_partitions), and the default partition's rows ignored (ignore_default_data).
   * Returns the partition size pg_partman keeps, and the partitions a handover made.
   */
  async #partmanConfigure(
    client: pg.PoolClient,
    schema: string,
    policy: MaintenancePolicy,
    now: Date,
  ): Promise<PartmanTable> {
    const partman = quoteIdentifier(schema);
    const partConfig = `${schema}.part_config`;
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
      partConfig,
    );
    const created = managed ? [] : await this.#handOver(client, partman, parent, policy, now);
    await this.#query(
      client,
      `UPDATE ${partman}.part_config
          SET retention = $2, retention_keep_table = false, retention_keep_index = false,
              premake = $3, infinite_time_partitions = true, ignore_default_data = true
        WHERE parent_table = $1`,
      [
        parent,
        policy.retentionSeconds === undefined ? null : `${policy.retentionSeconds} seconds`,
        policy.premake,
      ],
      partConfig,
    );
    const { rows } = await this.#query<{ seconds: number }>(
      client,
      `SELECT extract(epoch FROM partition_interval::interval)::int AS seconds FROM ${partman}.part_config WHERE parent_table = $1`,
      [parent],
      partConfig,
    );
    return { parent, schema, sizeSeconds: rows[0]?.seconds ?? policy.sizeSeconds, created };
  }

  /**
   * pg_partman's create_parent makes a default partition of its own, so the one the migration
   * made is detached first and set aside under another name, rows and all. create_parent starts at
   * the partition of now and premakes one (at most two partitions, normally made by the service
   * already, which it then leaves as they are); rows of any it makes move in from the old default,
   * partition to partition, and the old default takes the place of pg_partman's empty one. No row
   * passes through a statement on metrics, so no trigger sees a change, and a default holding
   * millions of rows (a back-fill written before its partitions were made) is attached again, not
   * copied.
   */
  async #handOver(
    client: pg.PoolClient,
    partman: string,
    parent: string,
    policy: MaintenancePolicy,
    now: Date,
  ): Promise<string[]> {
    const size = policy.sizeSeconds * 1000;
    const start = new Date(Math.floor(now.getTime() / size) * size);
    const existing = await this.list(client);
    const { rowCount: hadDefault } = await this.#query(
      client,
      `SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass AND c.relname = $2`,
      [METRICS, DEFAULT_PARTITION],
    );
    if (hadDefault) {
      await this.#query(
        client,
        `ALTER TABLE ${METRICS} DETACH PARTITION ${quoteIdentifier(DEFAULT_PARTITION)}`,
        [],
        METRICS,
      );
      await this.#query(
        client,
        `ALTER TABLE ${quoteIdentifier(DEFAULT_PARTITION)} RENAME TO ${quoteIdentifier(DEFAULT_BEFORE_PARTMAN)}`,
        [],
        DEFAULT_PARTITION,
      );
    }
    await this.#query(
      client,
      `SELECT ${partman}.create_parent($1, 'timestamp', 'native', $2, p_premake := 1, p_start_partition := $3, p_jobmon := false)`,
      [parent, `${policy.sizeSeconds} seconds`, start.toISOString()],
    );
    const known = new Set(existing.map((partition) => partition.name));
    const made = (await this.list(client)).filter((partition) => !known.has(partition.name));
    if (!hadDefault) return made.map((partition) => partition.name);
    for (const partition of made) await this.#moveRows(client, DEFAULT_BEFORE_PARTMAN, partition);
    await this.#query(
      client,
      `ALTER TABLE ${METRICS} DETACH PARTITION ${quoteIdentifier(DEFAULT_PARTITION)}`,
      [],
      METRICS,
    );
    await this.#query(client, `DROP TABLE ${quoteIdentifier(DEFAULT_PARTITION)}`, [], DEFAULT_PARTITION);
    await this.#query(
      client,
      `ALTER TABLE ${quoteIdentifier(DEFAULT_BEFORE_PARTMAN)} RENAME TO ${quoteIdentifier(DEFAULT_PARTITION)}`,
      [],
      DEFAULT_BEFORE_PARTMAN,
    );
    await this.#query(
      client,
      `ALTER TABLE ${METRICS} ATTACH PARTITION ${quoteIdentifier(DEFAULT_PARTITION)} DEFAULT`,
      [],
      METRICS,
    );
    return made.map((partition) => partition.name);
  }

  /**
   * Makes the partitions of `sizeSeconds` covering [from, to) that do not exist yet (for the
   * partitions command, in one transaction); returns their names. A range an
   * existing partition overlaps is left as it is.
   */
  create(from: Date, to: Date, sizeSeconds: number): Promise<string[]> {
    return withTransaction(this.pool, BEGIN_UTC, async (client) =>
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
    const missing = missingRanges(partitionStarts(from, to, sizeSeconds), sizeSeconds, existing);
    if (missing.length === 0) return [];
    const defaultPartition = quoteIdentifier(DEFAULT_PARTITION);
    const { rows } = await this.#query<{ held: boolean }>(
      client,
      `SELECT EXISTS (SELECT FROM ONLY ${defaultPartition} WHERE "timestamp" >= $1 AND "timestamp" < $2) AS held`,
      [missing[0]?.from, missing.at(-1)?.to],
      DEFAULT_PARTITION,
    );
    const moving = rows[0]?.held === true;
    if (moving)
      await this.#query(client, `ALTER TABLE ${METRICS} DETACH PARTITION ${defaultPartition}`, [], METRICS);
    for (const range of missing) {
      const name = quoteIdentifier(range.name);
      await this.#query(client, `CREATE TABLE ${name} PARTITION OF ${METRICS} ${partitionBounds(range)}`);
      if (moving) await this.#moveRows(client, DEFAULT_PARTITION, range);
    }
    if (moving)
      await this.#query(
        client,
        `ALTER TABLE ${METRICS} ATTACH PARTITION ${defaultPartition} DEFAULT`,
        [],
        METRICS,
      );
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
    await this.#query(client, `UPDATE ${REVISION} SET revision = gen_random_uuid()`, [], REVISION);
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

import type pg from 'pg';
import type { DatabaseAvailability } from '../database/availability.js';
import type { PostgresConnection } from '../database/connection.js';
import type { ProbeConnection } from '../database/probe-connection.js';
import { parseLsn, ReplayLag } from '../database/replay-lag.js';
import type { AnnouncedRows, StoredMetric } from '../domain/metric.js';
import type { Page, PageRequest, SortDirection } from '../domain/paging.js';
import {
  percentileSelection,
  type QuantileSketch,
  SKETCH_RELATIVE_ACCURACY,
  sketchQuantile,
} from '../domain/quantile-sketch.js';
import {
  levelsForBucket,
  levelWidthMs,
  ROLLUP_LEVELS,
  type RollupLevel,
  windowParts,
} from '../domain/rollup-plan.js';
import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary } from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import type { ConflictMode } from '../domain/writes.js';
import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { DatabaseTelemetry } from '../observability/database-telemetry.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { BatchSession, type ConflictMemory } from './batch-session.js';
import { MetricPartitions, type Partition, type PartitionIds, quoteIdentifier } from './metric-partitions.js';
import { fastTimestamptzTypes } from './pg-timestamptz.js';
import { partialAggregates, rawRowsOf, rollupRowsOf } from './rollup-sql.js';
import type { Batch, BatchResult, BatchTarget } from './sample-batch.js';
import type { StatementRunner } from './statement-runner.js';
import { METRICS, REVISION } from './tables.js';
import { withTransaction } from './transaction.js';

const METRICS_SQL = Prisma.raw(METRICS);
const CPU_PERCENTILES = [0.5, 0.95, 0.99];
/** The rollup levels that keep percentile sketches (the migration 20261203000000_metric_rollups_hourly_sketches). */
const SKETCH_LEVELS: RollupLevel[] = ['day', 'hour'];
/** PostgreSQL's SQLSTATE for a relation that does not exist. */
const UNDEFINED_TABLE = '42P01';
const REVISION_SQL = Prisma.raw(REVISION);

/** A read replica as readiness sees it. */
export interface ReplicaState {
  /** Whether its WAL receiver streams from the primary: a standby cut off from it serves stale reads. */
  streaming: boolean;
  /** How long ago the primary was at a position the standby has not replayed yet; 0: caught up. */
  lagSeconds: number;
}

/** An answer and the revision of `metrics_revision` in the snapshot it was computed from. */
export interface AtRevision<T> {
  revision: string;
  value: T;
}

/** A row of `SELECT id, "timestamp", cpu_load, concurrency`, as arrays (rowMode: 'array'). */
type MetricRow = [id: string, timestamp: Date, cpuLoad: number, concurrency: number];

function storedMetric([id, timestamp, cpuLoad, concurrency]: MetricRow): StoredMetric {
  return { id: BigInt(id), timestamp, cpuLoad, concurrency };
}

/** A bound on "timestamp" for the keyset page's WHERE clause. */
type Bound = readonly ['>=' | '>' | '<' | '<=', Date];

/**
 * The SQL of a keyset page: rows within `bounds`, in `direction`, at most `take`. Cursors are more
 * bounds on the timestamp, so Postgres answers every page, however deep, with one range scan of
 * the unique timestamp index.
 */
export function keysetPageQuery(
  bounds: readonly Bound[],
  direction: SortDirection,
  take: number,
): { text: string; values: unknown[] } {
  const values: unknown[] = [take];
  const conditions = bounds.map(([operator, value]) => {
    values.push(value);
    return `"timestamp" ${operator} $${values.length}`;
  });
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  const order = direction === 'asc' ? 'ASC' : 'DESC';
  return {
    text: `SELECT id, "timestamp", cpu_load, concurrency FROM ${METRICS}${where} ORDER BY "timestamp" ${order} LIMIT $1`,
    values,
  };
}

const boundsBetween = (from: number, to: number): Bound[] => [
  ...(from > Number.NEGATIVE_INFINITY ? [['>=', new Date(from)] as const] : []),
  ...(to < Number.POSITIVE_INFINITY ? [['<', new Date(to)] as const] : []),
];

/**
 * The statements a page is read with, as more bounds for each, in the page's order. On a table of
 * hundreds of partitions, one `ORDER BY "timestamp" LIMIT n` plans every partition the bounds
 * leave (~12 ms at 400) and opens an index scan in each under a Merge Append (~10 ms more): a
 * default partition rules out the planner's ordered scan of partitions. Cut at the partitions'
 * starts (`cuts`, ascending), the page is read a stretch at a time instead: the partition that
 * holds the page's first row, then the next two, four, and so on until the page is full. Each
 * statement is bounded in time only, so the rows are exact whatever partitions exist by now; the
 * cuts only decide how few partitions each statement plans. No cuts: one statement.
 */
export function pageSegments(
  bounds: readonly Bound[],
  direction: SortDirection,
  cuts: readonly number[],
): Bound[][] {
  let lowest = Number.NEGATIVE_INFINITY;
  let highest = Number.POSITIVE_INFINITY;
  for (const [operator, value] of bounds) {
    if (operator === '>=' || operator === '>') lowest = Math.max(lowest, value.getTime());
    else highest = Math.min(highest, value.getTime());
  }
  const edges = [
    Number.NEGATIVE_INFINITY,
    ...cuts.filter((cut) => cut > lowest && cut < highest),
    Number.POSITIVE_INFINITY,
  ];
  const count = edges.length - 1;
  const segments: Bound[][] = [];
  if (direction === 'asc') {
    for (let start = 0, size = 1; start < count; start += size, size *= 2) {
      segments.push(boundsBetween(edges[start] as number, edges[Math.min(start + size, count)] as number));
    }
  } else {
    for (let end = count, size = 1; end > 0; end -= size, size *= 2) {
      segments.push(boundsBetween(edges[Math.max(end - size, 0)] as number, edges[end] as number));
    }
  }
  return segments;
}

/** The keyset bounds of a page request: its window, and its cursors in the sort order. */
function pageBounds({ range, endInclusive, after, before, direction }: PageRequest): Bound[] {
  const ascending = direction === 'asc';
  // "after" means later in the order: later in time when ascending, earlier when descending.
  const earliest = ascending ? after : before;
  const latest = ascending ? before : after;
  const bounds: Bound[] = [];
  if (range.start) bounds.push(['>=', range.start]);
  if (earliest) bounds.push(['>', earliest]);
  // Of an exclusive end and a cursor, only the tighter is sent.
  if (range.end && !(latest && latest <= range.end)) bounds.push([endInclusive ? '<=' : '<', range.end]);
  else if (latest) bounds.push(['<', latest]);
  return bounds;
}

function rangeCondition(range: TimeRange): Prisma.Sql {
  return range.start || range.end ? Prisma.sql`WHERE ${rangeConditions(range)}` : Prisma.empty;
}

/** `start <= "timestamp" < end`, an open bound no condition: `true` when both are open. */
function rangeConditions({ start, end }: TimeRange): Prisma.Sql {
  const conditions = [
    start ? Prisma.sql`"timestamp" >= ${start}` : undefined,
    end ? Prisma.sql`"timestamp" < ${end}` : undefined,
  ].filter((condition) => condition !== undefined);
  return conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`true`;
}

/**
 * `value` cast to real and read back as pg reads a real: PostgreSQL prints the shortest decimal
 * that reads back as the same float4.
 */
function asReal(value: number): number {
  const real = Math.fround(value);
  for (let digits = 1; digits < 9; digits++) {
    const shortest = Number(real.toPrecision(digits));
    if (Math.fround(shortest) === real) return shortest;
  }
  return Number(real.toPrecision(9));
}

/**
 * Where a scan of a window's raw rows reads: the partitions that lie wholly inside the window,
 * each read whole by name, and what is left of the window (its edges, and any gap between those
 * partitions), read through metrics with the time bounds. PostgreSQL checks a window's time bounds
 * on every row of every partition it scans, even of one inside the window: on a day's partition
 * that check was a third of the scan. `partitions` in time order, as remembered at the last
 * refresh: one dropped since makes the statement fail with undefined_table (the caller reads
 * again through metrics), one made since is read through metrics, bounded.
 */
export function windowSources(
  partitions: readonly Partition[],
  { start, end }: TimeRange,
): { whole: Partition[]; rest: TimeRange[] } {
  const whole = partitions.filter(
    (partition) => (!start || partition.from >= start) && (!end || partition.to <= end),
  );
  const rest: TimeRange[] = [];
  let from = start;
  for (const partition of whole) {
    if (!from || from < partition.from) rest.push({ start: from, end: partition.from });
    from = partition.to;
  }
  if (!from || !end || from < end) rest.push({ start: from, end });
  return { whole, rest };
}

/** The statement reading cpu_load and concurrency of a window's raw rows from `windowSources`. */
function rowsOf(range: TimeRange, partitions: readonly Partition[]): Prisma.Sql {
  const { whole, rest } = windowSources(partitions, range);
  return Prisma.join(
    [
      ...whole.map(
        (partition) =>
          Prisma.sql`SELECT cpu_load, concurrency FROM ${Prisma.raw(quoteIdentifier(partition.name))}`,
      ),
      ...(rest.length > 0
        ? [
            Prisma.sql`SELECT cpu_load, concurrency FROM ${METRICS_SQL} WHERE ${Prisma.join(
              rest.map((part) => Prisma.sql`(${rangeConditions(part)})`),
              ' OR ',
            )}`,
          ]
        : []),
    ],
    ' UNION ALL ',
  );
}

const FLOAT4 = new Float32Array(1);
const FLOAT4_BITS = new Int32Array(FLOAT4.buffer);

/**
 * The largest float4 at or below `value`. For every float4 x, x > value exactly when
 * x > realAtOrBelow(value), and x <= value exactly when x <= realAtOrBelow(value).
 */
function realAtOrBelow(value: number): number {
  FLOAT4[0] = value;
  const rounded = FLOAT4[0] as number;
  if (rounded <= value) return rounded;
  // One float4 step towards -Infinity: the bit pattern's magnitude down for a positive value, up for a negative one.
  FLOAT4_BITS[0] = (FLOAT4_BITS[0] as number) + (rounded > 0 ? -1 : 1);
  return FLOAT4[0] as number;
}

/**
 * `column` inside any of `ranges` (`above` exclusive, `upTo` inclusive), as nested conditions in
 * ascending order: a value below the first range is refused by one comparison, and each range
 * passed costs one more, instead of two comparisons per range for every value.
 */
function withinAny(
  column: string,
  ranges: readonly { above: number; upTo: number }[],
  bound: (value: number) => Prisma.Sql,
): Prisma.Sql {
  const name = Prisma.raw(column);
  // Built from the highest range down, so that the lowest is tested first.
  const descending = [...ranges].sort((a, b) => b.above - a.above);
  let condition: Prisma.Sql = Prisma.sql`false`;
  for (const { above, upTo } of descending) {
    condition = Prisma.sql`(${name} > ${bound(above)} AND (${name} <= ${bound(upTo)} OR ${condition}))`;
  }
  return condition;
}

/** A window's totals and merged sketches, as one statement reads them. */
interface SummaryTotals {
  revision: string;
  count: number;
  first: Date | null;
  last: Date | null;
  cpu_min: number | null;
  cpu_max: number | null;
  cpu_avg: number | null;
  concurrency_min: number | null;
  concurrency_max: number | null;
  concurrency_avg: number | null;
  cpu_keys: number[] | null;
  cpu_counts: number[] | null;
  concurrency_keys: number[] | null;
  concurrency_counts: number[] | null;
}

function sketchesOf(totals: SummaryTotals): { cpu: QuantileSketch; concurrency: QuantileSketch } {
  return {
    cpu: { keys: totals.cpu_keys ?? [], counts: totals.cpu_counts ?? [] },
    concurrency: { keys: totals.concurrency_keys ?? [], counts: totals.concurrency_counts ?? [] },
  };
}

/** A server the store runs statements on: the primary, or the standby reads go to. */
interface Server {
  pool: pg.Pool;
  prisma: PrismaClient;
  /** Readiness's own connection (see ProbeConnection). */
  probe: ProbeConnection;
  /** Runs one statement, observed, with unavailability told apart from other failures. */
  observed: StatementRunner;
}

type ServerConnection = Pick<PostgresConnection, 'pool' | 'prisma' | 'probe' | 'availability'>;

function server(
  { pool, prisma, probe, availability }: ServerConnection,
  telemetry: DatabaseTelemetry | undefined,
): Server {
  const classified = (error: unknown): never => {
    throw availability.classify(error);
  };
  return {
    pool,
    prisma,
    probe,
    observed: (operation, text, values, run, scope) =>
      (telemetry ? telemetry.statement(operation, text, values, run, scope) : run()).catch(classified),
  };
}

/**
 * Every statement on `metrics` and `metrics_revision`. Errors that mean the database is away come
 * out as DatabaseUnavailableError (see database/availability.ts); any other error is a failed
 * statement and comes out as it is.
 */
export class MetricStore implements BatchTarget {
  readonly #primary: Server;
  /** The primary, or the streaming standby that reads go to. */
  readonly #reads: Server;
  readonly #availability: DatabaseAvailability;
  readonly #copyFromStdin: boolean;
  readonly #exactPercentileMaxRows: number;
  readonly #conflicts: ConflictMemory = { lastBatchConflicted: false };
  /** This store with every read on the primary: for a client that must see its own writes, and for live updates. */
  readonly primary: MetricStore;
  /** Where the replica's replay is behind the primary's positions, probe by probe (readiness). */
  readonly #replayLag = new ReplayLag();
  /** The partitions of `metrics`, on the primary. */
  readonly partitions: MetricPartitions;
  /** Each partition's ids, in time order, as of the last refreshPartitions(); see findById. */
  #partitionIds: PartitionIds[] = [];
  /** The partitions' starts but the first, ascending, as of the last refresh; see pageSegments. */
  #partitionCuts: number[] = [];
  #largestPartitionedId = 0n;

  /**
   * `telemetry` times and traces each statement; without it statements run unobserved. With a
   * `replica`, a streaming standby, pages, summaries, series and the revision checked before a
   * remembered answer is reused are read there; everything else runs on the primary.
   * `exactPercentileMaxRows`: summaries of at most this many rows get exact percentiles.
   */
  constructor(
    primary: ServerConnection & Pick<PostgresConnection, 'copyFromStdin'>,
    telemetry?: DatabaseTelemetry,
    replica?: {
      connection: ServerConnection;
      telemetry?: DatabaseTelemetry | undefined;
    },
    { exactPercentileMaxRows = 1_000_000 }: { exactPercentileMaxRows?: number } = {},
  ) {
    this.#availability = primary.availability;
    this.#copyFromStdin = primary.copyFromStdin;
    this.#exactPercentileMaxRows = exactPercentileMaxRows;
    this.#primary = server(primary, telemetry);
    this.#reads = replica ? server(replica.connection, replica.telemetry) : this.#primary;
    this.primary = replica
      ? new MetricStore(primary, telemetry, undefined, { exactPercentileMaxRows })
      : this;
    this.partitions = new MetricPartitions(this.#primary.pool, this.#primary.observed);
  }

  #classified = (error: unknown): never => {
    throw this.#availability.classify(error);
  };

  /** A query on `on`'s pool, rows as arrays: pg would otherwise build an object per row only for it to be mapped. */
  #arrays<Row extends unknown[]>(
    on: Server,
    summary: string,
    text: string,
    values: unknown[],
    scope: OperationScope | undefined,
    types?: typeof fastTimestamptzTypes,
  ) {
    return on.observed(
      summary,
      text,
      values,
      () => on.pool.query<Row>({ text, values, rowMode: 'array', ...(types ? { types } : {}) }),
      scope,
    );
  }

  /** A Prisma raw query on `on`, observed under its SQL text. */
  #raw<Row>(on: Server, operation: string, sql: Prisma.Sql, scope?: OperationScope): Promise<Row[]> {
    return on.observed(operation, sql.text, sql.values, () => on.prisma.$queryRaw<Row[]>(sql), scope);
  }

  /**
   * One page of samples, by keyset: the page size plus one row tells whether there are more. Every
   * read takes the `scope` of the request it serves, where its statements are recorded.
   */
  async page(request: PageRequest, scope?: OperationScope): Promise<Page<StoredMetric>> {
    const flipped: SortDirection = request.direction === 'asc' ? 'desc' : 'asc';
    const direction = request.fromEnd ? flipped : request.direction;
    const bounds = pageBounds(request);
    const take = request.size + 1;
    const rows: MetricRow[] = [];
    for (const segment of pageSegments(bounds, direction, this.#partitionCuts)) {
      const query = keysetPageQuery([...bounds, ...segment], direction, take - rows.length);
      const read = await this.#arrays<MetricRow>(
        this.#reads,
        'SELECT metrics',
        query.text,
        query.values,
        scope,
        fastTimestamptzTypes,
      );
      rows.push(...read.rows);
      if (rows.length >= take) break;
    }
    const hasMore = rows.length > request.size;
    const page = rows.slice(0, request.size).map(storedMetric);
    if (request.fromEnd) page.reverse();
    return { rows: page, hasMore };
  }

  /** The row with this id, or null: findByIds for one id. */
  async findById(id: bigint, scope?: OperationScope): Promise<StoredMetric | null> {
    const [metric] = await this.findByIds([id], scope);
    return metric ?? null;
  }

  /**
   * The rows with these ids, in their order (null where none). `id` has an index in every
   * partition, so `WHERE id = ...` alone probes each of them (about 15 ms at 400 partitions); the
   * store remembers each partition's smallest and largest id (refreshPartitions, at every
   * maintenance pass) and first looks only in the time span of the partitions whose ids include
   * these, or, for an id newer than any it knows, in the partitions from the newest one it knows
   * onwards. Ids grow with commit order, so that is one partition or two for ids written together.
   * Ids not found there (rows that do not exist, or were back-filled into an old partition since)
   * are looked up in every partition: the answer is always exact, only sometimes slower. Two
   * statements at most, whatever the number of ids.
   */
  async findByIds(ids: readonly bigint[], scope?: OperationScope): Promise<(StoredMetric | null)[]> {
    const found = new Map<bigint, StoredMetric>();
    const read = async (wanted: bigint[], span?: { from: Date; to: Date | undefined }) => {
      const values: unknown[] = [wanted.map(String)];
      let condition = 'id = ANY($1::bigint[])';
      if (span) {
        values.push(span.from);
        condition += ' AND "timestamp" >= $2';
        if (span.to) {
          values.push(span.to);
          condition += ' AND "timestamp" < $3';
        }
      }
      const { rows } = await this.#arrays<MetricRow>(
        this.#reads,
        'SELECT metrics',
        `SELECT id, "timestamp", cpu_load, concurrency FROM ${METRICS} WHERE ${condition}`,
        values,
        scope,
        fastTimestamptzTypes,
      );
      for (const row of rows) {
        const metric = storedMetric(row);
        found.set(metric.id, metric);
      }
    };
    const distinct = [...new Set(ids)];
    const spans = distinct.map((id) => this.#spanOf(id));
    if (distinct.length > 0 && spans.every((span) => span !== undefined)) {
      const from = new Date(Math.min(...spans.map((span) => span.from.getTime())));
      const to = spans.some((span) => span.to === undefined)
        ? undefined
        : new Date(Math.max(...spans.map((span) => (span.to as Date).getTime())));
      await read(distinct, { from, to });
    }
    const missing = distinct.filter((id) => !found.has(id));
    if (missing.length > 0) await read(missing);
    return ids.map((id) => found.get(id) ?? null);
  }

  /** The time span to look for an id in first, from the remembered id ranges; undefined: anywhere. */
  #spanOf(id: bigint): { from: Date; to: Date | undefined } | undefined {
    const ranges = this.#partitionIds;
    if (id > this.#largestPartitionedId) {
      const newest = ranges.findLast((range) => range.maxId === this.#largestPartitionedId);
      return newest && { from: newest.from, to: undefined };
    }
    const holding = ranges.filter((range) => range.minId <= id && id <= range.maxId);
    const first = holding[0];
    const last = holding.at(-1);
    return first && last && { from: first.from, to: last.to };
  }

  /**
   * Reads the partitions and each one's smallest and largest id again (two index probes a
   * partition), for findById and page; the maintenance pass calls it.
   */
  async refreshPartitions(): Promise<void> {
    const partitions = await this.partitions.list();
    const ranges = await this.partitions.idRanges(partitions);
    let largest = 0n;
    for (const range of ranges) if (range.maxId > largest) largest = range.maxId;
    const cuts = partitions.slice(1).map((partition) => partition.from.getTime());
    // The primary's own store (reads of live updates, X-Read-From: primary) uses them too.
    for (const store of new Set([this, this.primary])) {
      store.#partitionIds = ranges;
      store.#largestPartitionedId = largest;
      store.#partitionCuts = cuts;
    }
  }

  /**
   * Samples inserted after the one with id `afterId`, in id order, which is the order their
   * transactions committed in (see live/change-feed.ts); with `start`, only those taken from then on.
   */
  async addedSince(
    afterId: bigint,
    limit: number,
    start?: Date,
    scope?: OperationScope,
  ): Promise<StoredMetric[]> {
    const values: unknown[] = [afterId.toString(), limit];
    if (start) values.push(start);
    const { rows } = await this.#arrays<MetricRow>(
      this.#primary,
      'SELECT metrics',
      `SELECT id, "timestamp", cpu_load, concurrency FROM ${METRICS} WHERE id > $1${start ? ' AND "timestamp" >= $3' : ''} ORDER BY id LIMIT $2`,
      values,
      scope,
      fastTimestamptzTypes,
    );
    return rows.map(storedMetric);
  }

  /**
   * addedSince() narrowed to what notifications announced: ids up to `announced.lastId`, timestamps
   * within [`announced.from`, `announced.to`]. The time bounds let PostgreSQL read only the
   * partitions those writes touched; `id > $1` alone opens every partition's id index.
   */
  async announcedSince(afterId: bigint, announced: AnnouncedRows, limit: number): Promise<StoredMetric[]> {
    const { rows } = await this.#arrays<MetricRow>(
      this.#primary,
      'SELECT metrics',
      `SELECT id, "timestamp", cpu_load, concurrency FROM ${METRICS} WHERE id > $1 AND id <= $2 AND "timestamp" >= $3 AND "timestamp" <= $4 ORDER BY id LIMIT $5`,
      [afterId.toString(), announced.lastId.toString(), announced.from, announced.to, limit],
      undefined,
      fastTimestamptzTypes,
    );
    return rows.map(storedMetric);
  }

  /** The largest id stored, 0 for an empty table: where "from now on" begins. */
  async lastId(): Promise<bigint> {
    const { rows } = await this.#arrays<[id: string]>(
      this.#primary,
      'SELECT metrics',
      `SELECT coalesce(max(id), 0)::text FROM ${METRICS}`,
      [],
      undefined,
    );
    return BigInt(rows[0]?.[0] ?? 0);
  }

  async count(range: TimeRange, scope?: OperationScope): Promise<number> {
    const [row] = await this.#raw<{ count: number }>(
      this.#reads,
      'SELECT metrics',
      Prisma.sql`SELECT count(*)::int AS count FROM ${METRICS_SQL} ${rangeCondition(range)}`,
      scope,
    );
    return row?.count ?? 0;
  }

  /** The current revision of the data in metrics (see the metrics_revision migration). */
  async revision(scope?: OperationScope): Promise<string> {
    const { rows } = await this.#arrays<[revision: string]>(
      this.#reads,
      'SELECT metrics_revision',
      `SELECT revision FROM ${REVISION}`,
      [],
      scope,
    );
    const [row] = rows;
    if (!row) throw new Error(`${REVISION} has no row: apply the migrations`);
    return row[0];
  }

  /**
   * Count, first and last, extremes, means and percentiles of a window, with the revision, all read
   * in one snapshot (a read-only REPEATABLE READ transaction; see aggregate-cache.ts). The window's
   * whole days, hours and minutes are read from the rollups and only its unaligned edges from raw
   * rows (see domain/rollup-plan.ts): count, extremes and means come out as a scan of raw rows
   * gives them. Percentiles are percentile_cont over raw rows when the window holds at most
   * `exactPercentileMaxRows` rows, all of them still stored; otherwise they come from the merged
   * sketches, within SKETCH_RELATIVE_ACCURACY (domain/quantile-sketch.ts). Each statement runs
   * only when the one before says it is needed: a query over the raw rows of a year is planned
   * over every partition, and its estimated cost alone made PostgreSQL JIT-compile it (5 s), so
   * JIT is off in this transaction too. cpu_load is stored as `real`, so its aggregates are
   * returned at `real` precision: a double would print float4 noise such as 0.30000001192092896
   * for a stored 0.3.
   */
  async summary(range: TimeRange, scope?: OperationScope): Promise<AtRevision<MetricSummary>> {
    const parts = windowParts(
      range,
      ROLLUP_LEVELS.map(({ level }) => level),
    );
    // Minutes carry no sketch: the sketches come from whole hours and days, and the raw rows of
    // the rest of the window (under an hour at either end). The whole hours and days are the same
    // with minutes as a level or without (windowParts), so they are read once, for both.
    const sketchParts = windowParts(range, SKETCH_LEVELS);
    const window = Prisma.sql`
      raw AS MATERIALIZED (${rawRowsOf(parts)}),
      sketch_raw AS MATERIALIZED (${rawRowsOf(sketchParts)}),
      rolled AS MATERIALIZED (${rollupRowsOf(sketchParts)}),
      minutes AS MATERIALIZED (${rollupRowsOf(parts.filter(({ source }) => source === 'minute'))})`;
    const windowTotals = Prisma.sql`
    SELECT (SELECT revision FROM ${REVISION_SQL})::text AS revision,
           coalesce(sum(n), 0)::int AS count, min(first) AS first, max(last) AS last,
           min(cpu_min) AS cpu_min, max(cpu_max) AS cpu_max, (sum(cpu_sum) / sum(n)::float8)::real AS cpu_avg,
           min(concurrency_min) AS concurrency_min, max(concurrency_max) AS concurrency_max,
           (sum(concurrency_sum) / sum(n))::float8 AS concurrency_avg
      FROM (${partialAggregates(
        Prisma.sql`SELECT * FROM rolled UNION ALL SELECT * FROM minutes`,
        Prisma.sql`SELECT * FROM raw`,
      )}) AS parts`;
    const exactSql = Prisma.sql`
    SELECT count(*)::int AS count,
           (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
      FROM ${METRICS_SQL} ${rangeCondition(range)}`;
    const sketch = (column: 'cpu_load' | 'concurrency') => Prisma.sql`
      SELECT array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
        FROM (SELECT key, sum(n)::float8 AS n
                FROM (SELECT s.key, s.n FROM rolled, unnest(${Prisma.raw(`${column}_sketch_keys`)}, ${Prisma.raw(`${column}_sketch_counts`)}) AS s(key, n)
                      UNION ALL
                      SELECT metric_sketch_key(${Prisma.raw(column)}), 1 FROM sketch_raw) AS keyed
               GROUP BY key) AS merged`;
    // Totals and sketches in one statement: one round trip, one snapshot.
    const totalsSql = Prisma.sql`
    WITH ${window}
    SELECT * FROM (${windowTotals}) AS totals,
           (SELECT keys AS cpu_keys, counts AS cpu_counts FROM (${sketch('cpu_load')}) AS merged) AS cpu,
           (SELECT keys AS concurrency_keys, counts AS concurrency_counts FROM (${sketch('concurrency')}) AS merged) AS concurrency`;

    const read = (byName: boolean) =>
      this.#inSnapshot(this.#reads, async (query) => {
        const [totals] = await query<SummaryTotals>(totalsSql, scope);
        if (!totals) throw new Error('An aggregate query returned no row');
        if (totals.count === 0) {
          return { totals, exact: { count: 0, cpu_percentiles: [], concurrency_p95: null } };
        }
        if (totals.count > this.#exactPercentileMaxRows) return { totals, exact: undefined };
        const selected = await this.#selectedPercentiles(query, range, totals, byName, scope);
        if (selected) return { totals, exact: selected };
        const [exact] = await query<{
          count: number;
          cpu_percentiles: number[] | null;
          concurrency_p95: number | null;
        }>(exactSql, scope);
        // Fewer raw rows than the rollups count: some were dropped by retention.
        return { totals, exact: exact && exact.count === totals.count ? exact : undefined };
      });
    // A partition read by name was dropped since the last refresh (another instance's retention
    // pass): read again, through metrics only.
    const { totals, exact } = await read(true).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === UNDEFINED_TABLE) return read(false);
      throw error;
    });
    let percentiles: { cpu: (number | null)[]; concurrencyP95: number | null };
    if (exact) {
      percentiles = { cpu: exact.cpu_percentiles ?? [], concurrencyP95: exact.concurrency_p95 };
    } else {
      const { cpu, concurrency } = sketchesOf(totals);
      percentiles = {
        cpu: CPU_PERCENTILES.map((fraction) => sketchQuantile(cpu, fraction)),
        concurrencyP95: sketchQuantile(concurrency, 0.95),
      };
    }
    const [p50 = null, p95 = null, p99 = null] = percentiles.cpu;
    return {
      revision: totals.revision,
      value: {
        count: totals.count,
        firstTimestamp: totals.first,
        lastTimestamp: totals.last,
        cpuLoad: { min: totals.cpu_min, max: totals.cpu_max, avg: totals.cpu_avg, p50, p95, p99 },
        concurrency: {
          min: totals.concurrency_min,
          max: totals.concurrency_max,
          avg: totals.concurrency_avg,
          p95: percentiles.concurrencyP95,
        },
        percentilesExact: exact !== undefined,
        percentileRelativeError: exact ? 0 : SKETCH_RELATIVE_ACCURACY,
      },
    };
  }

  /**
   * Exact percentiles (as percentile_cont gives them) without sorting the window: the window's
   * sketch tells which bucket holds each rank percentile_cont reads and how many values lie below
   * it (domain/quantile-sketch.ts), so one scan of the raw rows collects only the values inside
   * those buckets, and counts the rows; partitions wholly inside the window are read by name
   * (windowSources), unless `byName` is false. Undefined when the raw rows are not all there (retention)
   * or the sketch does not describe them: the caller then sorts.
   */
  async #selectedPercentiles(
    query: <Row>(sql: Prisma.Sql, scope?: OperationScope) => Promise<Row[]>,
    range: TimeRange,
    totals: SummaryTotals,
    byName: boolean,
    scope: OperationScope | undefined,
  ): Promise<{ count: number; cpu_percentiles: number[]; concurrency_p95: number } | undefined> {
    const sketches = sketchesOf(totals);
    const cpu = percentileSelection(sketches.cpu, CPU_PERCENTILES);
    const concurrency = percentileSelection(sketches.concurrency, [0.95]);
    // cpu_load is real and concurrency integer: bounds of their own types compare without a cast
    // per row (a third of the scan), and equal the float8 ranges on every value of those types.
    const cpuBounds = (value: number) => Prisma.sql`${realAtOrBelow(value)}::real`;
    const concurrencyBounds = (value: number) => Prisma.sql`${Math.floor(value)}::bigint`;
    const [row] = await query<{
      count: number;
      cpu_values: number[] | null;
      concurrency_values: number[] | null;
    }>(
      Prisma.sql`
    SELECT count(*)::int AS count,
           array_agg(cpu_load::float8) FILTER (WHERE ${withinAny('cpu_load', cpu.ranges, cpuBounds)}) AS cpu_values,
           array_agg(concurrency) FILTER (WHERE ${withinAny('concurrency', concurrency.ranges, concurrencyBounds)}) AS concurrency_values
      FROM (${rowsOf(range, byName ? this.#partitionIds : [])}) AS window_rows`,
      scope,
    );
    if (!row || row.count !== totals.count) return undefined;
    const cpuPercentiles = cpu.percentiles(row.cpu_values ?? []);
    const [concurrencyP95] = concurrency.percentiles(row.concurrency_values ?? []) ?? [];
    if (!cpuPercentiles || concurrencyP95 === undefined) return undefined;
    // percentile_cont over cpu_load is cast to real, as the sorting statement does.
    return { count: row.count, cpu_percentiles: cpuPercentiles.map(asReal), concurrency_p95: concurrencyP95 };
  }

  /**
   * Runs `work`'s statements on one connection of `on`, in one read-only snapshot, JIT off (every
   * statement here is short; compiling one costs more than running it). Statements are observed
   * like any other.
   */
  #inSnapshot<T>(
    on: Server,
    work: (query: <Row>(sql: Prisma.Sql, scope?: OperationScope) => Promise<Row[]>) => Promise<T>,
  ): Promise<T> {
    // One round trip opens the snapshot and turns JIT off for it.
    const begin = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off';
    return this.#transaction(on, begin, async (client) =>
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

  /**
   * Buckets of `bucketSeconds` aligned to the Unix epoch; empty buckets are absent. One query. A
   * bucket that is a multiple of a minute reads the coarsest rollups whose width divides it, and
   * raw rows only for the window's unaligned edges; count, extremes and means are those of the
   * raw rows either way.
   */
  async series(
    range: Required<TimeRange>,
    bucketSeconds: number,
    scope?: OperationScope,
  ): Promise<AtRevision<MetricBucket[]>> {
    const parts = windowParts(range, levelsForBucket(bucketSeconds));
    // A rollup row as wide as the bucket is the bucket: read in its index's order, not grouped.
    // The rest (finer rollups and raw rows at the window's edges) is grouped into buckets.
    const whole = parts.filter(
      ({ source }) => source !== 'raw' && levelWidthMs(source) === bucketSeconds * 1000,
    );
    const grouped = parts.filter((part) => !whole.includes(part));
    const sql = Prisma.sql`
    -- The revision in a row of its own, so that an empty series still has it.
    SELECT (SELECT revision FROM ${REVISION_SQL})::text AS revision, NULL::timestamptz AS bucket,
           NULL::int AS count, NULL::real AS cpu_min, NULL::real AS cpu_max, NULL::real AS cpu_avg,
           NULL::int AS concurrency_min, NULL::int AS concurrency_max, NULL::float8 AS concurrency_avg
    UNION ALL
    SELECT NULL, bucket, row_count::int, cpu_load_min, cpu_load_max, (cpu_load_sum / row_count::float8)::real,
           concurrency_min, concurrency_max, (concurrency_sum::numeric / row_count::numeric)::float8
      FROM (${rollupRowsOf(whole)}) AS whole
    UNION ALL
    SELECT NULL, date_bin(make_interval(secs => ${bucketSeconds}::int), at, TIMESTAMPTZ 'epoch'),
           sum(n)::int, min(cpu_min), max(cpu_max), (sum(cpu_sum) / sum(n)::float8)::real,
           min(concurrency_min), max(concurrency_max), (sum(concurrency_sum) / sum(n))::float8
      FROM (${partialAggregates(rollupRowsOf(grouped), rawRowsOf(grouped))}) AS parts
     GROUP BY 2`;
    // As arrays, through pg: a year by hour is 8,760 rows, and Prisma's raw mapping of each cost
    // more than the query.
    const { rows } = await this.#arrays<
      [
        revision: string | null,
        bucket: Date | null,
        count: number,
        cpuMin: number,
        cpuMax: number,
        cpuAvg: number,
        concurrencyMin: number,
        concurrencyMax: number,
        concurrencyAvg: number,
      ]
    >(this.#reads, 'SELECT', sql.text, sql.values, scope, fastTimestamptzTypes);
    let revision: string | null = null;
    const value: MetricBucket[] = [];
    for (const [
      rowRevision,
      bucket,
      count,
      cpuMin,
      cpuMax,
      cpuAvg,
      concurrencyMin,
      concurrencyMax,
      concurrencyAvg,
    ] of rows) {
      if (bucket === null) {
        revision = rowRevision;
        continue;
      }
      value.push({
        start: bucket,
        count,
        cpuLoad: { min: cpuMin, max: cpuMax, avg: cpuAvg },
        concurrency: { min: concurrencyMin, max: concurrencyMax, avg: concurrencyAvg },
      });
    }
    if (revision === null) throw new Error(`${REVISION} has no row: apply the migrations`);
    // Whole rollup rows come mostly in bucket order and the edges' groups after them: nearly
    // sorted, which Array#sort (TimSort) takes in one pass.
    value.sort((a, b) => a.start.getTime() - b.start.getTime());
    return { revision, value };
  }

  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    return this.inTransaction((target) => target.writeBatch(batch, mode, wantIds));
  }

  /**
   * Runs `work` in one transaction on one connection: its batches are stored together or not at all.
   * Its statements are recorded in `scope`, the request's, and traced under it.
   */
  inTransaction<T>(work: (target: BatchTarget) => Promise<T>, scope?: OperationScope): Promise<T> {
    return this.#transaction(this.#primary, 'BEGIN', (client) =>
      work(
        new BatchSession(client, {
          copyFromStdin: this.#copyFromStdin,
          observed: (summary, text, values, run, own) =>
            this.#primary.observed(summary, text, values, run, own ?? scope),
          conflicts: this.#conflicts,
        }),
      ),
    );
  }

  /** `work` on one connection of `on`, in a transaction `begin` opens; committed, or rolled back on failure. */
  #transaction<T>(on: Server, begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(on.pool, begin, work).catch(this.#classified);
  }

  /** Whether the primary answers a trivial query within `timeoutMs`, on readiness's own connection. */
  async ping(timeoutMs: number): Promise<void> {
    await this.#primary.probe.query('SELECT 1', timeoutMs, 'the database');
  }

  /**
   * The read replica as readiness sees it, on the probe connections: whether its WAL receiver is
   * streaming from the primary, and how far its replay is behind the primary's position
   * (ReplayLag). Undefined without a replica. Fails when either server does not answer within
   * `timeoutMs`, and when the replica is not a standby at all.
   */
  async replicaState(timeoutMs: number): Promise<ReplicaState | undefined> {
    if (this.#reads === this.#primary) return undefined;
    const [primaryPosition] =
      (await this.#primary.probe.query<[position: string]>(
        'SELECT pg_current_wal_flush_lsn()::text',
        timeoutMs,
        'the database',
      )) ?? [];
    if (primaryPosition === undefined) throw new Error('the database gave no WAL position');
    this.#replayLag.primaryAt(parseLsn(primaryPosition), Date.now());
    // Without pg_read_all_stats, pg_stat_wal_receiver shows only the receiver's pid: a receiver
    // that exists then counts as streaming, and the lag tells the rest.
    const [replayed, receiverStatus, receiverPid] =
      (await this.#reads.probe.query<[replayed: string | null, status: string | null, pid: number | null]>(
        'SELECT pg_last_wal_replay_lsn()::text, r.status, r.pid FROM (SELECT) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true',
        timeoutMs,
        'the read replica',
      )) ?? [];
    if (replayed == null) throw new Error('the read replica is not a standby (it replays no WAL)');
    return {
      streaming: receiverStatus == null ? receiverPid != null : receiverStatus === 'streaming',
      lagSeconds: this.#replayLag.lagSeconds(parseLsn(replayed), Date.now()),
    };
  }

  /** Whether the metrics table exists, i.e. the migrations were applied. */
  async tableExists(): Promise<boolean> {
    const { rows } = await this.#arrays<[table: string | null]>(
      this.#primary,
      'SELECT',
      'SELECT to_regclass($1)::text',
      [METRICS],
      undefined,
    );
    return Boolean(rows[0]?.[0]);
  }

  async isEmpty(): Promise<boolean> {
    const { rows } = await this.#arrays<[exists: boolean]>(
      this.#primary,
      'SELECT metrics',
      `SELECT EXISTS (SELECT 1 FROM ${METRICS})`,
      [],
      undefined,
    );
    return !rows[0]?.[0];
  }

  /**
   * The plan PostgreSQL would choose for a read this store ran, for the slow-operation log:
   * EXPLAIN without ANALYZE, so nothing runs again, and never for a write.
   */
  async explain(text: string, values: readonly unknown[]): Promise<unknown> {
    if (!/^\s*(SELECT|WITH)\b/i.test(text) || /\b(INSERT|UPDATE|DELETE)\b/i.test(text)) return undefined;
    const { rows } = await this.#reads.pool
      .query<[plan: unknown]>({
        text: `EXPLAIN (FORMAT JSON) ${text}`,
        values: [...values],
        rowMode: 'array',
      })
      .catch(this.#classified);
    return rows[0]?.[0];
  }
}

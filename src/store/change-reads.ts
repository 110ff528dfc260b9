import type { AnnouncedRows, StoredMetric } from '../domain/metric.js';
import type { SourceFilter } from '../domain/source.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { selectMetrics } from './metric-rows.js';
import { arrays, type Server } from './server.js';
import { filterError, isFiltered, selectSources, sourceCondition, sourcesWhere } from './source-filter.js';
import { METRICS, SOURCES } from './tables.js';

/**
 * Filters evaluated by one statement of sourcesSelectedBy: each takes at most 33 parameters (its
 * names and 16 matchers' names and values), well within PostgreSQL's 65,535 a statement.
 */
const FILTERS_PER_STATEMENT = 256;

/** What addedSince keeps: samples taken from `start` on, of the sources `filter` selects (now). */
export interface AddedRows {
  start?: Date | undefined;
  filter?: SourceFilter | undefined;
}

/**
 * The change feed's reads (live/change-feed.ts), on the primary, where its notifications come
 * from: a standby may not have replayed yet what one announced.
 */
export class ChangeReads {
  constructor(private readonly primary: Server) {}

  /**
   * Samples inserted after the one with id `afterId`, in id order, which is the order their
   * transactions committed in (see live/change-feed.ts); with `start`, only those taken from then
   * on; with a `filter`, only those of the sources it selects when the read runs (resolved to ids
   * first, by selectSources).
   */
  async addedSince(
    afterId: bigint,
    limit: number,
    { start, filter }: AddedRows = {},
    scope?: OperationScope,
  ): Promise<StoredMetric[]> {
    let sources = Prisma.empty;
    if (isFiltered(filter)) {
      const selection = await selectSources(this.primary, filter, scope);
      if (!selection.all && selection.ids.length === 0) return [];
      sources = Prisma.sql` AND ${sourceCondition(selection)}`;
    }
    const since = start ? Prisma.sql` AND "timestamp" >= ${start}` : Prisma.empty;
    const rest = Prisma.sql` WHERE id > ${afterId.toString()}${since}${sources} ORDER BY id LIMIT ${limit}`;
    return selectMetrics(this.primary, rest.text, rest.values, scope);
  }

  /**
   * addedSince() narrowed to what notifications announced: ids up to `announced.lastId`, timestamps
   * within [`announced.from`, `announced.to`]. The time bounds let PostgreSQL read only the
   * partitions those writes touched; `id > $1` alone opens every partition's id index.
   */
  announcedSince(afterId: bigint, announced: AnnouncedRows, limit: number): Promise<StoredMetric[]> {
    return selectMetrics(
      this.primary,
      ' WHERE id > $1 AND id <= $2 AND "timestamp" >= $3 AND "timestamp" <= $4 ORDER BY id LIMIT $5',
      [afterId.toString(), announced.lastId.toString(), announced.from, announced.to, limit],
      undefined,
    );
  }

  /**
   * For each of `filters`, which of these sources it selects now: one statement evaluates every
   * filter on each source once (a few statements past FILTERS_PER_STATEMENT filters), whatever the
   * number of subscribers asking. The change feed sorts a read's rows with it.
   */
  async sourcesSelectedBy(
    sourceIds: readonly number[],
    filters: readonly SourceFilter[],
  ): Promise<ReadonlySet<number>[]> {
    const selected = filters.map(() => new Set<number>());
    if (sourceIds.length === 0) return selected;
    for (let first = 0; first < filters.length; first += FILTERS_PER_STATEMENT) {
      const each = filters
        .slice(first, first + FILTERS_PER_STATEMENT)
        .map(
          (filter, index) =>
            Prisma.sql`CASE WHEN ${sourcesWhere(filter)} THEN ${Prisma.raw(String(index))} END`,
        );
      const statement = Prisma.sql`
        SELECT id, matched
          FROM (SELECT id, array_remove(ARRAY[${Prisma.join(each)}], NULL) AS matched
                  FROM ${Prisma.raw(SOURCES)} WHERE id = ANY(${sourceIds}::int[])) AS classified
         WHERE cardinality(matched) > 0`;
      const { rows } = await arrays<[id: number, matched: number[]]>(
        this.primary,
        'SELECT sources',
        statement.text,
        statement.values,
        undefined,
      );
      for (const [id, matched] of rows) {
        for (const index of matched) selected[first + index]?.add(id);
      }
    }
    return selected;
  }

  /**
   * Refuses, as InvalidSourceFilterError, a filter with a regular expression PostgreSQL cannot
   * compile, before anything depends on it: each regular expression is evaluated once, on a source
   * without labels, where no other condition can spare it. (Evaluated on `sources`, a matcher
   * after a name or a label no source has may never run, and fail later, for a new source.)
   */
  async checkEvaluable(filter: SourceFilter): Promise<void> {
    const expressions = (filter.labels ?? []).filter(
      ({ operator }) => operator === '=~' || operator === '!~',
    );
    if (expressions.length === 0) return;
    const each = expressions.map((matcher) => sourcesWhere({ labels: [matcher] }));
    const statement = Prisma.sql`SELECT ARRAY[${Prisma.join(each)}] FROM (VALUES ('{}'::jsonb)) AS ${Prisma.raw(SOURCES)}(labels)`;
    try {
      await arrays(this.primary, 'SELECT', statement.text, statement.values, undefined);
    } catch (error) {
      throw filterError(error);
    }
  }

  /** The largest id stored, 0 for an empty table: where "from now on" begins. */
  async lastId(): Promise<bigint> {
    const { rows } = await arrays<[id: string]>(
      this.primary,
      'SELECT metrics',
      `SELECT coalesce(max(id), 0)::text FROM ${METRICS}`,
      [],
      undefined,
    );
    return BigInt(rows[0]?.[0] ?? 0);
  }
}

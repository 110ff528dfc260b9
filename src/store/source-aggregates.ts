import {
  quantileUpperBound,
  representativeValue,
  type SketchTail,
  sketchKey,
} from '../domain/quantile-sketch.js';
import type { MetricBucket } from '../domain/series.js';
import {
  type MetricSummary,
  type SourceRanking,
  type SourceStatistic,
  statisticOf,
} from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import {
  type BucketRow,
  bucketOf,
  inTimeOrder,
  type SketchColumn,
  seriesBuckets,
  sketchKeys,
  sketchRelations,
  sketchTails,
  summaryOf,
  TOTALS,
  type WindowSketches,
  type WindowTotals,
  windowPartials,
} from './aggregate-sql.js';
import { type AtRevision, REVISION_SQL } from './aggregates.js';
import { inSnapshot, type Server, type SnapshotQuery } from './server.js';
import type { SourceSelection } from './source-filter.js';
import { REVISION } from './tables.js';

/** One source's answer. */
export interface OfSource<T> {
  sourceId: number;
  value: T;
}

/** A source's totals over a window, as the grouped totals read them. */
interface SourceTotals extends WindowTotals {
  source_id: number;
}

/**
 * The column of the statistics the totals give, as SQL orders by it; the percentiles are the
 * sketches', which the totals do not have.
 */
const TOTALS_ORDER: Partial<Record<SourceStatistic, string>> = {
  samples: 'count',
  lastSeen: 'last',
  cpuLoadAvg: 'cpu_avg',
  cpuLoadMax: 'cpu_max',
  concurrencyAvg: 'concurrency_avg',
  concurrencyMax: 'concurrency_max',
};

/** The value a percentile statistic is of (where its extremes are in the totals), and its fraction. */
const PERCENTILE_OF: Partial<Record<SourceStatistic, { value: 'cpu' | 'concurrency'; fraction: number }>> = {
  cpuLoadP50: { value: 'cpu', fraction: 0.5 },
  cpuLoadP95: { value: 'cpu', fraction: 0.95 },
  cpuLoadP99: { value: 'cpu', fraction: 0.99 },
  concurrencyP95: { value: 'concurrency', fraction: 0.95 },
};

const SKETCH_COLUMN = { cpu: 'cpu_load', concurrency: 'concurrency' } as const;

/** Sources whose sketches are merged in the first statement of a percentile ranking, at least. */
const FIRST_SKETCHES = 32;

const EMPTY_SKETCHES: WindowSketches = {
  cpu: { keys: [], counts: [] },
  concurrency: { keys: [], counts: [] },
};

/** A source ranked: its totals, and its sketches once they are read. */
interface Ranked {
  totals: SourceTotals;
  sketches?: WindowSketches;
  /** The statistic ranked by, once known. */
  statistic?: number | null;
}

/**
 * Of two ranked sources, the one first in `direction`: a source without the statistic after
 * every source with it, ties to the smaller id.
 */
function compareRanked(direction: SourceRanking['direction']) {
  return (a: Ranked, b: Ranked): number => {
    const [x, y] = [a.statistic ?? null, b.statistic ?? null];
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      return direction === 'desc' ? y - x : x - y;
    }
    return a.totals.source_id - b.totals.source_id;
  };
}

/**
 * Summaries and series by source, of the first sources by a statistic over a window ("the 10
 * sources with the highest CPU p95 over the last hour"), read on `reads` in one snapshot with its
 * revision. Totals by source come in one statement over the rollups and the raw edges of the
 * window (aggregate-sql.ts), ordered and cut there when the statistic is one of theirs. A
 * percentile is the sketches' (within SKETCH_RELATIVE_ACCURACY: percentilesExact is false), and
 * merging the sketches of every source is what costs (a day of 1,000 sources is 24,000 hour rows
 * of about 30 keys: 350 ms): they are merged only for the sources that can still rank, in order of
 * how high they could (a percentile is at most the maximum and at least the minimum, which the
 * totals give), until the first N are known.
 */
export class SourceAggregates {
  constructor(private readonly reads: Server) {}

  /** The summaries of the first `ranking.first` of `sources` by its statistic over a window, in order. */
  summaries(
    range: TimeRange,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope?: OperationScope,
  ): Promise<AtRevision<OfSource<MetricSummary>[]>> {
    return this.#inSnapshot(async (query) => {
      const ranked = await this.#ranked(query, range, sources, ranking, scope);
      return ranked.map(({ totals, sketches }) => ({
        sourceId: totals.source_id,
        value: summaryOf(totals, sketches ?? EMPTY_SKETCHES),
      }));
    });
  }

  /**
   * The series of the first `ranking.first` of `sources` by its statistic over the series' window,
   * in order, read by one statement grouped by source.
   */
  series(
    range: Required<TimeRange>,
    bucketSeconds: number,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope?: OperationScope,
  ): Promise<AtRevision<OfSource<MetricBucket[]>[]>> {
    return this.#inSnapshot(async (query) => {
      const ranked = await this.#ranked(query, range, sources, ranking, scope);
      const ids = ranked.map(({ totals }) => totals.source_id);
      const buckets = new Map<number, MetricBucket[]>(ids.map((id) => [id, []]));
      if (ids.length > 0) {
        const rows = await query<Record<string, unknown>>(
          seriesBuckets(range, bucketSeconds, { all: false, ids: [...ids].sort((a, b) => a - b) }, true),
          scope,
        );
        for (const row of rows) {
          // A row's values in the order of its columns, BucketRow's.
          const bucket = Object.values(row) as BucketRow;
          buckets.get(bucket[0] as number)?.push(bucketOf(bucket));
        }
      }
      return ids.map((sourceId) => ({ sourceId, value: inTimeOrder(buckets.get(sourceId) ?? []) }));
    });
  }

  /** `work`'s answer with the revision of the snapshot it read in. */
  #inSnapshot<T>(work: (query: SnapshotQuery) => Promise<T>): Promise<AtRevision<T>> {
    return inSnapshot(this.reads, async (query) => {
      const [row] = await query<{ revision: string }>(
        Prisma.sql`SELECT revision::text AS revision FROM ${REVISION_SQL}`,
      );
      if (!row) throw new Error(`${REVISION} has no row: apply the migrations`);
      return { revision: row.revision, value: await work(query) };
    });
  }

  /** The first sources of `ranking`, with their totals and sketches. */
  async #ranked(
    query: SnapshotQuery,
    range: TimeRange,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope: OperationScope | undefined,
  ): Promise<Ranked[]> {
    if (ranking.first === 0 || (!sources.all && sources.ids.length === 0)) return [];
    const column = TOTALS_ORDER[ranking.statistic];
    const ordered = column
      ? Prisma.sql` ORDER BY ${Prisma.raw(column)} ${Prisma.raw(ranking.direction === 'desc' ? 'DESC' : 'ASC')} NULLS LAST, source_id LIMIT ${ranking.first}`
      : Prisma.empty;
    const totals = await query<SourceTotals>(
      Prisma.sql`
      SELECT source_id, ${TOTALS} FROM (${windowPartials(range, sources)}) AS parts GROUP BY source_id${ordered}`,
      scope,
    );
    const all = totals.map((row): Ranked => ({ totals: row }));
    const first = column ? all : await this.#byPercentile(query, range, sources, all, ranking, scope);
    await this.#sketch(
      query,
      range,
      first.filter((ranked) => !ranked.sketches),
      scope,
    );
    return first;
  }

  /**
   * The first sources of a ranking by a percentile, merging the sketches of as few as can be: the
   * sources are taken in order of the best their percentile could be, in batches, until the last of
   * the first N is better than any source not yet merged could be. The best is bounded by the
   * minimum (ascending), and descending by the lower of the maximum and the bound the sketch tails
   * of the rows holding the window's values give (tailBounds): in a fleet whose maxima are spikes
   * far above every p95, the maxima exclude almost no source.
   */
  async #byPercentile(
    query: SnapshotQuery,
    range: TimeRange,
    sources: SourceSelection,
    all: Ranked[],
    { statistic, direction, first }: SourceRanking,
    scope: OperationScope | undefined,
  ): Promise<Ranked[]> {
    const { value, fraction } = PERCENTILE_OF[statistic] as {
      value: 'cpu' | 'concurrency';
      fraction: number;
    };
    const compare = compareRanked(direction);
    const tailBounds =
      direction === 'desc'
        ? await this.#tailBounds(query, range, sources, all, value, fraction, scope)
        : new Map<number, number>();
    // The best a source's percentile could be: a sketch's value is its bucket's representative, so
    // one bucket past the extreme, to be sure whichever side of a boundary a key function rounds.
    const bestPossible = ({ totals }: Ranked): number | null => {
      const extreme = direction === 'desc' ? totals[`${value}_max`] : totals[`${value}_min`];
      if (extreme === null) return null;
      if (extreme === 0 && direction === 'asc') return 0;
      const byExtreme = representativeValue(sketchKey(extreme) + (direction === 'desc' ? 1 : -1));
      return Math.min(byExtreme, tailBounds.get(totals.source_id) ?? byExtreme);
    };
    const candidates = all
      .map((ranked) => ({ ranked, best: bestPossible(ranked) }))
      .filter(({ best }) => best !== null)
      .sort((a, b) => compare({ ...a.ranked, statistic: a.best }, { ...b.ranked, statistic: b.best }));
    const merged: Ranked[] = [];
    let next = 0;
    let batch = Math.max(first, FIRST_SKETCHES);
    while (next < candidates.length) {
      const taken = candidates.slice(next, next + batch).map(({ ranked }) => ranked);
      next += taken.length;
      batch *= 2;
      await this.#sketch(query, range, taken, scope);
      for (const ranked of taken) {
        ranked.statistic = statisticOf(
          summaryOf(ranked.totals, ranked.sketches ?? EMPTY_SKETCHES),
          statistic,
        );
        merged.push(ranked);
      }
      merged.sort(compare);
      const last = merged[first - 1];
      const following = candidates[next];
      if (last?.statistic != null && following?.best != null) {
        const stillBetter =
          direction === 'desc' ? last.statistic > following.best : last.statistic < following.best;
        if (stillBetter) break;
      }
    }
    // Sources without the value rank last, by id.
    const without = all.filter((ranked) => bestPossible(ranked) === null);
    return [...merged, ...without].slice(0, first);
  }

  /**
   * Each source's bound from above on its `fraction` percentile of `value` (quantileUpperBound),
   * from the sketch tails of the rows holding its values in the window, read in one statement:
   * a day of 1,000 sources is some 25,000 rows of a dozen numbers, where merging their sketches
   * reads as many rows of a hundred or more.
   */
  async #tailBounds(
    query: SnapshotQuery,
    range: TimeRange,
    sources: SourceSelection,
    all: readonly Ranked[],
    value: 'cpu' | 'concurrency',
    fraction: number,
    scope: OperationScope | undefined,
  ): Promise<Map<number, number>> {
    const rows = await query<{ source_id: number; tail: SketchTail }>(
      sketchTails(range, sources, SKETCH_COLUMN[value]),
      scope,
    );
    const tails = new Map<number, SketchTail[]>();
    for (const { source_id, tail } of rows) {
      const ofSource = tails.get(source_id);
      if (ofSource) ofSource.push(tail);
      else tails.set(source_id, [tail]);
    }
    const bounds = new Map<number, number>();
    for (const { totals } of all) {
      const bound = quantileUpperBound(tails.get(totals.source_id) ?? [], totals[`${value}_count`], fraction);
      if (bound !== null) bounds.set(totals.source_id, bound);
    }
    return bounds;
  }

  /** Reads the merged sketches of these sources (one statement), for each of them. */
  async #sketch(
    query: SnapshotQuery,
    range: TimeRange,
    ranked: readonly Ranked[],
    scope: OperationScope | undefined,
  ): Promise<void> {
    if (ranked.length === 0) return;
    const ids = ranked.map(({ totals }) => totals.source_id).sort((a, b) => a - b);
    const merged = (column: SketchColumn) => Prisma.sql`
      SELECT source_id, ${column}::text AS value, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
        FROM (SELECT source_id, key, sum(n)::float8 AS n FROM (${sketchKeys(column, true)}) AS keyed
               GROUP BY 1, 2 HAVING sum(n) > 0) AS merged
       GROUP BY 1`;
    const rows = await query<{ source_id: number; value: SketchColumn; keys: number[]; counts: number[] }>(
      Prisma.sql`
      WITH ${sketchRelations(range, { all: false, ids })}
      ${merged('cpu_load')} UNION ALL ${merged('concurrency')}`,
      scope,
    );
    const byId = new Map(ranked.map((each) => [each.totals.source_id, each]));
    for (const each of ranked)
      each.sketches = { cpu: { keys: [], counts: [] }, concurrency: { keys: [], counts: [] } };
    for (const { source_id, value, keys, counts } of rows) {
      const sketches = byId.get(source_id)?.sketches;
      if (sketches) sketches[value === 'cpu_load' ? 'cpu' : 'concurrency'] = { keys, counts };
    }
  }
}

import {
  quantileUpperBound,
  representativeValue,
  type SketchTail,
  sketchKey,
  sketchQuantile,
} from '../domain/quantile-sketch.js';
import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary, SourceRanking, SourceStatistic } from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import {
  type BucketRow,
  bucketOf,
  inTimeOrder,
  mergedSketch,
  type SketchColumn,
  seriesBuckets,
  sketchRelations,
  sketchTails,
  summaryOf,
  TOTALS,
  type WindowSketches,
  type WindowTotals,
  windowPartials,
} from './aggregate-sql.js';
import { type AtRevision, REVISION_SQL } from './aggregates.js';
import { CONCURRENCY_PERCENTILE, CPU_PERCENTILES } from './exact-percentiles.js';
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

/** A percentile statistic: the value it is of and its fraction. */
interface Percentile {
  value: 'cpu' | 'concurrency';
  fraction: number;
}

const [P50, P95, P99] = CPU_PERCENTILES;
/** The percentiles a summary gives (exact-percentiles.ts), by the statistic naming each. */
const PERCENTILE_OF: Partial<Record<SourceStatistic, Percentile>> = {
  cpuLoadP50: { value: 'cpu', fraction: P50 },
  cpuLoadP95: { value: 'cpu', fraction: P95 },
  cpuLoadP99: { value: 'cpu', fraction: P99 },
  concurrencyP95: { value: 'concurrency', fraction: CONCURRENCY_PERCENTILE },
};

const SKETCH_COLUMN = { cpu: 'cpu_load', concurrency: 'concurrency' } as const;

/** Sources whose sketches are merged in the first statement of a percentile ranking, at least. */
const FIRST_SKETCHES = 32;

const EMPTY_SKETCHES: WindowSketches = {
  cpu: { keys: [], counts: [] },
  concurrency: { keys: [], counts: [] },
};

/** A source ranked: its totals and sketches once they are read, and the statistic ranked by once known. */
interface Ranked {
  sourceId: number;
  totals?: SourceTotals;
  sketches?: WindowSketches;
  statistic?: number | null;
}

/** A source that may rank by a percentile, and the best its percentile could be. */
interface Candidate {
  ranked: Ranked;
  best: number;
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
    return a.sourceId - b.sourceId;
  };
}

/**
 * Summaries and series by source, of the first sources by a statistic over a window ("the 10
 * sources with the highest CPU p95 over the last hour"), read on `reads` in one snapshot with its
 * revision. Totals by source come in one statement over the rollups and the raw edges of the
 * window (aggregate-sql.ts), ordered and cut there when the statistic is one of theirs. A
 * percentile is the sketches' (within SKETCH_RELATIVE_ACCURACY: percentilesExact is false), and
 * merging the sketches of every source is what costs (a day of 1,000 sources is 24,000 hour rows
 * of about 30 keys: 350 ms): they are merged only for the sources that can still rank
 * (#byPercentile), and the totals of a ranking by the highest percentiles are read for the first
 * N only.
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
      const withoutTotals = ranked.filter(({ totals }) => !totals);
      if (withoutTotals.length > 0) {
        const byId = new Map(withoutTotals.map((each) => [each.sourceId, each]));
        const ids = [...byId.keys()].sort((a, b) => a - b);
        for (const { sourceId, totals } of await this.#totals(query, range, { all: false, ids }, scope)) {
          const each = byId.get(sourceId);
          if (each) each.totals = totals;
        }
      }
      await this.#sketch(
        query,
        range,
        ranked.filter(({ sketches }) => !sketches),
        scope,
      );
      return ranked.map(({ sourceId, totals, sketches }) => ({
        sourceId,
        value: summaryOf(totals as SourceTotals, sketches ?? EMPTY_SKETCHES),
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
      const ids = ranked.map(({ sourceId }) => sourceId);
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

  /** The totals of `sources` over the window, by source, in `ordered`'s order and cut if given. */
  async #totals(
    query: SnapshotQuery,
    range: TimeRange,
    sources: SourceSelection,
    scope: OperationScope | undefined,
    ordered: Prisma.Sql = Prisma.empty,
  ): Promise<Ranked[]> {
    const rows = await query<SourceTotals>(
      Prisma.sql`
      SELECT source_id, ${TOTALS} FROM (${windowPartials(range, sources)}) AS parts GROUP BY source_id${ordered}`,
      scope,
    );
    return rows.map((totals) => ({ sourceId: totals.source_id, totals }));
  }

  /** The first sources of `ranking`, in order: with their totals, or sketches, as ranking them read. */
  async #ranked(
    query: SnapshotQuery,
    range: TimeRange,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope: OperationScope | undefined,
  ): Promise<Ranked[]> {
    if (ranking.first === 0 || (!sources.all && sources.ids.length === 0)) return [];
    const column = TOTALS_ORDER[ranking.statistic];
    if (column) {
      const direction = Prisma.raw(ranking.direction === 'desc' ? 'DESC' : 'ASC');
      return this.#totals(
        query,
        range,
        sources,
        scope,
        Prisma.sql` ORDER BY ${Prisma.raw(column)} ${direction} NULLS LAST, source_id LIMIT ${ranking.first}`,
      );
    }
    const percentile = PERCENTILE_OF[ranking.statistic] as Percentile;
    let all: Ranked[] | undefined;
    let candidates: Candidate[];
    if (ranking.direction === 'desc') {
      candidates = await this.#highestPossible(query, range, sources, percentile, scope);
    } else {
      all = await this.#totals(query, range, sources, scope);
      candidates = lowestPossible(all, percentile);
    }
    // A candidate without the percentile holds its values outside the window only.
    const first = (await this.#byPercentile(query, range, candidates, percentile, ranking, scope)).filter(
      ({ statistic }) => statistic !== null,
    );
    if (first.length < ranking.first) {
      // Fewer hold the value than asked for: the sources without it follow, by id.
      all ??= await this.#totals(query, range, sources, scope);
      const taken = new Set(first.map(({ sourceId }) => sourceId));
      first.push(...all.filter(({ sourceId }) => !taken.has(sourceId)));
    }
    return first.sort(compareRanked(ranking.direction)).slice(0, ranking.first);
  }

  /**
   * The first sources of a ranking by a percentile and more, in order, merging the sketches of as
   * few as can be: the candidates are taken in order of the best their percentile could be, in
   * batches, until the last of the first N is better than any candidate not yet merged could be.
   */
  async #byPercentile(
    query: SnapshotQuery,
    range: TimeRange,
    candidates: Candidate[],
    { value, fraction }: Percentile,
    { direction, first }: SourceRanking,
    scope: OperationScope | undefined,
  ): Promise<Ranked[]> {
    const compare = compareRanked(direction);
    const sign = direction === 'desc' ? -1 : 1;
    candidates.sort((a, b) => sign * (a.best - b.best) || a.ranked.sourceId - b.ranked.sourceId);
    const merged: Ranked[] = [];
    let next = 0;
    let batch = Math.max(first, FIRST_SKETCHES);
    while (next < candidates.length) {
      const taken = candidates.slice(next, next + batch).map(({ ranked }) => ranked);
      next += taken.length;
      batch *= 2;
      await this.#sketch(query, range, taken, scope);
      for (const ranked of taken) {
        ranked.statistic = sketchQuantile((ranked.sketches ?? EMPTY_SKETCHES)[value], fraction);
        merged.push(ranked);
      }
      merged.sort(compare);
      const last = merged[first - 1];
      const following = candidates[next];
      if (last?.statistic != null && following) {
        const stillBetter =
          direction === 'desc' ? last.statistic > following.best : last.statistic < following.best;
        if (stillBetter) break;
      }
    }
    return merged;
  }

  /**
   * Every source holding the value in the rows of the window, with the highest its percentile
   * could be (quantileUpperBound), from the sketch tails of the rows holding the values its
   * sketches merge (sketchTails), read in one statement: a day of 1,000 sources is some 25,000
   * rows of a dozen numbers, where its totals read as many rows and more, and merging its sketches
   * as many of a hundred keys or more. The count is the merged sketch's less its raw edges', which
   * the statement does not read: a count too low only raises the bound.
   */
  async #highestPossible(
    query: SnapshotQuery,
    range: TimeRange,
    sources: SourceSelection,
    { value, fraction }: Percentile,
    scope: OperationScope | undefined,
  ): Promise<Candidate[]> {
    const rows = await query<{ source_id: number; weight: number; tail: SketchTail }>(
      sketchTails(range, sources, SKETCH_COLUMN[value]),
      scope,
    );
    const bySource = new Map<number, { count: number; tails: SketchTail[] }>();
    for (const { source_id, weight, tail } of rows) {
      const ofSource = bySource.get(source_id) ?? { count: 0, tails: [] };
      bySource.set(source_id, ofSource);
      ofSource.count += weight * (tail[0] ?? 0);
      if (weight >= 0) ofSource.tails.push(tail);
    }
    return [...bySource].flatMap(([sourceId, { count, tails }]) => {
      // At least one value, or its percentile would be none: merged, it ranks after those with one.
      const best = quantileUpperBound(tails, Math.max(count, 1), fraction);
      return best === null ? [] : [{ ranked: { sourceId }, best }];
    });
  }

  /** Reads the merged sketches of these sources (one statement), for each of them. */
  async #sketch(
    query: SnapshotQuery,
    range: TimeRange,
    ranked: readonly Ranked[],
    scope: OperationScope | undefined,
  ): Promise<void> {
    if (ranked.length === 0) return;
    const ids = ranked.map(({ sourceId }) => sourceId).sort((a, b) => a - b);
    const merged = (column: SketchColumn) => Prisma.sql`
      SELECT source_id, ${column}::text AS value, keys, counts FROM (${mergedSketch(column, { bySource: true })}) AS merged`;
    const rows = await query<{ source_id: number; value: SketchColumn; keys: number[]; counts: number[] }>(
      Prisma.sql`
      WITH ${sketchRelations(range, { all: false, ids })}
      ${merged('cpu_load')} UNION ALL ${merged('concurrency')}`,
      scope,
    );
    const byId = new Map(ranked.map((each) => [each.sourceId, each]));
    for (const each of ranked)
      each.sketches = { cpu: { keys: [], counts: [] }, concurrency: { keys: [], counts: [] } };
    for (const { source_id, value, keys, counts } of rows) {
      const sketches = byId.get(source_id)?.sketches;
      if (sketches) sketches[value === 'cpu_load' ? 'cpu' : 'concurrency'] = { keys, counts };
    }
  }
}

/**
 * Every source holding the value in the window, with the lowest its percentile could be: a
 * sketch's value is its bucket's representative, so one bucket below the minimum, to be sure
 * whichever side of a boundary a key function rounds.
 */
function lowestPossible(all: readonly Ranked[], { value }: Percentile): Candidate[] {
  return all.flatMap((ranked) => {
    const minimum = ranked.totals?.[`${value}_min`] ?? null;
    if (minimum === null) return [];
    return [{ ranked, best: minimum === 0 ? 0 : representativeValue(sketchKey(minimum) - 1) }];
  });
}

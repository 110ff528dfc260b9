import { createHash } from 'node:crypto';
import type { Meter } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';
import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary, SourceRanking } from '../domain/summary.js';
import { epochMillisecondsText, type TimeRange } from '../domain/time.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { AtRevision } from './aggregates.js';
import type { MetricStore } from './metric-store.js';
import type { OfSource } from './source-aggregates.js';
import type { SourceSelection } from './source-filter.js';

/**
 * Heap bytes one remembered answer takes, with its key, revision and the cache's bookkeeping
 * (measured on Node 20 with --expose-gc, rounded up): a summary, and a series plus each bucket.
 */
const ESTIMATED_BYTES = { summary: 1600, series: 900, seriesBucket: 400 } as const;

type AggregateSource = Pick<
  MetricStore,
  'revision' | 'summary' | 'series' | 'sourceSummaries' | 'sourceSeries'
>;
type AnswerKind = 'summary' | 'series' | 'sourceSummaries' | 'sourceSeries';

/** Source ids written into a key as they are; a longer list, as its digest. */
const IDS_IN_KEY = 16;

/**
 * The sources of a question in its key: the ids its filter resolved to, not the filter, since an
 * answer depends on the ids alone. Two filters that select the same sources share answers, and a
 * filter whose sources changed (a new source its labels match) never gets the answer for the old
 * ones, even at the same revision (its ids were resolved before the new source's rows committed).
 */
function sourcesKey(sources: SourceSelection): string {
  if (sources.all) return '*';
  const ids = sources.ids.join(',');
  if (sources.ids.length <= IDS_IN_KEY) return ids;
  return `${sources.ids.length}#${createHash('sha256').update(ids).digest('base64url')}`;
}

/** A window in a key. */
const windowKey = ({ start, end }: TimeRange): string =>
  `${start ? epochMillisecondsText(start) : ''}:${end ? epochMillisecondsText(end) : ''}`;

/** A ranking in a key. */
const rankingKey = ({ statistic, direction, first }: SourceRanking): string =>
  `${statistic}:${direction}:${first}`;

interface Entry {
  revision: string;
  value: unknown;
}

/**
 * Remembers aggregate answers (summaries, series) under the revision of the data they were
 * computed from. Every statement that writes to `metrics` gives `metrics_revision` a new random
 * revision in its own transaction (a trigger, see the migration), so an answer computed at the
 * current revision is the answer a new computation would give: every request reads the current
 * revision first, and a remembered answer is only reused while it is still current. Writes from
 * anywhere (the ingest script, psql, another instance) are seen at once; nothing expires by time.
 * Revisions are random, never counted, so a restored backup cannot bring back a revision that
 * names other rows.
 *
 * Identical questions asked while one is being computed share that computation.
 */
export class AggregateCache {
  readonly #entries: LRUCache<string, Entry> | undefined;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #store: AggregateSource;

  readonly #requests;

  /**
   * `maxBytes`: the total estimated size of the answers kept; 0 computes every answer afresh.
   * `meter`: where hits, misses, entries and bytes are counted.
   */
  constructor(store: AggregateSource, maxBytes: number, meter?: Meter) {
    this.#entries = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes }) : undefined;
    this.#store = store;
    this.#requests = meter?.createCounter('metrics_api.aggregate_cache.requests', {
      unit: '{request}',
      description: 'Summary and series questions, by whether a remembered answer served them.',
    });
    const entries = this.#entries;
    if (meter && entries) {
      meter
        .createObservableUpDownCounter('metrics_api.aggregate_cache.entries', {
          unit: '{entry}',
          description: 'Answers remembered.',
        })
        .addCallback((result) => result.observe(entries.size));
      meter
        .createObservableUpDownCounter('metrics_api.aggregate_cache.size', {
          unit: 'By',
          description: 'Estimated heap bytes of the answers remembered.',
        })
        .addCallback((result) => result.observe(entries.calculatedSize));
    }
  }

  /** Counts the outcome and shows it on the span of the request. */
  #outcome(kind: AnswerKind, result: 'hit' | 'miss' | 'off', scope: OperationScope | undefined): void {
    this.#requests?.add(1, { kind, result });
    scope?.trace?.span.setAttribute('metrics_api.aggregate_cache', result);
  }

  /**
   * The summary of `sources`' samples in a window. `scope`: the request's, where the statements
   * run for it are recorded. `source`: where the
   * request reads (the store given at construction, or its `primary`). An answer is remembered
   * under its revision whichever server computed it: a standby that shows a revision holds exactly
   * the rows the primary held at that revision, since both come from the one transaction.
   */
  summary(
    range: TimeRange,
    sources: SourceSelection,
    scope?: OperationScope,
    source: AggregateSource = this.#store,
  ): Promise<MetricSummary> {
    return this.#remember(
      source,
      'summary',
      `summary:${windowKey(range)}:${sourcesKey(sources)}`,
      () => source.summary(range, sources, scope),
      () => ESTIMATED_BYTES.summary,
      scope,
    );
  }

  series(
    range: Required<TimeRange>,
    bucketSeconds: number,
    sources: SourceSelection,
    scope?: OperationScope,
    source: AggregateSource = this.#store,
  ): Promise<MetricBucket[]> {
    return this.#remember(
      source,
      'series',
      `series:${windowKey(range)}:${bucketSeconds}:${sourcesKey(sources)}`,
      () => source.series(range, bucketSeconds, sources, scope),
      (series) => ESTIMATED_BYTES.series + series.length * ESTIMATED_BYTES.seriesBucket,
      scope,
    );
  }

  /** The summaries of the first sources of `sources` by a statistic over a window, in order. */
  sourceSummaries(
    range: TimeRange,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope?: OperationScope,
    source: AggregateSource = this.#store,
  ): Promise<OfSource<MetricSummary>[]> {
    return this.#remember(
      source,
      'sourceSummaries',
      `sourceSummaries:${windowKey(range)}:${rankingKey(ranking)}:${sourcesKey(sources)}`,
      () => source.sourceSummaries(range, sources, ranking, scope),
      (summaries) => summaries.length * ESTIMATED_BYTES.summary,
      scope,
    );
  }

  /** The series of the first sources of `sources` by a statistic over the series' window, in order. */
  sourceSeries(
    range: Required<TimeRange>,
    bucketSeconds: number,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope?: OperationScope,
    source: AggregateSource = this.#store,
  ): Promise<OfSource<MetricBucket[]>[]> {
    return this.#remember(
      source,
      'sourceSeries',
      `sourceSeries:${windowKey(range)}:${bucketSeconds}:${rankingKey(ranking)}:${sourcesKey(sources)}`,
      () => source.sourceSeries(range, bucketSeconds, sources, ranking, scope),
      (series) =>
        series.reduce(
          (bytes, { value }) => bytes + ESTIMATED_BYTES.series + value.length * ESTIMATED_BYTES.seriesBucket,
          0,
        ),
      scope,
    );
  }

  /**
   * The answer for `key`: remembered if it was computed at the current revision, else `compute()`d
   * and remembered under the revision its snapshot saw. `size` estimates the answer's bytes.
   */
  async #remember<T>(
    source: AggregateSource,
    kind: AnswerKind,
    key: string,
    compute: () => Promise<AtRevision<T>>,
    size: (value: T) => number,
    scope: OperationScope | undefined,
  ): Promise<T> {
    const entries = this.#entries;
    if (!entries) {
      this.#outcome(kind, 'off', scope);
      return (await compute()).value;
    }
    const revision = await source.revision(scope);
    const entry = entries.get(key);
    if (entry?.revision === revision) {
      this.#outcome(kind, 'hit', scope);
      return entry.value as T;
    }
    this.#outcome(kind, 'miss', scope);

    // Keyed by revision too: a request that saw a newer revision must not share an older computation.
    const flightKey = `${revision}:${key}`;
    let flight = this.#inFlight.get(flightKey) as Promise<T> | undefined;
    if (!flight) {
      flight = compute()
        .then(({ revision: computedAt, value }) => {
          // At least 1: lru-cache refuses a size of 0, which an empty per-source answer estimates.
          entries.set(key, { revision: computedAt, value }, { size: Math.max(size(value), 1) });
          return value;
        })
        .finally(() => this.#inFlight.delete(flightKey));
      this.#inFlight.set(flightKey, flight);
    }
    return flight;
  }
}

import type { Config } from '../config.js';
import type { PostgresConnection } from '../database/connection.js';
import type { AnnouncedRows, StoredMetric } from '../domain/metric.js';
import type { Page, PageRequest, SourcePageRequest, SourceSearch } from '../domain/paging.js';
import type { MetricBucket } from '../domain/series.js';
import type { SourceFilter, StoredSource } from '../domain/source.js';
import type { MetricSummary, SourceRanking } from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import type { ConflictMode } from '../domain/writes.js';
import type { DatabaseTelemetry } from '../observability/database-telemetry.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { Aggregates, type AtRevision } from './aggregates.js';
import { type AddedRows, ChangeReads } from './change-reads.js';
import { Health, type ReplicaState } from './health.js';
import { KnownPartitions } from './known-partitions.js';
import { Lookup } from './lookup.js';
import { MetricPartitions } from './metric-partitions.js';
import { Pages } from './pages.js';
import { PrometheusReads } from './prometheus-reads.js';
import type { Batch, BatchResult, BatchTarget } from './sample-batch.js';
import { type Server, type ServerConnection, server } from './server.js';
import { type OfSource, SourceAggregates } from './source-aggregates.js';
import { ALL_SOURCES, SourceIdsByName, type SourceSelection, selectSources } from './source-filter.js';
import { SourceReads } from './source-reads.js';
import { Writes } from './writes.js';

/** What the store is told of the configuration; each left out takes its default. */
export interface MetricStoreOptions {
  exactPercentileMaxRows?: number;
  maxSources?: number;
  joinWindowMs?: number;
}

/** The store's options as the configuration gives them (EXACT_PERCENTILE_MAX_ROWS, MAX_SOURCES, AGENT_JOIN_WINDOW_MS). */
export function storeOptions(
  config: Pick<Config, 'exactPercentileMaxRows' | 'sources' | 'agents'>,
): MetricStoreOptions {
  return {
    exactPercentileMaxRows: config.exactPercentileMaxRows,
    maxSources: config.sources.max,
    joinWindowMs: config.agents.joinWindowMs,
  };
}

/**
 * Every statement on `metrics`, `metrics_revision` and `sources`, one concern a module: pages
 * (pages.ts), lookups by id (lookup.ts), the change feed's reads (change-reads.ts), counts, the
 * revision, summaries and series (aggregates.ts), sources (source-filter.ts, source-reads.ts),
 * writes (writes.ts), and what readiness asks (health.ts), all run through server.ts. Reads of
 * samples take the sources they cover, a SourceSelection (every source unless told otherwise):
 * selectSources resolves a filter to one, once per question. Errors that mean the database is away come out as
 * DatabaseUnavailableError (see store/errors.ts); any other error is a failed statement and comes
 * out as it is.
 */
export class MetricStore implements BatchTarget {
  /** This store with every read on the primary: for a client that must see its own writes, and for live updates. */
  readonly primary: MetricStore;
  /** The partitions of `metrics`, on the primary. */
  readonly partitions: MetricPartitions;
  /** The reads of the Prometheus-compatible API: series by matchers, their samples, label names and values. */
  readonly prometheus: PrometheusReads;
  /** What pages, lookups and summaries know of the partitions; see refreshPartitions. */
  readonly #known: KnownPartitions;
  readonly #pages: Pages;
  readonly #lookup: Lookup;
  readonly #changes: ChangeReads;
  readonly #aggregates: Aggregates;
  readonly #reads: Server;
  /** Ids of sources by the names read filters give. */
  readonly #sourceIds = new SourceIdsByName();
  readonly #sources: SourceReads;
  readonly #sourceAggregates: SourceAggregates;
  readonly #writes: Writes;
  readonly #health: Health;

  /**
   * `telemetry` times and traces each statement; without it statements run unobserved. With a
   * `replica`, a streaming standby, pages, summaries, series and the revision checked before a
   * remembered answer is reused are read there; everything else runs on the primary.
   * `exactPercentileMaxRows`: summaries of at most this many rows get exact percentiles.
   * `maxSources`: MAX_SOURCES, the most sources writes may make. `joinWindowMs`:
   * AGENT_JOIN_WINDOW_MS, how long a merging write's row of one value waits for the other.
   */
  constructor(
    primary: ServerConnection & Pick<PostgresConnection, 'copyFromStdin'>,
    telemetry?: DatabaseTelemetry,
    replica?: {
      connection: ServerConnection;
      telemetry?: DatabaseTelemetry | undefined;
    },
    { exactPercentileMaxRows = 1_000_000, maxSources = 100_000, joinWindowMs = 0 }: MetricStoreOptions = {},
  ) {
    const onPrimary = server(primary, telemetry);
    // A failure outside a statement (a connection, BEGIN, COMMIT) counts as the primary's outage on either server.
    const reads = replica ? server(replica.connection, replica.telemetry, primary.availability) : onPrimary;
    this.primary = replica
      ? new MetricStore(primary, telemetry, undefined, { exactPercentileMaxRows, maxSources, joinWindowMs })
      : this;
    // The primary's own store (reads of live updates, X-Read-From: primary) knows what this one does.
    this.#known = this.primary === this ? new KnownPartitions() : this.primary.#known;
    this.partitions = new MetricPartitions(onPrimary.pool, onPrimary.observed);
    this.#pages = new Pages(reads, this.#known);
    this.#lookup = new Lookup(reads, this.#known);
    this.#changes = new ChangeReads(onPrimary);
    this.#aggregates = new Aggregates(reads, this.#known, exactPercentileMaxRows);
    this.#writes = new Writes(onPrimary, primary.copyFromStdin, maxSources, joinWindowMs);
    this.#reads = reads;
    this.#sources = new SourceReads(reads);
    this.prometheus = new PrometheusReads(reads);
    this.#sourceAggregates = new SourceAggregates(reads);
    this.#health = new Health(onPrimary, reads);
  }

  /**
   * One page of `sources`' samples, by keyset. Every read takes the `scope` of the request it
   * serves, where its statements are recorded.
   */
  page(
    request: PageRequest,
    sources: SourceSelection = ALL_SOURCES,
    scope?: OperationScope,
  ): Promise<Page<StoredMetric>> {
    return this.#pages.page(request, sources, scope);
  }

  /** The sources `filter` selects, resolved once for a question (every source without one). */
  selectSources(filter: SourceFilter | undefined, scope?: OperationScope): Promise<SourceSelection> {
    return selectSources(this.#reads, filter, scope, this.#sourceIds);
  }

  /** The sources with these ids, by id, in one statement; ids no source has are absent. */
  sourcesByIds(ids: readonly number[], scope?: OperationScope): Promise<Map<number, StoredSource>> {
    return this.#sources.byIds(ids, scope);
  }

  /** The source of this name, or null. */
  sourceByName(name: string, scope?: OperationScope): Promise<StoredSource | null> {
    return this.#sources.byName(name, scope);
  }

  /** One page of sources, by keyset. */
  sourcePage(request: SourcePageRequest, scope?: OperationScope): Promise<Page<StoredSource>> {
    return this.#sources.page(request, scope);
  }

  /** The sources a search finds. */
  sourceCount(search: SourceSearch, scope?: OperationScope): Promise<number> {
    return this.#sources.count(search, scope);
  }

  /** The row with this id, or null. */
  findById(id: bigint, scope?: OperationScope): Promise<StoredMetric | null> {
    return this.#lookup.findById(id, scope);
  }

  /** The rows with these ids, in their order (null where none). */
  findByIds(ids: readonly bigint[], scope?: OperationScope): Promise<(StoredMetric | null)[]> {
    return this.#lookup.findByIds(ids, scope);
  }

  /**
   * Reads the partitions and each one's smallest and largest id again, for findById and page; the
   * maintenance pass calls it.
   */
  refreshPartitions(): Promise<void> {
    return this.#known.refresh(this.partitions);
  }

  /**
   * Samples inserted after the one with id `afterId`, in commit order; with `start`, only those
   * taken from then on; with a `filter`, only those of the sources it selects.
   */
  addedSince(
    afterId: bigint,
    limit: number,
    only?: AddedRows,
    scope?: OperationScope,
  ): Promise<StoredMetric[]> {
    return this.#changes.addedSince(afterId, limit, only, scope);
  }

  /** addedSince() narrowed to what notifications announced. */
  announcedSince(afterId: bigint, announced: AnnouncedRows, limit: number): Promise<StoredMetric[]> {
    return this.#changes.announcedSince(afterId, announced, limit);
  }

  /** The largest id stored, 0 for an empty table: where "from now on" begins. */
  lastId(): Promise<bigint> {
    return this.#changes.lastId();
  }

  /** For each of `filters`, which of these sources it selects now (the change feed's sorting of a read). */
  sourcesSelectedBy(
    sourceIds: readonly number[],
    filters: readonly SourceFilter[],
  ): Promise<ReadonlySet<number>[]> {
    return this.#changes.sourcesSelectedBy(sourceIds, filters);
  }

  /** Refuses a filter with a regular expression PostgreSQL cannot compile (InvalidSourceFilterError). */
  checkEvaluable(filter: SourceFilter): Promise<void> {
    return this.#changes.checkEvaluable(filter);
  }

  /** The samples of `sources` in a window. */
  count(range: TimeRange, sources: SourceSelection = ALL_SOURCES, scope?: OperationScope): Promise<number> {
    return this.#aggregates.count(range, sources, scope);
  }

  /** The current revision of the data in metrics (see the metrics_revision migration). */
  revision(scope?: OperationScope): Promise<string> {
    return this.#aggregates.revision(scope);
  }

  /**
   * Count, first and last, extremes, means and percentiles of `sources`' samples in a window, with
   * the revision they were read at.
   */
  summary(
    range: TimeRange,
    sources: SourceSelection = ALL_SOURCES,
    scope?: OperationScope,
  ): Promise<AtRevision<MetricSummary>> {
    return this.#aggregates.summary(range, sources, scope);
  }

  /**
   * Buckets of `bucketSeconds` aligned to the Unix epoch, of `sources`' samples, with the revision
   * they were read at; empty buckets are absent.
   */
  series(
    range: Required<TimeRange>,
    bucketSeconds: number,
    sources: SourceSelection = ALL_SOURCES,
    scope?: OperationScope,
  ): Promise<AtRevision<MetricBucket[]>> {
    return this.#aggregates.series(range, bucketSeconds, sources, scope);
  }

  /**
   * The summaries of the first sources of `sources` by a statistic over a window, in order, with
   * the revision they were read at.
   */
  sourceSummaries(
    range: TimeRange,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope?: OperationScope,
  ): Promise<AtRevision<OfSource<MetricSummary>[]>> {
    return this.#sourceAggregates.summaries(range, sources, ranking, scope);
  }

  /**
   * The series of the first sources of `sources` by a statistic over the series' window, in order,
   * with the revision they were read at.
   */
  sourceSeries(
    range: Required<TimeRange>,
    bucketSeconds: number,
    sources: SourceSelection,
    ranking: SourceRanking,
    scope?: OperationScope,
  ): Promise<AtRevision<OfSource<MetricBucket[]>[]>> {
    return this.#sourceAggregates.series(range, bucketSeconds, sources, ranking, scope);
  }

  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    return this.#writes.writeBatch(batch, mode, wantIds);
  }

  /**
   * Runs `work` in one transaction on one connection: its batches are stored together or not at all.
   * Its statements are recorded in `scope`, the request's, and traced under it.
   */
  inTransaction<T>(work: (target: BatchTarget) => Promise<T>, scope?: OperationScope): Promise<T> {
    return this.#writes.inTransaction(work, scope);
  }

  /** Whether the primary answers a trivial query within `timeoutMs`, on readiness's own connection. */
  ping(timeoutMs: number): Promise<void> {
    return this.#health.ping(timeoutMs);
  }

  /** The read replica as readiness sees it; undefined without a replica. */
  replicaState(timeoutMs: number): Promise<ReplicaState | undefined> {
    return this.#health.replicaState(timeoutMs);
  }

  /** Whether the metrics table exists, i.e. the migrations were applied. */
  tableExists(): Promise<boolean> {
    return this.#health.tableExists();
  }

  isEmpty(): Promise<boolean> {
    return this.#health.isEmpty();
  }

  /** The plan PostgreSQL would choose for a read this store ran, for the slow-operation log; never for a write. */
  explain(text: string, values: readonly unknown[]): Promise<unknown> {
    return this.#health.explain(text, values);
  }

  /**
   * Names source 1, where the samples of writers naming no source go, DEFAULT_SOURCE's `name` (at
   * start); DefaultSourceNameTakenError when another source has it.
   */
  nameDefaultSource(name: string | undefined): Promise<void> {
    return this.#writes.sources.nameDefaultSource(name);
  }

  /** How many sources exist, on the primary (for /metrics). */
  countSources(): Promise<number> {
    return this.#writes.sources.count();
  }

  /**
   * Writes one small batch in a transaction it may share with the batches other callers write at
   * the same time (group commit; see Writes.writeGrouped), with its own counts.
   */
  writeGrouped(batch: Batch, mode: ConflictMode, scope?: OperationScope): Promise<BatchResult> {
    return this.#writes.writeGrouped(batch, mode, scope);
  }
}

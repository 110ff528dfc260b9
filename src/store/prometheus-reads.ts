import type { SampleField } from '../domain/agent-mapping.js';
import {
  METRIC_NAME_LABEL,
  PROMETHEUS_METRICS,
  prometheusLabelName,
  SOURCE_LABEL,
} from '../domain/prometheus-names.js';
import type { LabelMatcher } from '../domain/source.js';
import { MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { valueTest } from '../promql/index.js';
import { arrays, type Server } from './server.js';
import { filterError, matchCondition } from './source-filter.js';
import { METRICS, ROLLUPS, SOURCES } from './tables.js';

/** One series as Prometheus sees it: a metric of a source, with its labels (`__name__` and `source` among them). */
export interface PrometheusSeries {
  sourceId: number;
  field: SampleField;
  labels: Record<string, string>;
}

/** The samples of some sources, each source's in time order. */
export type SamplesBySource = Map<number, { timestamps: number[]; values: number[] }>;

/** Statistics of one field of some sources by minute (the minute rollups), each source's minutes ascending. */
export type MinutesBySource = Map<
  number,
  { minutes: number[]; counts: number[]; sums: number[]; mins: number[]; maxs: number[] }
>;

/** A selection past a limit: the client must narrow it. */
export class TooManySeriesError extends Error {
  override name = 'TooManySeriesError';
}

export class TooManySamplesError extends Error {
  override name = 'TooManySamplesError';
}

/**
 * A time within the range samples may have (1970 to 9999): the API takes any time, as
 * Prometheus does, and nothing is stored beyond, where PostgreSQL's timestamps would overflow.
 */
function storable(ms: number): number {
  return Math.min(MAX_TIMESTAMP_MS, Math.max(MIN_TIMESTAMP_MS, ms));
}

/** Whether [startMs, endMs] holds times a sample may have. */
function overlapsStorable(startMs: number, endMs: number): boolean {
  return endMs >= MIN_TIMESTAMP_MS && startMs <= MAX_TIMESTAMP_MS;
}

/** Refuses a read of more than `limit` rows (it asked for one more). */
function withinLimit(rows: readonly unknown[], limit: number): void {
  if (rows.length > limit)
    throw new TooManySamplesError(
      `the query would read more than ${limit} samples (PROMETHEUS_MAX_SAMPLES); narrow the selector or the time range`,
    );
}

/** Rows of (source id, milliseconds, value) in source order, by source. */
function samplesBySource(rows: readonly [sourceId: number, ms: number, value: number][]): SamplesBySource {
  const bySource: SamplesBySource = new Map();
  for (const [sourceId, ms, value] of rows) {
    let samples = bySource.get(sourceId);
    if (!samples) {
      samples = { timestamps: [], values: [] };
      bySource.set(sourceId, samples);
    }
    samples.timestamps.push(ms);
    samples.values.push(Number(value));
  }
  return bySource;
}

/** How long the stored label names, and how they are shown, are remembered. */
const LABEL_NAMES_REMEMBERED_MS = 10_000;

const SAMPLE_COLUMNS: Readonly<Record<SampleField, string>> = {
  cpuLoad: 'cpu_load',
  concurrency: 'concurrency',
};

/**
 * The reads behind the Prometheus-compatible API: which sources a selector's matchers choose (in
 * SQL, on `sources`), their samples in a time range, and the label names and values. Series are
 * the two metrics of each source; a source whose `first_seen`/`last_seen` lie outside a range (or
 * that was never seen) has no series in it.
 */
export class PrometheusReads {
  #labelNames: { at: number; names: Promise<Map<string, string[]>> } | undefined;

  constructor(private readonly reads: Server) {}

  /** Stored label names by the name Prometheus shows each as (several may show as one), read at most every 10 s. */
  #shownLabelNames(scope: OperationScope | undefined): Promise<Map<string, string[]>> {
    const now = performance.now();
    if (this.#labelNames && now - this.#labelNames.at < LABEL_NAMES_REMEMBERED_MS)
      return this.#labelNames.names;
    const names = arrays<[name: string]>(
      this.reads,
      'SELECT sources',
      `SELECT DISTINCT jsonb_object_keys(labels) FROM ${SOURCES}`,
      [],
      scope,
    ).then(({ rows }) => {
      const shown = new Map<string, string[]>();
      for (const [name] of rows) {
        const key = prometheusLabelName(name);
        shown.set(key, [...(shown.get(key) ?? []), name]);
      }
      return shown;
    });
    this.#labelNames = { at: now, names };
    names.catch(() => {
      this.#labelNames = undefined;
    });
    return names;
  }

  /** Rows of `sources` selected by a #where condition; a matcher PostgreSQL refuses is the client's error. */
  async #selectSources<Row extends unknown[]>(
    statement: Prisma.Sql,
    scope: OperationScope | undefined,
  ): Promise<Row[]> {
    const { rows } = await arrays<Row>(
      this.reads,
      'SELECT sources',
      statement.text,
      statement.values,
      scope,
    ).catch((error: unknown) => {
      throw filterError(error);
    });
    return rows;
  }

  /** The condition matchers (other than `__name__`) and a time range put on `sources`. */
  async #where(
    matchers: readonly LabelMatcher[],
    range: { startMs: number; endMs: number } | undefined,
    scope: OperationScope | undefined,
  ): Promise<Prisma.Sql> {
    const shown = await this.#shownLabelNames(scope);
    const conditions = matchers
      .filter((matcher) => matcher.name !== METRIC_NAME_LABEL)
      .map((matcher) => {
        if (matcher.name === SOURCE_LABEL)
          return matchCondition(Prisma.sql`name`, matcher.operator, matcher.value);
        const stored = shown.get(matcher.name) ?? [];
        const values = stored.map((name) => Prisma.sql`labels ->> ${name}::text`);
        const actual = Prisma.sql`coalesce(${Prisma.join([...values, Prisma.sql`''`], ', ')})`;
        return matchCondition(actual, matcher.operator, matcher.value);
      });
    // A source never seen (the default one, before any write names none) has no series.
    conditions.push(Prisma.sql`first_seen IS NOT NULL`);
    if (range && !overlapsStorable(range.startMs, range.endMs)) conditions.push(Prisma.sql`false`);
    else if (range) {
      conditions.push(
        Prisma.sql`first_seen <= to_timestamp(${storable(range.endMs) / 1000}::float8)`,
        Prisma.sql`last_seen >= to_timestamp(${storable(range.startMs) / 1000}::float8)`,
      );
    }
    return Prisma.join(conditions, ' AND ');
  }

  /** The metrics whose names pass the `__name__` matchers. */
  #metrics(matchers: readonly LabelMatcher[]): [string, SampleField][] {
    const byName = matchers.filter((matcher) => matcher.name === METRIC_NAME_LABEL);
    return Object.entries(PROMETHEUS_METRICS).filter(([name]) =>
      byName.every((matcher) => valueTest(matcher)(name)),
    );
  }

  /** Every series the matchers select, at most `limit` (TooManySeriesError past it), ordered by source name. */
  async series(
    matchers: readonly LabelMatcher[],
    range: { startMs: number; endMs: number } | undefined,
    limit: number,
    scope?: OperationScope,
  ): Promise<PrometheusSeries[]> {
    const metrics = this.#metrics(matchers);
    if (metrics.length === 0) return [];
    const where = await this.#where(matchers, range, scope);
    const sourceLimit = Math.floor(limit / metrics.length) + 1;
    const rows = await this.#selectSources<[id: number, name: string, labels: Record<string, string>]>(
      Prisma.sql`SELECT id, name, labels FROM ${Prisma.raw(SOURCES)} WHERE ${where} ORDER BY name LIMIT ${sourceLimit}`,
      scope,
    );
    const series: PrometheusSeries[] = [];
    for (const [id, name, labels] of rows) {
      const shown: [string, string][] = Object.entries(labels).map(([label, value]) => [
        prometheusLabelName(label),
        value,
      ]);
      shown.push([SOURCE_LABEL, name]);
      for (const [metric, field] of metrics) {
        // Prometheus' order: labels sorted by name.
        const ordered = [...shown, [METRIC_NAME_LABEL, metric] as [string, string]].sort(([a], [b]) =>
          a < b ? -1 : a > b ? 1 : 0,
        );
        series.push({ sourceId: id, field, labels: Object.fromEntries(ordered) });
      }
    }
    if (series.length > limit)
      throw new TooManySeriesError(`the selector matches more than ${limit} series (PROMETHEUS_MAX_SERIES)`);
    return series;
  }

  /**
   * The `field` samples of `sourceIds` with startMs <= timestamp <= endMs, at most `limit`
   * (TooManySamplesError past it).
   */
  async samples(
    sourceIds: readonly number[],
    field: SampleField,
    startMs: number,
    endMs: number,
    limit: number,
    scope?: OperationScope,
  ): Promise<SamplesBySource> {
    if (sourceIds.length === 0 || !overlapsStorable(startMs, endMs)) return new Map();
    const rows = await this.#sampleRows(
      sourceIds,
      field,
      `"timestamp" >= to_timestamp($2::float8 / 1000) AND "timestamp" <= to_timestamp($3::float8 / 1000)`,
      [storable(startMs), storable(endMs), limit + 1],
      'LIMIT $4',
      scope,
    );
    withinLimit(rows, limit);
    return samplesBySource(rows);
  }

  /**
   * The minute rollups of `field` for `sourceIds`, minutes starting in [startMs, endMs), at most
   * `limit` (TooManySamplesError past it). A minute's sum of CPU loads adds them as stored, 32-bit
   * floats widened, so it may differ from the raw samples' sum in the eighth digit.
   */
  async minutes(
    sourceIds: readonly number[],
    field: SampleField,
    startMs: number,
    endMs: number,
    limit: number,
    scope?: OperationScope,
  ): Promise<MinutesBySource> {
    const bySource: MinutesBySource = new Map();
    if (sourceIds.length === 0 || !overlapsStorable(startMs, endMs)) return bySource;
    const column = SAMPLE_COLUMNS[field];
    const { rows } = await arrays<
      [sourceId: number, ms: number, count: number, sum: number, min: number, max: number]
    >(
      this.reads,
      `SELECT ${ROLLUPS.minute}`,
      `SELECT source_id, (extract(epoch FROM bucket) * 1000)::float8, ${column}_count::float8,
              ${column}_sum::float8, ${column}_min, ${column}_max
         FROM ${ROLLUPS.minute}
        WHERE source_id = ANY($1::int[]) AND ${column}_count > 0
          AND bucket >= to_timestamp($2::float8 / 1000) AND bucket < to_timestamp($3::float8 / 1000)
        ORDER BY source_id, bucket LIMIT $4`,
      [sourceIds, storable(startMs), storable(endMs), limit + 1],
      scope,
    );
    withinLimit(rows, limit);
    for (const [sourceId, ms, count, sum, min, max] of rows) {
      let minutes = bySource.get(sourceId);
      if (!minutes) {
        minutes = { minutes: [], counts: [], sums: [], mins: [], maxs: [] };
        bySource.set(sourceId, minutes);
      }
      minutes.minutes.push(ms);
      minutes.counts.push(count);
      minutes.sums.push(sum);
      minutes.mins.push(Number(min));
      minutes.maxs.push(Number(max));
    }
    return bySource;
  }

  /** The `field` samples of `sourceIds` whose timestamps pass `when` (its parameters from $2), in source order. */
  async #sampleRows(
    sourceIds: readonly number[],
    field: SampleField,
    when: string,
    values: unknown[],
    limit: string,
    scope: OperationScope | undefined,
  ): Promise<[sourceId: number, ms: number, value: number][]> {
    const column = SAMPLE_COLUMNS[field];
    const { rows } = await arrays<[sourceId: number, ms: number, value: number]>(
      this.reads,
      `SELECT ${METRICS}`,
      `SELECT source_id, (extract(epoch FROM "timestamp") * 1000)::float8, ${column}
         FROM ${METRICS}
        WHERE source_id = ANY($1::int[]) AND ${column} IS NOT NULL AND ${when}
        ORDER BY source_id, "timestamp" ${limit}`,
      [sourceIds, ...values],
      scope,
    );
    return rows;
  }

  /** The `field` samples of `sourceIds` at exactly these instants. */
  async samplesAt(
    sourceIds: readonly number[],
    field: SampleField,
    instants: readonly number[],
    scope?: OperationScope,
  ): Promise<SamplesBySource> {
    if (sourceIds.length === 0 || instants.length === 0) return new Map();
    const rows = await this.#sampleRows(
      sourceIds,
      field,
      `"timestamp" = ANY(ARRAY(SELECT to_timestamp(ms / 1000) FROM unnest($2::float8[]) AS ms))`,
      [instants.filter((instant) => storable(instant) === instant)],
      '',
      scope,
    );
    return samplesBySource(rows);
  }

  /** The label names of the series the matchers select (every series without matchers), sorted. */
  async labelNames(
    matchers: readonly LabelMatcher[],
    range: { startMs: number; endMs: number } | undefined,
    scope?: OperationScope,
  ): Promise<string[]> {
    if (this.#metrics(matchers).length === 0) return [];
    const where = await this.#where(matchers, range, scope);
    const rows = await this.#selectSources<[name: string]>(
      Prisma.sql`SELECT DISTINCT jsonb_object_keys(labels) FROM ${Prisma.raw(SOURCES)} WHERE ${where}`,
      scope,
    );
    const names = new Set([
      METRIC_NAME_LABEL,
      SOURCE_LABEL,
      ...rows.map(([name]) => prometheusLabelName(name)),
    ]);
    return [...names].sort();
  }

  /** The values `name` takes in the series the matchers select, sorted; at most `limit` (TooManySeriesError past it). */
  async labelValues(
    name: string,
    matchers: readonly LabelMatcher[],
    range: { startMs: number; endMs: number } | undefined,
    limit: number,
    scope?: OperationScope,
  ): Promise<string[]> {
    const metrics = this.#metrics(matchers);
    if (name === METRIC_NAME_LABEL) return metrics.map(([metric]) => metric).sort();
    if (metrics.length === 0) return [];
    const where = await this.#where(matchers, range, scope);
    let value: Prisma.Sql;
    if (name === SOURCE_LABEL) {
      value = Prisma.sql`name`;
    } else {
      const stored = (await this.#shownLabelNames(scope)).get(name) ?? [];
      if (stored.length === 0) return [];
      value = Prisma.sql`coalesce(${Prisma.join(
        stored.map((label) => Prisma.sql`labels ->> ${label}::text`),
        ', ',
      )})`;
    }
    const rows = await this.#selectSources<[value: string]>(
      Prisma.sql`SELECT DISTINCT ${value} FROM ${Prisma.raw(SOURCES)}
        WHERE ${where} AND ${value} IS NOT NULL ORDER BY 1 LIMIT ${limit + 1}`,
      scope,
    );
    if (rows.length > limit)
      throw new TooManySeriesError(
        `the label has more than ${limit} values (PROMETHEUS_MAX_SERIES); narrow match[]`,
      );
    return rows.map(([text]) => text);
  }
}

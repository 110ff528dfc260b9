/**
 * Validation of one metric sample, shared by the ingest readers and the GraphQL mutation. The rules
 * mirror the `metrics` and `sources` tables so that a record that passes here cannot fail at the
 * database: a failing INSERT would abort its whole batch, not just the bad row.
 */

import { formatDurationSeconds } from './duration.js';
import { checkLabels, checkSourceName, type SourceLabels } from './source.js';
import {
  checkTimestampMs,
  DECIMAL,
  describe,
  epochSecondsToMs,
  parseTimestamp,
  quotedPrefix,
  typeName,
} from './time.js';

/** Largest concurrency the `integer` column holds. */
export const MAX_CONCURRENCY = 2_147_483_647;

/**
 * A sample ready to store. The timestamp is in epoch milliseconds, the column's precision. A
 * sample holds a CPU load, a concurrency or both (null: not reported).
 */
export interface MetricSample {
  timestampMs: number;
  cpuLoad: number | null;
  concurrency: number | null;
  /** The name of the sample's source; undefined: the writer's (the default source, or the one it names for all). */
  source?: string | undefined;
  /** Labels of the sample's source, when the record gives them: they replace the stored ones. */
  labels?: SourceLabels | undefined;
}

/**
 * Why a record was refused; `field` names the input field, or `record` for the record as a whole.
 * `code` marks a refusal that is not about the record's content (SOURCE_LIMIT_EXCEEDED).
 */
export interface Problem {
  field: string;
  reason: string;
  code?: string;
}

/** The code of a sample refused because its source would be one more than MAX_SOURCES. */
export const SOURCE_LIMIT_EXCEEDED = 'SOURCE_LIMIT_EXCEEDED';

/** The refusal of a sample whose source `name` does not exist and may not be made: MAX_SOURCES exist. */
export function sourceLimitProblem(name: string, maxSources: number): Problem {
  return {
    field: 'source',
    reason: `${quotedPrefix(name)} is a new source and ${maxSources} sources exist (MAX_SOURCES): not stored`,
    code: SOURCE_LIMIT_EXCEEDED,
  };
}

export type Validated = { ok: true; sample: MetricSample } | { ok: false; problem: Problem };

/**
 * The latest time a sample may have: MAX_FUTURE after the moment it was taken. A sample far ahead
 * (a clock years off, milliseconds read as seconds) would otherwise sit alone in a partition of
 * its own or in the default partition, and skew every "latest" read; Prometheus and
 * VictoriaMetrics refuse such samples likewise.
 */
export interface FutureHorizon {
  latestMs: number;
  maxFutureSeconds: number;
}

/** The horizon `maxFutureSeconds` ahead of `nowMs`; undefined (MAX_FUTURE=off): any time. */
export function futureHorizon(
  maxFutureSeconds: number | undefined,
  nowMs = Date.now(),
): FutureHorizon | undefined {
  return maxFutureSeconds === undefined
    ? undefined
    : { latestMs: nowMs + maxFutureSeconds * 1000, maxFutureSeconds };
}

/** Problems with a valid timestamp beyond the horizon, or `null`. */
export function checkHorizon(timestampMs: number, horizon: FutureHorizon | undefined): string | null {
  if (horizon === undefined || timestampMs <= horizon.latestMs) return null;
  return `${new Date(timestampMs).toISOString()} is more than ${formatDurationSeconds(horizon.maxFutureSeconds)} ahead of now (MAX_FUTURE)`;
}

/** Problems with a CPU load that is already a number, or `null`. */
export function checkCpuLoad(value: number): string | null {
  if (!Number.isFinite(value)) return 'must be a finite number';
  if (value < 0) return `must be >= 0, got ${value}`;
  // The column is `real`: a double beyond float4's range would become Infinity, which the
  // table's CHECK constraint refuses.
  if (!Number.isFinite(Math.fround(value)))
    return `too large for a 32-bit float (max about 3.4e38), got ${value}`;
  return null;
}

/** Problems with a concurrency that is already a number, or `null`. */
export function checkConcurrency(value: number): string | null {
  if (!Number.isInteger(value)) return `must be an integer, got ${value}`;
  if (value < 0) return `must be >= 0, got ${value}`;
  if (value > MAX_CONCURRENCY) return `must be <= ${MAX_CONCURRENCY}, got ${value}`;
  return null;
}

function numberFrom(value: unknown, fromText: boolean): number | { error: string } {
  if (typeof value === 'number') return value;
  if (fromText && typeof value === 'string') {
    const text = value.trim();
    if (DECIMAL.test(text)) return Number(text);
    if (/^[+-]?(?:inf(?:inity)?|nan)$/i.test(text)) return { error: 'must be a finite number' };
    return { error: `must be a number, got ${describe(value)}` };
  }
  return { error: `must be a number, got ${typeName(value)}` };
}

const KNOWN_FIELDS = new Set(['timestamp', 'cpu_load', 'cpuLoad', 'concurrency', 'source', 'labels']);

/** Records each key of `record` that the loader does not use, with its first line, for the once-per-file warning. */
export function collectUnknownFields(
  record: Record<string, unknown>,
  line: number,
  seen: Map<string, number>,
): void {
  for (const key in record) if (!KNOWN_FIELDS.has(key) && !seen.has(key)) seen.set(key, line);
}

/** A field is absent when left out, null (JSON), or an empty CSV cell. */
function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/**
 * Labels as a record gives them: a JSON object of strings; the mutation's list of `{name, value}`;
 * in CSV, `name=value;name=value`, or a JSON object when the cell starts with `{` (for values that
 * hold a `;`). Checked against the bounds of domain/source.ts.
 */
function labelsFrom(value: unknown, fromText: boolean): { labels: SourceLabels } | { problem: string } {
  let labels: unknown = value;
  if (fromText && typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('{')) {
      try {
        labels = JSON.parse(text);
      } catch {
        return { problem: 'a cell starting with { must be a JSON object of strings' };
      }
    } else {
      const pairs: Record<string, string> = {};
      for (const pair of text.split(';')) {
        if (pair === '') continue;
        const at = pair.indexOf('=');
        if (at <= 0) return { problem: `${quotedPrefix(pair)} is not name=value` };
        const name = pair.slice(0, at);
        if (Object.hasOwn(pairs, name)) return { problem: `label "${name.slice(0, 40)}" given twice` };
        pairs[name] = pair.slice(at + 1);
      }
      labels = pairs;
    }
  } else if (Array.isArray(value)) {
    // The mutation's list of LabelInput; in a file, an array is not labels.
    const pairs: Record<string, string> = {};
    for (const item of value as unknown[]) {
      const { name, value: labelValue } = (item ?? {}) as { name?: unknown; value?: unknown };
      if (typeof name !== 'string' || typeof labelValue !== 'string')
        return { problem: 'must be an object of name to value, got an array' };
      if (Object.hasOwn(pairs, name)) return { problem: `label "${name.slice(0, 40)}" given twice` };
      pairs[name] = labelValue;
    }
    labels = pairs;
  }
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels))
    return { problem: `must be an object of name to value, got ${typeName(labels)}` };
  const problem = checkLabels(labels as SourceLabels);
  return problem ? { problem } : { labels: labels as SourceLabels };
}

/**
 * Validates one input record into `out` (reused by the caller: the loader validates a million
 * records a run and allocates nothing per record here). Returns the problem, or `undefined` when
 * `out` holds a valid sample. `fromText` is true for CSV, whose cells are all strings; a timestamp
 * past `horizon` is refused. Only the first problem is reported, checking fields in the order
 * timestamp, cpu_load, concurrency, source, labels. A sample needs a CPU load or a concurrency (or
 * both); `source` and `labels` are optional (see withSource).
 */
export function validateRecordInto(
  record: Record<string, unknown>,
  fromText: boolean,
  out: MetricSample,
  horizon?: FutureHorizon,
): Problem | undefined {
  const timestamp = record.timestamp;
  if (!present(timestamp)) return { field: 'timestamp', reason: 'missing' };
  if ((typeof timestamp === 'number' && Number.isFinite(timestamp)) || timestamp instanceof Date) {
    // The common cases (a JSON number; a Date the GraphQL scalar parsed), without the intermediate
    // objects of parseTimestamp.
    out.timestampMs = typeof timestamp === 'number' ? epochSecondsToMs(timestamp) : timestamp.getTime();
    const rangeError = checkTimestampMs(out.timestampMs);
    if (rangeError) return { field: 'timestamp', reason: rangeError };
  } else {
    const time = parseTimestamp(timestamp, fromText);
    if ('error' in time) return { field: 'timestamp', reason: time.error };
    out.timestampMs = time.ms;
  }
  const aheadError = checkHorizon(out.timestampMs, horizon);
  if (aheadError) return { field: 'timestamp', reason: aheadError };

  const snake = record.cpu_load;
  const camel = record.cpuLoad;
  if (present(snake) && present(camel))
    return { field: 'cpu_load', reason: 'both cpu_load and cpuLoad given; send one' };
  const cpuField = present(camel) ? 'cpuLoad' : 'cpu_load';
  const cpuValue = present(camel) ? camel : snake;
  const concurrencyValue = record.concurrency;
  if (!present(cpuValue) && !present(concurrencyValue))
    return {
      field: 'cpu_load',
      reason: 'missing, and so is concurrency: a sample needs at least one of them',
    };
  out.cpuLoad = null;
  if (present(cpuValue)) {
    const cpu = typeof cpuValue === 'number' ? cpuValue : numberFrom(cpuValue, fromText);
    if (typeof cpu !== 'number') return { field: cpuField, reason: cpu.error };
    const cpuError = checkCpuLoad(cpu);
    if (cpuError) return { field: cpuField, reason: cpuError };
    out.cpuLoad = cpu;
  }
  out.concurrency = null;
  if (present(concurrencyValue)) {
    const concurrency =
      typeof concurrencyValue === 'number' ? concurrencyValue : numberFrom(concurrencyValue, fromText);
    if (typeof concurrency !== 'number') return { field: 'concurrency', reason: concurrency.error };
    const concurrencyError = checkConcurrency(concurrency);
    if (concurrencyError) return { field: 'concurrency', reason: concurrencyError };
    out.concurrency = concurrency;
  }

  out.source = undefined;
  const source = record.source;
  if (present(source)) {
    if (typeof source !== 'string')
      return { field: 'source', reason: `must be a string, got ${typeName(source)}` };
    const sourceError = checkSourceName(source);
    if (sourceError) return { field: 'source', reason: sourceError };
    out.source = source;
  }
  out.labels = undefined;
  if (present(record.labels)) {
    const labels = labelsFrom(record.labels, fromText);
    if ('problem' in labels) return { field: 'labels', reason: labels.problem };
    out.labels = labels.labels;
  }
  return undefined;
}

/** The source a writer gives the samples that name none (the ingest command's --source and --label). */
export interface SourceFallback {
  name: string;
  labels?: SourceLabels | undefined;
}

/**
 * Gives a valid sample that names no source the writer's `fallback`, if any (its labels unless the
 * sample has its own); without one, the sample goes to the default source. Labels describe a named
 * source: a sample with labels and no source to give them to is refused.
 */
export function withSource(sample: MetricSample, fallback: SourceFallback | undefined): Problem | undefined {
  if (sample.source !== undefined) return undefined;
  if (fallback) {
    sample.source = fallback.name;
    if (sample.labels === undefined) sample.labels = fallback.labels;
    return undefined;
  }
  if (sample.labels !== undefined)
    return { field: 'labels', reason: 'given without a source: name the source they describe' };
  return undefined;
}

/** Validates one input record; see validateRecordInto. */
export function validateRecord(
  record: Record<string, unknown>,
  fromText = false,
  horizon?: FutureHorizon,
): Validated {
  const sample: MetricSample = { timestampMs: 0, cpuLoad: null, concurrency: null };
  const problem = validateRecordInto(record, fromText, sample, horizon);
  return problem ? { ok: false, problem } : { ok: true, sample };
}
